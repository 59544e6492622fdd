"""The CUDA backend: BLOOM's forward pass and greedy decoding on an NVIDIA GPU, with numba.cuda
kernels written from scratch (`kernels.py`) and a device-resident model (`model.py`).

    from minibloom.cuda import CudaBloomForCausalLM
    lm = CudaBloomForCausalLM.from_pretrained("path/to/bloom-560m")
    tokens = lm.generate(input_ids, attention_mask, max_new_tokens=20)

Needs the `cuda` extra (numba-cuda[cu12]) and a GPU; without one it raises
`BackendUnavailableError`. Numba's simulator runs the same kernels on the CPU, slowly, when
NUMBA_ENABLE_CUDASIM=1 is set before numba is imported (the tests do this).
"""

from .model import CudaBloomForCausalLM, require_cuda

__all__ = ["CudaBloomForCausalLM", "require_cuda"]
