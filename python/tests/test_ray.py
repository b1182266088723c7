"""llmzip.ray on a real local Ray cluster of two nodes (started and stopped here): archives
byte for byte what the command-line tool writes, parallel decoding, a killed worker."""

import os
import signal
import subprocess
import sys

import pytest

import llmzip
from conftest import text

ray = pytest.importorskip("ray", reason="pip install './python[ray]' for the Ray tests")
from ray.cluster_utils import Cluster  # noqa: E402

import llmzip.ray as lray  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def test_two_nodes_write_what_one_machine_writes(cluster, tmp_path, cli):
    data = text(120_000)
    src = tmp_path / "corpus.txt"
    src.write_bytes(data)
    coder = lray.RayCoder(level=1, workers=2)
    try:
        assert len(set(coder.nodes())) == 2, "one actor on each node"
        out = coder.compress_file(src, member_size=16 << 10)
        expected = tmp_path / "expected.llmz"
        subprocess.run([cli, "-q", "compress", "-1", "--members", "16K", str(src), "-o",
                        str(expected)], check=True)
        assert open(out, "rb").read() == expected.read_bytes()
        # The tool decodes it, whole and by range; the cluster decodes it too.
        subprocess.run([cli, "-q", "decompress", out, "-o", str(tmp_path / "back")], check=True)
        assert (tmp_path / "back").read_bytes() == data
        part = subprocess.run([cli, "-q", "decompress", "--range", "50000:1000", out],
                              check=True, capture_output=True).stdout
        assert part == data[50_000:51_000]
        os.unlink(src)
        coder.decompress_file(out)
        assert src.read_bytes() == data
    finally:
        coder.shutdown()


def test_a_killed_worker_is_retried_and_the_output_is_unchanged(cluster, tmp_path):
    data = text(200_000)
    src = tmp_path / "big.txt"
    src.write_bytes(data)
    coder = lray.RayCoder(level=1, workers=2)
    try:
        def kill_actor_after_first_member(index, run):
            """Runs `run(progress)`, killing actor `index` when the first member is done."""
            victim = coder.pids()[index]
            killed = []

            def progress(done):
                if not killed:
                    os.kill(victim, signal.SIGKILL)
                    killed.append(done)

            result = run(progress)
            assert killed, "a worker was killed mid-job"
            assert coder.pids()[index] != victim, "the killed actor was restarted"
            return result

        out = kill_actor_after_first_member(
            0, lambda p: coder.compress_file(src, member_size=4096, progress=p))
        assert open(out, "rb").read() == llmzip.compress(data, level=1, members=4096)
        os.unlink(src)
        kill_actor_after_first_member(1, lambda p: coder.decompress_file(out, progress=p))
        assert src.read_bytes() == data
    finally:
        coder.shutdown()


def test_the_default_model_and_damaged_members(cluster, tmp_path):
    data = text(12_000)
    src = tmp_path / "d.txt"
    src.write_bytes(data)
    coder = lray.RayCoder(workers=2)
    try:
        out = coder.compress_file(src, member_size=4000)
        archive = open(out, "rb").read()
        assert archive == llmzip.compress(data, members=4000)
        damaged = bytearray(archive)
        damaged[len(archive) // 2] ^= 0x40
        bad = tmp_path / "bad.llmz"
        bad.write_bytes(bytes(damaged))
        with pytest.raises(llmzip.LlmzipError):
            coder.decompress_file(bad)
        assert not (tmp_path / "bad").exists(), "no partial output"
    finally:
        coder.shutdown()


def test_the_llmzip_ray_command(cluster, tmp_path, cli):
    files = [tmp_path / f"f{i}.txt" for i in range(2)]
    for i, f in enumerate(files):
        f.write_bytes(text(30_000 + 7000 * i))
    # The console script pip installed beside this Python.
    command = [os.path.join(os.path.dirname(sys.executable), "llmzip-ray")]
    assert os.path.exists(command[0])
    subprocess.run(command + ["compress", "--address", cluster.address, "-1", "--members",
                              "8K"] + [str(f) for f in files], check=True)
    for f in files:
        expected = subprocess.run([cli, "-q", "compress", "-1", "--members", "8K", "-c",
                                   str(f)], check=True, capture_output=True).stdout
        assert open(f"{f}.llmz", "rb").read() == expected
        os.rename(f, f"{f}.orig")
    subprocess.run(command + ["decompress", "--address", cluster.address]
                   + [f"{f}.llmz" for f in files], check=True)
    for f in files:
        assert f.read_bytes() == open(f"{f}.orig", "rb").read()
    failed = subprocess.run(command + ["decompress", "--address", cluster.address,
                                       f"{files[0]}.llmz"], capture_output=True, text=True)
    assert failed.returncode == 1 and "exists" in failed.stderr


def test_a_model_that_cannot_load_is_llmzips_error(cluster):
    with pytest.raises(llmzip.ModelError):
        lray.RayCoder(model="no-such-model", workers=1)
    with pytest.raises(ValueError):
        lray.RayCoder(level=42, workers=1)
