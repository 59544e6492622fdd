"""A golden dump of a checkpoint larger than the memory it may use: the weights stay memory-mapped in
the checkpoint's dtype and stream through the page cache layer by layer.

Checked under a memory cgroup (v1 `memory.limit_in_bytes` or v2 `memory.max`) made below this
process's own cgroup, with a checkpoint at least twice the limit; skipped, with the reason, where no
cgroup can be made (RLIMIT_AS cannot stand in: it counts mapped files, which is the point here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from minibloom import golden

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 300 << 20  # bytes of RAM (and page cache) the dump may use
CONFIG = dict(vocab_size=512, hidden_size=1024, n_layer=26, n_head=16)  # ~ 660 MB in bfloat16


def write_bf16_checkpoint(directory, seed: int = 0) -> int:
    """A BLOOM checkpoint written tensor by tensor (never all in RAM), matrices in bfloat16."""
    from minibloom import BloomConfig
    from minibloom.weights import bloom_param_shapes

    config = BloomConfig(**CONFIG)
    shapes = bloom_param_shapes(config)
    header, offset = {}, 0
    for name, shape in shapes.items():
        nbytes = int(np.prod(shape)) * (2 if len(shape) == 2 else 4)
        header[name] = {"dtype": "BF16" if len(shape) == 2 else "F32", "shape": list(shape),
                        "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    rng = np.random.default_rng(seed)
    with open(os.path.join(directory, "model.safetensors"), "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head)
        for name, shape in shapes.items():
            if len(shape) == 2:
                # bf16 bit patterns drawn directly: |w| in [2^-11, 2^-5), either sign (fast, no float32 copy)
                bits = rng.integers(0x3A00, 0x3D00, size=shape, dtype=np.uint16)
                f.write((bits | (rng.integers(0, 2, size=shape, dtype=np.uint16) << 15)).astype("<u2").tobytes())
            else:
                base = 1.0 if name.endswith("layernorm.weight") or name == "ln_f.weight" else 0.0
                f.write((base + 0.02 * rng.standard_normal(shape)).astype("<f4").tobytes())
    config.save_pretrained(directory)
    return os.path.getsize(os.path.join(directory, "model.safetensors"))


def make_cgroup(name: str) -> tuple[str, str] | None:
    """A child memory cgroup of this process's own, as (directory, procs file); None if impossible."""
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "memory":
            base, limit_file = os.path.join("/sys/fs/cgroup/memory", path.lstrip("/")), "memory.limit_in_bytes"
        elif controllers == "" and os.path.isfile("/sys/fs/cgroup/cgroup.controllers") \
                and "memory" in open("/sys/fs/cgroup/cgroup.controllers").read():
            base, limit_file = os.path.join("/sys/fs/cgroup", path.lstrip("/")), "memory.max"
        else:
            continue
        directory = os.path.join(base, name)
        try:
            os.mkdir(directory)
            with open(os.path.join(directory, limit_file), "w") as f:
                f.write(str(LIMIT))
            return directory, os.path.join(directory, "cgroup.procs")
        except OSError:
            try:
                os.rmdir(directory)
            except OSError:
                pass
    return None


def test_checkpoint_storage_keeps_the_dtype_on_disk(tmp_path):
    from minibloom import BloomConfig, BloomModel

    for dtype in ("bfloat16", "float16", "float32"):
        d = tmp_path / dtype
        BloomModel(BloomConfig(vocab_size=16, hidden_size=8, n_head=2, n_layer=1)).save_pretrained(d, dtype=dtype)
        assert golden.checkpoint_storage(d) == dtype


def test_a_checkpoint_twice_the_memory_limit_is_dumped_by_streaming(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    cgroup = make_cgroup(f"minibloom-golden-{os.getpid()}")
    if cgroup is None:
        pytest.skip("no memory cgroup can be made here (needs a writable cgroup v1 memory or v2 hierarchy)")
    directory, procs = cgroup
    try:
        size = write_bf16_checkpoint(ckpt)
        assert size >= 2 * LIMIT
        fd = os.open(ckpt / "model.safetensors", os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # start from disk, not from our page cache
        os.close(fd)

        def enter_cgroup():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        def dump(out, *extra):
            return subprocess.run([sys.executable, "-m", "minibloom", "golden", "dump", "--checkpoint", str(ckpt),
                                   "--ids", "1", "2", "3", "-o", str(out), *extra], preexec_fn=enter_cgroup,
                                  cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1",
                                                 "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"},
                                  capture_output=True, text=True, timeout=300)

        # the limit bites: widening every weight to float32 (1.3 GB of anonymous memory) cannot fit
        assert dump(tmp_path / "f32.safetensors", "--storage", "float32").returncode != 0
        assert not (tmp_path / "f32.safetensors").exists()
        out = tmp_path / "g.safetensors"
        start = time.perf_counter()
        done = dump(out)  # the checkpoint's own dtype: memory-mapped, streamed through the page cache
        seconds = time.perf_counter() - start
        assert done.returncode == 0, done.stderr[-2000:]
        peak_file = os.path.join(directory, "memory.max_usage_in_bytes")
        if os.path.isfile(peak_file):
            assert int(open(peak_file).read()) <= LIMIT
        print(f"dumped {size / 2**20:.0f} MB under a {LIMIT / 2**20:.0f} MB limit in {seconds:.1f} s")
    finally:
        os.rmdir(directory)
    g = golden.load(out)
    assert g.tensors["logits"].shape == (1, 3, CONFIG["vocab_size"]) and np.isfinite(g.tensors["logits"]).all()
    assert f"h.{CONFIG['n_layer'] - 1}.output" in g.tensors
