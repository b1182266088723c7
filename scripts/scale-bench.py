#!/usr/bin/env python3
"""Measures llmzip on a local two-node Ray cluster against one process (docs/scale.md).

    target/python-venv/bin/python scripts/scale-bench.py [--level 6] [--member 128K] [FILES]

Default input: the four Canterbury texts of data/test (scripts/fetch-data.sh), concatenated.
Prints a Markdown table of wall times (compress and decompress: the CLI in one process with all
cores, then Ray with 1 and with 2 single-CPU workers on two nodes of this machine) and of
archive sizes by member size, each checked to round-trip, and writes the figures as JSON to
docs/bench/scale.json. Needs `pip install ./python[ray]` in that Python and
target/release/llmzip (cargo build --release).
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLI = os.environ.get("LLMZIP_BIN", str(ROOT / "target" / "release" / "llmzip"))


def size(text):
    units = {"k": 1 << 10, "m": 1 << 20}
    mult = units.get(text[-1:].lower(), 1)
    return int(text[:-1] if mult != 1 else text) * mult


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="*")
    p.add_argument("--level", type=int, default=6)
    p.add_argument("--member", type=size, default=128 << 10)
    p.add_argument("--sizes", default="64K,128K,256K,1M",
                   help="member sizes whose archive cost is measured")
    args = p.parse_args()
    files = args.files or [str(ROOT / "data" / "test" / f"{n}.txt")
                           for n in ("alice29", "asyoulik", "lcet10", "plrabn12")]
    data = b"".join(open(f, "rb").read() for f in files)
    work = pathlib.Path(tempfile.mkdtemp(prefix="llmzip-scale-"))
    src = work / "input.txt"
    src.write_bytes(data)
    level = f"-{args.level}"
    rows = []

    def cli(*a, **kw):
        subprocess.run([CLI, "-q", *a], check=True, **kw)

    def check(archive, label):
        out = work / "check.out"
        cli("decompress", "-f", str(archive), "-o", str(out))
        assert out.read_bytes() == data, f"{label}: round trip failed"

    # One process, all cores (the CLI's default), whole file and members.
    whole = work / "whole.llmz"
    t = timed(lambda: cli("compress", level, "-f", str(src), "-o", str(whole)))
    d = timed(lambda: cli("decompress", "-f", str(whole), "-o", str(work / "w.out")))
    check(whole, "whole")
    rows.append(("llmzip CLI, 1 process, all cores, one member", t, d, whole.stat().st_size))
    members = work / "members.llmz"
    m = str(args.member)
    t = timed(lambda: cli("compress", level, "--members", m, "-f", str(src), "-o", str(members)))
    d = timed(lambda: cli("decompress", "-f", str(members), "-o", str(work / "m.out")))
    check(members, "members")
    rows.append((f"llmzip CLI, 1 process, all cores, members of {args.member}", t, d,
                 members.stat().st_size))
    t1 = timed(lambda: cli("--threads", "1", "compress", level, "--members", m, "-f", str(src),
                           "-o", str(work / "m1.llmz")))
    rows.append((f"llmzip CLI, 1 process, --threads 1, members of {args.member}", t1, None,
                 (work / "m1.llmz").stat().st_size))

    import ray
    from ray.cluster_utils import Cluster
    import llmzip
    from llmzip.ray import RayCoder

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        for workers in (1, 2):
            start = time.perf_counter()
            coder = RayCoder(level=args.level, workers=workers)
            startup = time.perf_counter() - start
            out = work / f"ray{workers}.llmz"
            t = timed(lambda: coder.compress_file(src, out, member_size=args.member, force=True))
            assert out.read_bytes() == members.read_bytes(), "Ray wrote other bytes"
            d = timed(lambda: coder.decompress_file(out, work / f"ray{workers}.out", force=True))
            assert (work / f"ray{workers}.out").read_bytes() == data
            coder.shutdown()
            rows.append((f"llmzip.ray, {workers} worker{'s' if workers > 1 else ''} "
                         f"(1 CPU each, {workers} node{'s' if workers > 1 else ''}), members of "
                         f"{args.member} (actor start {startup:.1f} s, not counted)",
                         t, d, out.stat().st_size))
    finally:
        ray.shutdown()
        cluster.shutdown()

    sizes = []
    whole_len = whole.stat().st_size
    for s in args.sizes.split(","):
        n = size(s)
        archive = llmzip.compress(data, level=args.level, members=n)
        assert llmzip.decompress(archive) == data
        sizes.append((s, n, len(archive)))

    mb = len(data) / 1e6
    print(f"Input: {len(data)} bytes ({', '.join(pathlib.Path(f).name for f in files)}), "
          f"level {args.level}; CPU: {cpu_name()}, {os.cpu_count()} vCPUs\n")
    print("| run | compress s | KB/s | decompress s | KB/s | archive bytes | bpb |")
    print("|---|---|---|---|---|---|---|")
    for label, t, d, n in rows:
        ds = f"{d:.1f} | {mb * 1000 / d:.1f}" if d else "– | –"
        print(f"| {label} | {t:.1f} | {mb * 1000 / t:.1f} | {ds} | {n} | "
              f"{8 * n / len(data):.4f} |")
    print("\n| member size | archive bytes | bpb | cost vs one member |")
    print("|---|---|---|---|")
    print(f"| whole file | {whole_len} | {8 * whole_len / len(data):.4f} | – |")
    for s, n, a in sizes:
        print(f"| {s} ({-(-len(data) // n)} members) | {a} | {8 * a / len(data):.4f} | "
              f"{100 * (a - whole_len) / whole_len:+.2f} % |")
    out = ROOT / "docs" / "bench" / "scale.json"
    out.write_text(json.dumps({
        "cpu": cpu_name(), "vcpus": os.cpu_count(), "level": args.level,
        "input_bytes": len(data), "files": [pathlib.Path(f).name for f in files],
        "date": time.strftime("%Y-%m-%d"),
        "runs": [{"run": r[0], "compress_s": r[1], "decompress_s": r[2], "archive_bytes": r[3]}
                 for r in rows],
        "member_sizes": [{"member": s, "archive_bytes": a} for s, _, a in sizes],
        "whole_bytes": whole_len,
    }, indent=1) + "\n")
    print(f"\n(written to {out.relative_to(ROOT)})", file=sys.stderr)


if __name__ == "__main__":
    main()
