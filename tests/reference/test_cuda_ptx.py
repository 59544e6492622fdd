"""Every CUDA kernel compiles to PTX for sm_90 (an H100) with numba.cuda.compile_ptx: no GPU needed,
only NVVM, which the `cuda` extra (numba-cuda[cu12]) brings. Run in a subprocess, since the test
process runs numba's CUDA simulator, which cannot compile."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = """
import sys
from numba import cuda
from minibloom.cuda import kernels
for name, signature in kernels.signatures().items():
    ptx, _ = cuda.compile_ptx(getattr(kernels, name).py_func, signature, cc=(9, 0))
    assert ".target sm_90" in ptx, name
    print(name, len(ptx))
"""


def test_every_kernel_compiles_to_ptx_for_sm_90():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    probe = subprocess.run([sys.executable, "-c", "import numba_cuda\nfrom numba.cuda.cudadrv import nvvm\nnvvm.NVVM()"],
                           capture_output=True, text=True, env=env, timeout=120)
    if probe.returncode != 0:
        pytest.skip("the `cuda` extra is not installed: pip install -e '.[cuda]' (numba-cuda[cu12], with NVVM)")
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    from minibloom.cuda.kernels import signatures

    assert len(done.stdout.split("\n")) - 1 == len(signatures())
