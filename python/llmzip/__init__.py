"""llmzip: lossless compression with neural language models.

One call each way::

    import llmzip
    archive = llmzip.compress(b"some text" * 100)            # level 6, the default
    assert llmzip.decompress(archive) == b"some text" * 100
    llmzip.compress(data, level=1)                            # fast: no neural network
    llmzip.compress(data, model="gru4-cm5", members=1 << 20)  # independent 1 MiB members

Files, like ``gzip.open``::

    with llmzip.open("notes.txt.llmz", "wb") as f:
        f.write(b"...")
    with llmzip.open("notes.txt.llmz", "rb") as f:
        f.seek(1000)            # reads decode only the members they touch
        part = f.read(100)

``compress_file`` / ``decompress_file`` write ``FILE.llmz`` beside ``FILE`` (and back) as the
command-line tool does, atomically; weight files (safetensors, GGUF) get the weight-file codec.
``llmzip.ray`` (``pip install "llmzip[ray]"``) compresses on a Ray cluster.

The coding runs in Rust with the GIL released. Errors: ``CorruptError`` (not an archive,
damaged, cut short), ``ModelError`` (the model an archive needs is missing or different), both
``LlmzipError``; ``OSError`` for files; ``ValueError`` for bad arguments.
"""

import io
import os
import tempfile

from ._llmzip import (
    CorruptError,
    LlmzipError,
    ModelError,
    Reader,
    Writer,
    __version__,
    compress,
    decompress,
    members,
    seek_table,
)
from . import _llmzip

__all__ = [
    "CorruptError",
    "LlmzipError",
    "ModelError",
    "LlmzipFile",
    "__version__",
    "compress",
    "compress_file",
    "decompress",
    "decompress_file",
    "decompress_range",
    "members",
    "open",
    "seek_table",
]

SUFFIX = ".llmz"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temporary_beside(dst, mode=None):
    """A new empty file in ``dst``'s folder, with ``mode`` (default: what a new file gets,
    0o666 less the umask) rather than mkstemp's 0o600."""
    folder = os.path.dirname(os.path.abspath(dst))
    fd, tmp = tempfile.mkstemp(prefix=".llmzip-", suffix=".tmp", dir=folder)
    os.close(fd)
    os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
    return tmp


def _commit(tmp, dst, force):
    """Moves ``tmp`` to ``dst`` in one step: over an existing file with ``force``, otherwise
    only if ``dst`` does not exist (a hard link fails atomically if it does)."""
    if force:
        os.replace(tmp, dst)
        return
    try:
        os.link(tmp, dst)
    except FileExistsError:
        raise FileExistsError(f"{dst} already exists; pass force=True to overwrite it") from None
    except OSError:
        # A file system without hard links: check, then rename (not atomic against a racer).
        if os.path.exists(dst):
            raise FileExistsError(f"{dst} already exists; pass force=True to overwrite it")
        os.replace(tmp, dst)
        return
    os.unlink(tmp)


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _replace_atomically(dst, write, force, mode=None):
    """Runs ``write(tmp)`` on a temporary file beside ``dst`` and moves it to ``dst``: ``dst``
    is either whole or untouched, and no temporary file stays behind."""
    dst = os.fspath(dst)
    if not force and os.path.exists(dst):
        raise FileExistsError(f"{dst} already exists; pass force=True to overwrite it")
    tmp = _temporary_beside(dst, mode)
    try:
        result = write(tmp)
        _commit(tmp, dst, force)
        return result
    except BaseException:
        _remove(tmp)
        raise


def _mode_of(path):
    """The permission bits of ``path`` (outputs keep their input's, as the tool does)."""
    import stat
    return stat.S_IMODE(os.stat(path).st_mode)


def compress_file(src, dst=None, *, level=None, model=None, members=None, block_size=None,
                  force=False, base=None):
    """Compresses file ``src`` into ``dst`` (default ``src + ".llmz"``), atomically, with
    ``src``'s permissions; returns the path written. ``members`` cuts the input into
    independent members of that many bytes, with a seek table (a weight file, recognised
    first, is one member of the weight-file codec, as with the tool). ``base``: the weight
    file (safetensors, GGUF) that ``src`` was fine-tuned from, as ``llmzip compress --base``;
    decompressing needs it too."""
    src = os.fspath(src)
    dst = os.fspath(dst) if dst is not None else src + SUFFIX
    base = os.fspath(base) if base is not None else None
    _replace_atomically(
        dst,
        lambda tmp: _llmzip.compress_file(src, tmp, level=level, model=model, members=members,
                                          block_size=block_size, base=base),
        force,
        _mode_of(src),
    )
    return dst


def decompress_file(src, dst=None, *, model=None, memory_limit=None, force=False, base=None):
    """Decompresses archive ``src`` into ``dst`` (default: ``src`` without ``.llmz``),
    atomically, with ``src``'s permissions; returns the path written. ``base``: the weight
    file a fine-tune was compressed against (``compress_file(..., base=...)``)."""
    src = os.fspath(src)
    base = os.fspath(base) if base is not None else None
    if dst is None:
        if not src.endswith(SUFFIX) or len(src) == len(SUFFIX):
            raise ValueError(f"{src} does not end in {SUFFIX}: give the output path")
        dst = src[: -len(SUFFIX)]
    dst = os.fspath(dst)
    _replace_atomically(
        dst,
        lambda tmp: _llmzip.decompress_file(src, tmp, model=model, memory_limit=memory_limit,
                                            base=base),
        force,
        _mode_of(src),
    )
    return dst


