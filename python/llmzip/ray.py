"""Compression and decompression on a Ray cluster (``pip install "llmzip[ray]"``).

The work splits along members, the format's independent archives: the driver cuts each input
into members of ``member_size`` original bytes, a pool of actors (one per worker, each holding
its model, loaded once) codes them, and the driver writes the results in order, then the seek
table, so that the archive is byte for byte what ``llmzip compress --members SIZE`` writes on
one machine. Decompression is the same in reverse: the driver reads where the members lie (the
seek table, checked), the actors decode members, the driver writes the originals in order.

A worker that dies mid-job costs nothing but time: actors restart (``max_restarts``) and Ray
retries the tasks they held (``max_task_retries``); coding is deterministic, so a retried
member is the same bytes. Outputs appear whole or not at all (a temporary file, renamed).

The driver moves every byte (it reads the inputs and writes the outputs, and members travel
through Ray's object store), so workers need no shared file system; docs/scale.md says where
this stops scaling and what to change then.

Weight files (safetensors, GGUF) are coded by the model here like any bytes; the weight-file
codec is fast enough on one machine (``llmzip.compress_file``).
"""

import os

import ray

import llmzip

DEFAULT_MEMBER_SIZE = 1 << 20


@ray.remote(num_cpus=1)
class _MemberCoder:
    """One worker: a model loaded once, coding members."""

    def __init__(self, level, model, block_size):
        # As many compute threads as CPUs Ray gave this actor (the library's pools read this
        # before their first use): actors sharing a node do not oversubscribe it.
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        os.environ["RAYON_NUM_THREADS"] = str(max(1, int(cpus)))
        self.coder = llmzip._llmzip.Coder(level=level, model=model, block_size=block_size)
        self.coder.prepare()

    def pid(self):
        return os.getpid()

    def node(self):
        return ray.get_runtime_context().get_node_id()

    def compress(self, index, data):
        return index, self.coder.compress(data)

    def decompress(self, index, data):
        return index, self.coder.decompress(data)


