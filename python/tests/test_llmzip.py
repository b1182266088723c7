"""The Python package: one-call functions, files, errors."""

import io
import os
import shutil
import subprocess
import threading
import time

import pytest

import llmzip
from conftest import ROOT, random_bytes, text

ODD_INPUTS = [
    b"",
    b"a",
    b"\x00" * 1000,
    b"line one\r\nline two\r\n\r\n",
    b"\xff\xfe invalid \xc3 utf-8 \x80\x80",
]


@pytest.mark.parametrize("data", ODD_INPUTS + [random_bytes(5000, 1)])
@pytest.mark.parametrize("level", [1, 6])
def test_round_trip(data, level):
    archive = llmzip.compress(data, level=level)
    assert archive[:4] == b"LLMZ"
    assert llmzip.decompress(archive) == data
    assert llmzip.decompress(bytearray(archive)) == data


def test_levels_and_models_compress_text(sample):
    sizes = {level: len(llmzip.compress(sample, level=level)) for level in (1, 4, 6)}
    assert all(size < len(sample) / 2.5 for size in sizes.values()), sizes
    default = llmzip.compress(sample)
    assert default == llmzip.compress(sample, level=6) == llmzip.compress(sample, model="default")
    assert llmzip.decompress(llmzip.compress(sample, model="gru2-cm5")) == sample