def decompress_range(path, start, length, *, model=None):
    """Original bytes ``start`` .. ``start + length`` of archive file ``path``, decoding only
    the members they lie in (``llmzip decompress --range``)."""
    with open(path, "rb", model=model) as f:
        f.seek(start)
        return f.read(length)


class LlmzipFile(io.BufferedIOBase):
    """An archive file opened by :func:`open`: reading (seekable: a read decodes only the
    members it touches) or writing (one member; the file appears, whole, on ``close()``)."""

    def __init__(self, path, mode="rb", *, level=None, model=None, block_size=None,
                 memory_limit=None):
        super().__init__()
        if mode in ("r", "rb"):
            self._reader = Reader(os.fspath(path), model=model, memory_limit=memory_limit)
            self._writer = None
        elif mode in ("w", "wb", "x", "xb"):
            path = os.fspath(path)
            if mode.startswith("x") and os.path.exists(path):
                raise FileExistsError(f"{path} already exists")
            self._tmp = _temporary_beside(path)
            self._path = path
            try:
                self._writer = Writer(self._tmp, level=level, model=model,
                                      block_size=block_size)
            except BaseException:
                _remove(self._tmp)
                raise
            self._reader = None
        else:
            raise ValueError(f"invalid mode {mode!r}: use 'rb', 'wb' or 'xb' (or 'rt'/'wt' "
                             "through llmzip.open)")
        self.mode = mode
        self.name = os.fspath(path)

    # Reading.
    def readable(self):
        return self._reader is not None

    def seekable(self):
        return self._reader is not None

    def read(self, size=-1):
        self._check_open()
        if self._reader is None:
            raise io.UnsupportedOperation("not opened for reading")
        return self._reader.read(-1 if size is None else size)

    def read1(self, size=-1):
        return self.read(size)

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset, whence=io.SEEK_SET):
        self._check_open()
        if self._reader is None:
            raise io.UnsupportedOperation("not opened for reading")
        return self._reader.seek(offset, whence)

    def tell(self):
        return self.seek(0, io.SEEK_CUR)

    # Writing.
    def writable(self):
        return self._writer is not None

    def write(self, data):
        self._check_open()
        if self._writer is None:
            raise io.UnsupportedOperation("not opened for writing")
        return self._writer.write(bytes(data))

    def close(self):
        """Closes the file; when writing, finishes the archive and moves it into place."""
        if self.closed:
            return
        try:
            if self._writer is not None:
                self._writer.close()
                _commit(self._tmp, self._path, force=not self.mode.startswith("x"))
        except BaseException:
            self._discard()
            raise
        finally:
            super().close()

    def discard(self):
        """Closes without making the archive (writing): the path is left as it was."""
        if not self.closed:
            self._discard()
            super().close()

    def _discard(self):
        if self._writer is not None:
            self._writer.abandon()
            _remove(self._tmp)

    def __exit__(self, kind, value, traceback):
        if kind is not None:
            # An error inside the `with`: the archive is not made.
            self.discard()
            return False
        return super().__exit__(kind, value, traceback)

    def __del__(self):
        # Garbage-collected unclosed: an archive is made only by close() or a `with` that
        # ended without an error, never by the collector after a failure.
        if getattr(self, "_writer", None) is not None and not self.closed:
            import warnings
            warnings.warn(f"llmzip file {self.name!r} was never closed: its archive was "
                          "discarded", ResourceWarning, stacklevel=2)
            self.discard()

    def _check_open(self):
        if self.closed:
            raise ValueError("I/O operation on closed file")


class _TextFile(io.TextIOWrapper):
    """Text over an :class:`LlmzipFile`, with the same rule: an error inside ``with`` (or a
    file never closed) makes no archive."""

    def __exit__(self, kind, value, traceback):
        if kind is not None:
            self.buffer.discard()
            return False
        return super().__exit__(kind, value, traceback)

    def __del__(self):
        if not self.buffer.closed and self.buffer.writable():
            self.buffer.__del__()
        else:
            super().__del__()


def open(path, mode="rb", *, level=None, model=None, block_size=None, memory_limit=None,
         encoding=None, errors=None, newline=None):
    """Opens an archive file like ``gzip.open``: ``"rb"``/``"wb"``/``"xb"`` give an
    :class:`LlmzipFile`; ``"rt"``/``"wt"``/``"xt"`` wrap it in an ``io.TextIOWrapper``."""
    if "t" in mode:
        binary = LlmzipFile(path, mode.replace("t", "b"), level=level, model=model,
                            block_size=block_size, memory_limit=memory_limit)
        return _TextFile(binary, encoding=encoding, errors=errors, newline=newline)
    if encoding is not None or errors is not None or newline is not None:
        raise ValueError("encoding, errors and newline are for text modes only")
    return LlmzipFile(path, mode, level=level, model=model, block_size=block_size,
                      memory_limit=memory_limit)