class RayCoder:
    """A pool of ``workers`` actors (default: one per CPU of the cluster, spread over its
    nodes) coding with ``level`` or ``model``. Connects to Ray (``address``, or the running
    cluster) unless Ray is already initialised."""

    def __init__(self, *, level=None, model=None, block_size=None, workers=None, address=None,
                 max_restarts=3, max_task_retries=3):
        # Bad options fail here, on the driver, before any actor starts (nothing is loaded).
        llmzip._llmzip.Coder(level=level, model=model, block_size=block_size)
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False)
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        options = dict(
            max_restarts=max_restarts,
            max_task_retries=max_task_retries,
            scheduling_strategy="SPREAD",
        )
        self.actors = [
            _MemberCoder.options(**options).remote(level, model, block_size)
            for _ in range(workers)
        ]
        # Wait until every model is loaded: a model that cannot be loaded fails here, before
        # any file, as llmzip's own exception.
        try:
            ray.get([a.pid.remote() for a in self.actors])
        except ray.exceptions.RayActorError as e:
            for a in self.actors:
                ray.kill(a)
            raise llmzip.ModelError(f"a worker could not load the model: {e}") from None

    def pids(self):
        """The process id of each actor (where each worker runs, for monitoring and tests)."""
        return ray.get([a.pid.remote() for a in self.actors])

    def nodes(self):
        """The Ray node id of each actor."""
        return ray.get([a.node.remote() for a in self.actors])

    def _run(self, method, pieces, write, progress):
        """Codes ``pieces`` (an iterator of bytes) with ``method`` over the pool and calls
        ``write(index, result)`` in input order. At most two pieces per worker are held (in
        flight or waiting for an earlier one), so the driver's memory does not grow with the
        input; each piece goes to the least loaded actor."""
        limit = 2 * len(self.actors)
        load = [0] * len(self.actors)
        pending = {}  # object ref -> actor index
        ready = {}  # piece index -> result, waiting for the pieces before it
        submitted = written = 0
        pieces = iter(pieces)
        exhausted = False
        while True:
            while not exhausted and len(pending) + len(ready) < limit:
                piece = next(pieces, None)
                if piece is None:
                    exhausted = True
                    break
                a = min(range(len(self.actors)), key=load.__getitem__)
                ref = getattr(self.actors[a], method).remote(submitted, piece)
                pending[ref] = a
                load[a] += 1
                submitted += 1
            if not pending:
                break
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                load[pending.pop(ref)] -= 1
                try:
                    index, result = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    # The worker's own exception (CorruptError, ModelError, …), not Ray's
                    # wrapper: callers catch llmzip's exceptions whatever ran the member.
                    cause = getattr(e, "cause", None)
                    if isinstance(cause, Exception):
                        raise cause from None
                    raise
                ready[index] = result
            while written in ready:
                write(written, ready.pop(written))
                written += 1
                if progress is not None:
                    progress(written)

    def compress_file(self, src, dst=None, *, member_size=DEFAULT_MEMBER_SIZE, force=False,
                      progress=None):
        """Compresses ``src`` into ``dst`` (default ``src + ".llmz"``): members of
        ``member_size`` bytes and a seek table, the bytes ``llmzip compress --members`` writes.
        ``progress(members_done)`` is called as members arrive. Returns the path written."""
        if member_size < 1:
            raise ValueError("member_size must be at least 1 byte")
        src = os.fspath(src)
        dst = os.fspath(dst) if dst is not None else src + llmzip.SUFFIX

        def pieces():
            with open(src, "rb") as f:
                first = True
                while True:
                    piece = f.read(member_size)
                    if not piece and not first:
                        return
                    first = False
                    yield piece
                    if len(piece) < member_size:
                        return

        def write_all(tmp):
            lengths = []
            entries = []

            def counted():
                for piece in pieces():
                    lengths.append(len(piece))
                    yield piece

            with open(tmp, "wb") as out:
                def write(index, member):
                    out.write(member)
                    entries.append((len(member), lengths[index]))

                self._run("compress", counted(), write, progress)
                out.write(llmzip.seek_table(entries))
                out.flush()
                os.fsync(out.fileno())

        llmzip._replace_atomically(dst, write_all, force)
        return dst

    def decompress_file(self, src, dst=None, *, force=False, progress=None):
        """Decompresses archive ``src`` into ``dst`` (default: ``src`` without ``.llmz``), its
        members decoded in parallel. Returns the path written."""
        src = os.fspath(src)
        if dst is None:
            if not src.endswith(llmzip.SUFFIX) or len(src) == len(llmzip.SUFFIX):
                raise ValueError(f"{src} does not end in {llmzip.SUFFIX}: give the output path")
            dst = src[: -len(llmzip.SUFFIX)]
        members = llmzip.members(src)

        def pieces():
            with open(src, "rb") as f:
                for archive_offset, archive_len, _, _ in members:
                    f.seek(archive_offset)
                    data = f.read(archive_len)
                    if len(data) != archive_len:
                        raise llmzip.CorruptError(f"{src} is shorter than its members say")
                    yield data

        def write_all(tmp):
            with open(tmp, "wb") as out:
                def write(index, original):
                    if len(original) != members[index][3]:
                        raise llmzip.CorruptError(
                            f"member {index + 1} of {src} decoded to {len(original)} bytes, "
                            f"not the {members[index][3]} its archive records")
                    out.write(original)

                self._run("decompress", pieces(), write, progress)
                out.flush()
                os.fsync(out.fileno())

        llmzip._replace_atomically(dst, write_all, force)
        return dst

    def compress_files(self, paths, *, member_size=DEFAULT_MEMBER_SIZE, force=False):
        """Compresses each file into ``FILE.llmz`` beside it. Returns the paths written."""
        return [self.compress_file(p, member_size=member_size, force=force) for p in paths]

    def decompress_files(self, paths, *, force=False):
        """Decompresses each ``FILE.llmz`` into ``FILE``. Returns the paths written."""
        return [self.decompress_file(p, force=force) for p in paths]

    def shutdown(self):
        """Stops the actors (Ray itself stays up)."""
        for a in self.actors:
            ray.kill(a)
        self.actors = []


def compress_file(src, dst=None, *, level=None, model=None, member_size=DEFAULT_MEMBER_SIZE,
                  workers=None, address=None, force=False):
    """One call: compresses ``src`` on the cluster (see :class:`RayCoder`)."""
    coder = RayCoder(level=level, model=model, workers=workers, address=address)
    try:
        return coder.compress_file(src, dst, member_size=member_size, force=force)
    finally:
        coder.shutdown()


def decompress_file(src, dst=None, *, workers=None, address=None, force=False):
    """One call: decompresses ``src`` on the cluster (see :class:`RayCoder`)."""
    coder = RayCoder(workers=workers, address=address)
    try:
        return coder.decompress_file(src, dst, force=force)
    finally:
        coder.shutdown()
