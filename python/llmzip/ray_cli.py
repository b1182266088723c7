"""``llmzip-ray``: compress or decompress files on a Ray cluster.

    llmzip-ray compress --address HOST:PORT [-1..-9 | -m MODEL] [--members SIZE] FILES
    llmzip-ray decompress --address HOST:PORT FILES

writes ``FILE.llmz`` beside each ``FILE`` (and back), as ``llmzip compress`` does; the archive is
byte for byte what ``llmzip compress --members SIZE`` writes on one machine, except for weight
files, which the tool recognises and codes as one member of its weight-file codec, and Ray codes
with the model like any bytes.
"""

import argparse
import os
import sys


def _size(text):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip()
    mult = units.get(text[-1:].lower(), 1)
    digits = text[:-1] if mult != 1 else text
    try:
        value = int(digits) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size (e.g. 4096, 64K, 20M, 1G)")
    if value < 1:
        raise argparse.ArgumentTypeError("a member holds at least 1 byte")
    return value


def _parser():
    p = argparse.ArgumentParser(
        prog="llmzip-ray",
        description="Compress or decompress files with llmzip on a Ray cluster.")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("compress", "decompress"):
        s = sub.add_parser(name)
        s.add_argument("files", nargs="+", help="inputs (FILE -> FILE.llmz, or back)")
        s.add_argument("--address", help="the Ray cluster, HOST:PORT (default: the running one, "
                       "or RAY_ADDRESS)")
        s.add_argument("--workers", type=int, help="actors (default: one per CPU of the cluster)")
        s.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
        if name == "compress":
            level = s.add_mutually_exclusive_group()
            for n in range(1, 10):
                level.add_argument(f"-{n}", dest="level", action="store_const", const=n,
                                   help=argparse.SUPPRESS)
            level.add_argument("--level", type=int, choices=range(1, 10),
                               help="compression level 1-9 (or -1 … -9; default 6)")
            level.add_argument("-m", "--model", help="model name or path, instead of a level")
            s.add_argument("--members", type=_size, default=1 << 20,
                           help="original bytes per member (default 1M): the unit of work")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    import llmzip
    from llmzip.ray import RayCoder

    address = args.address or os.environ.get("RAY_ADDRESS")
    failures = 0
    try:
        if args.command == "compress":
            coder = RayCoder(level=args.level, model=args.model, workers=args.workers,
                             address=address)
        else:
            coder = RayCoder(workers=args.workers, address=address)
    except (llmzip.LlmzipError, ValueError, ConnectionError) as e:
        print(f"llmzip-ray: error: {e}", file=sys.stderr)
        return 1
    try:
        for path in args.files:
            try:
                if args.command == "compress":
                    out = coder.compress_file(path, member_size=args.members, force=args.force)
                else:
                    out = coder.decompress_file(path, force=args.force)
                print(f"{path} -> {out}", file=sys.stderr)
            except (llmzip.LlmzipError, OSError, ValueError) as e:
                failures += 1
                print(f"llmzip-ray: error: {path}: {e}", file=sys.stderr)
    finally:
        coder.shutdown()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
