"""The fused filtered-lrelu kernel, compiled for real NVIDIA GPUs on this CPU machine: no register spills.

Triton compiles for a GPU target without a GPU (its bundled ptxas makes the cubin), so the tile sizes the
fused op picks (filtered_lrelu.ACT_BLOCK_CUDA) are checked on every official layer shape where CI runs:
a variant that spills registers to the stack would run far below the GPU's speed, and the interpreter
tests (test_filtered_lrelu.py) cannot see that. Timing stays with benchmarks/bench_gpu.py on a GPU.
"""

from __future__ import annotations

import os

import pytest
import torch

from sg3rt.networks.configs import official_layers
from sg3rt.networks.filtered_lrelu import ACT_BLOCK_CUDA, NUM_WARPS, fused_plan

pytestmark = pytest.mark.slow
triton = pytest.importorskip("triton", reason="triton is not installed (the fused op's kernels)")
ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
if not os.path.isfile(ptxas):
    pytest.skip(f"triton has no bundled ptxas here ({ptxas}): it cannot compile for NVIDIA GPUs",
                allow_module_level=True)
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9's default, without its warning

from sg3rt.networks.filtered_lrelu_triton import kernel_resources  # noqa: E402

TARGETS = [(torch.float16, 90), (torch.float16, 80), (torch.bfloat16, 90), (torch.float32, 90)]  # (dtype, sm)
MAX_SHARED = {80: 163 * 1024, 90: 227 * 1024}  # shared memory one block may use (A100, H100)


def plan_shapes(dtype: torch.dtype) -> dict[tuple, str]:
    """(IB, AB, TB, RU, RD) of every filtered official layer at the default GPU tile for dtype -> a layer using it."""
    shapes = {}
    for name, layer in official_layers():
        if not layer.is_torgb:
            p = fused_plan(layer.up_filter, layer.down_filter, layer.up, layer.down, layer.padding, 1.0, dtype,
                           torch.device("cpu"), ACT_BLOCK_CUDA[dtype])
            shapes.setdefault((p.wux.shape[1], p.wux.shape[2], p.wdx.shape[2], p.wux.shape[0], p.wdx.shape[0]), name)
    return shapes


CASES = [(dtype, arch, key, name) for dtype, arch in TARGETS for key, name in plan_shapes(dtype).items()]


@pytest.mark.parametrize("dtype,arch,key,name", CASES,
                         ids=[f"{str(d)[6:]}-sm{a}-{n}" for d, a, _, n in CASES])
def test_default_tiles_compile_without_spills(dtype, arch, key, name):
    r = kernel_resources(*key, dtype, "ieee", arch, NUM_WARPS)
    assert r.stack_bytes == 0, f"{name} {key} spills {r.stack_bytes} B per thread ({r.registers} registers)"
    assert r.shared_bytes <= MAX_SHARED[arch], (name, r.shared_bytes)
    if dtype != torch.float32:  # fp16 / bf16 dots on tensor cores (fp32 "ieee" dots run on CUDA cores)
        assert r.tensor_core_ops > 0, (name, r)


def test_the_check_sees_a_spill():
    """A 64-sample fp32 tile keeps more values than 255 registers hold: the reading must show the stack."""
    r = kernel_resources(64, 64, 32, 1, 1, torch.float32, "ieee", 90, NUM_WARPS)
    assert r.stack_bytes > 1024 and r.registers <= 255 and r.tensor_core_ops == 0, r