def test_members_seek_table_and_ranges(tmp_path, sample):
    archive = llmzip.compress(sample, level=1, members=4096)
    assert archive.endswith(b"LLMS")
    assert llmzip.decompress(archive) == sample
    path = tmp_path / "m.llmz"
    path.write_bytes(archive)
    members = llmzip.members(path)
    assert len(members) == -(-len(sample) // 4096)
    assert members[1] == (members[0][1], members[1][1], 4096, 4096)
    for start, length in [(0, 10), (4090, 20), (12_345, 6789), (len(sample) - 5, 50)]:
        assert llmzip.decompress_range(path, start, length) == sample[start:start + length]
    # Each member is a whole archive.
    off, size, orig_off, orig_len = members[2]
    assert llmzip.decompress(archive[off:off + size]) == sample[orig_off:orig_off + orig_len]
    # A table built from the members is the one compress wrote.
    table = llmzip.seek_table([(m[1], m[3]) for m in members])
    assert archive.endswith(table)


def test_the_command_line_tool_and_the_package_agree(tmp_path, cli, sample):
    src = tmp_path / "s.txt"
    src.write_bytes(sample)
    subprocess.run([cli, "-q", "compress", "-1", "--members", "8K", str(src)], check=True)
    assert (tmp_path / "s.txt.llmz").read_bytes() == llmzip.compress(sample, level=1,
                                                                     members=8192)
    subprocess.run([cli, "-q", "compress", "-f", str(src)], check=True)
    assert (tmp_path / "s.txt.llmz").read_bytes() == llmzip.compress(sample)


def test_file_helpers_are_atomic_and_keep_inputs(tmp_path, sample, cli):
    src = tmp_path / "notes.txt"
    src.write_bytes(sample)
    out = llmzip.compress_file(src, level=1)
    assert out == str(src) + ".llmz" and src.exists()
    subprocess.run([cli, "-q", "decompress", "-f", out, "-o", str(tmp_path / "back")],
                   check=True)
    assert (tmp_path / "back").read_bytes() == sample
    with pytest.raises(FileExistsError):
        llmzip.compress_file(src, level=1)
    src.unlink()
    assert llmzip.decompress_file(out) == str(src)
    assert src.read_bytes() == sample
    # A failure leaves neither output nor temporary file.
    bad = tmp_path / "bad.llmz"
    bad.write_bytes(b"LLMZ" + b"\x00" * 100)
    with pytest.raises(llmzip.CorruptError):
        llmzip.decompress_file(bad)
    assert sorted(os.listdir(tmp_path)) == ["back", "bad.llmz", "notes.txt", "notes.txt.llmz"]


def test_weight_files_get_the_weight_codec(weights_file):
    data = weights_file.read_bytes()
    archive = llmzip.compress(data)
    assert archive[:4] == b"LLMT"
    assert len(archive) < len(data)
    assert llmzip.decompress(archive) == data
    out = llmzip.compress_file(weights_file)
    with open(out, "rb") as f:
        assert f.read(4) == b"LLMT"
    os.unlink(weights_file)
    llmzip.decompress_file(out)
    assert weights_file.read_bytes() == data


def test_fine_tunes_against_their_base(tmp_path):
    models = ROOT / "crates" / "llmzip" / "models"
    base = models / "gru2" / "model.safetensors"
    tuned = tmp_path / "tuned.safetensors"
    shutil.copy(models / "gru3" / "model.safetensors", tuned)
    data = tuned.read_bytes()
    alone = llmzip.compress(data)
    out = llmzip.compress_file(tuned, base=base)
    assert os.path.getsize(out) < len(alone)
    with pytest.raises(Exception, match="--base"):
        llmzip.decompress_file(out, tmp_path / "no-base")
    assert not (tmp_path / "no-base").exists()
    back = llmzip.decompress_file(out, tmp_path / "back", base=base)
    assert open(back, "rb").read() == data


def test_open_like_gzip(tmp_path, sample):
    path = tmp_path / "f.llmz"
    with llmzip.open(path, "wb", level=1, block_size=4096) as f:
        for i in range(0, len(sample), 1000):
            f.write(sample[i:i + 1000])
        assert f.writable() and not f.readable()
    with llmzip.open(path, "rb") as f:
        assert f.read(100) == sample[:100]
        f.seek(20_000)
        assert f.tell() == 20_000
        assert f.read(50) == sample[20_000:20_050]
        f.seek(-10, io.SEEK_END)
        assert f.read() == sample[-10:]
        f.seek(0)
        assert f.read() == sample
    with llmzip.open(path, "wt", level=1, encoding="utf-8") as f:
        f.write("héllo\nwörld\n")
    with llmzip.open(path, "rt", encoding="utf-8") as f:
        assert f.readlines() == ["héllo\n", "wörld\n"]
    with pytest.raises(FileExistsError):
        llmzip.open(path, "xb")
    # An exception inside `with` leaves the old file untouched and no temporary file behind.
    with pytest.raises(RuntimeError):
        with llmzip.open(path, "wb", level=1) as f:
            f.write(b"half")
            raise RuntimeError("stop")
    with llmzip.open(path, "rt", encoding="utf-8") as f:
        assert f.read() == "héllo\nwörld\n"
    assert os.listdir(tmp_path) == ["f.llmz"]
    with pytest.raises(ValueError):
        llmzip.open(path, "ab")


def test_bad_input_raises_clear_exceptions(sample):
    archive = llmzip.compress(sample, level=1)
    with pytest.raises(llmzip.CorruptError, match="not an llmzip archive"):
        llmzip.decompress(b"this is not an archive")
    with pytest.raises(llmzip.CorruptError, match="truncated"):
        llmzip.decompress(archive[: len(archive) // 2])
    for i in range(40, len(archive), max(1, len(archive) // 50)):
        damaged = bytearray(archive)
        damaged[i] ^= 0x21
        with pytest.raises(llmzip.LlmzipError):
            llmzip.decompress(bytes(damaged))
    with pytest.raises(llmzip.CorruptError, match="after the end"):
        llmzip.decompress(archive + b"junk")
    # An archive decoded with another model than its own: refused before decoding.
    with pytest.raises(llmzip.ModelError, match="fingerprint|model"):
        llmzip.decompress(llmzip.compress(sample[:2000]), model="gru2-cm5")
    with pytest.raises(llmzip.ModelError):
        llmzip.compress(b"x", model="no-such-model")
    with pytest.raises(ValueError, match="level"):
        llmzip.compress(b"x", level=12)
    with pytest.raises(ValueError, match="not both"):
        llmzip.compress(b"x", level=1, model="gru")
    with pytest.raises(ValueError):
        llmzip.compress(b"x", members=0)
    with pytest.raises(TypeError):
        llmzip.compress("text is not bytes")
    assert issubclass(llmzip.CorruptError, llmzip.LlmzipError)


def test_calls_release_the_gil():
    """While one thread compresses, another keeps running Python code: the call released the
    GIL (held, it would stop the other thread for the whole call). Each result is exact."""
    data = text(20_000)
    result = {}

    def work():
        start = time.perf_counter()
        result["out"] = llmzip.decompress(llmzip.compress(data))
        result["took"] = time.perf_counter() - start

    t = threading.Thread(target=work)
    ticks = []
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    assert result["out"] == data
    longest_pause = max(b - a for a, b in zip(ticks, ticks[1:]))
    assert longest_pause < result["took"] / 2, (longest_pause, result["took"])


def test_text_mode_and_unclosed_writers_make_no_archive(tmp_path):
    path = tmp_path / "t.llmz"
    with pytest.raises(RuntimeError):
        with llmzip.open(path, "wt", level=1, encoding="utf-8") as f:
            f.write("partial text")
            raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []
    f = llmzip.open(path, "wb", level=1)
    f.write(b"never closed")
    with pytest.warns(ResourceWarning):
        f.__del__()
    assert os.listdir(tmp_path) == []


def test_outputs_get_the_input_permissions(tmp_path, sample):
    src = tmp_path / "p.txt"
    src.write_bytes(sample[:3000])
    os.chmod(src, 0o640)
    out = llmzip.compress_file(src, level=1)
    assert os.stat(out).st_mode & 0o777 == 0o640
    os.unlink(src)
    llmzip.decompress_file(out)
    assert os.stat(src).st_mode & 0o777 == 0o640
    with llmzip.open(tmp_path / "new.llmz", "xb", level=1) as f:
        f.write(b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "new.llmz").st_mode & 0o777 == 0o666 & ~mask


def test_one_coder_shared_by_threads():
    """Threads sharing one Coder take turns, each getting exact results; none waits forever
    (the lock is taken outside rayon's pool)."""
    coder = llmzip._llmzip.Coder(level=6)
    data = [text(3000 + 500 * i) for i in range(6)]
    results = [None] * len(data)

    def work(i):
        results[i] = coder.decompress(coder.compress(data[i]))

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(data))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive(), "a thread is stuck"
    assert results == data
