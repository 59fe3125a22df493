"""The fused kernels, compiled for real NVIDIA GPUs on this CPU machine: no register spills.

Triton compiles for a GPU target without a GPU (its bundled ptxas makes the cubin), so the tile sizes the
fused ops pick (filtered_lrelu.ACT_BLOCK_CUDA, fir_bias_act.BLOCK_CUDA) are checked where CI runs, for
every official layer shape of the filtered leaky ReLU and both filter sizes of StyleGAN2's epilogue:
a variant that spills registers to the stack would run far below the GPU's speed, and the interpreter
tests (test_filtered_lrelu.py) cannot see that. Timing stays with benchmarks/bench_gpu.py on a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from sg3rt.networks.configs import official_layers
from sg3rt.networks.filtered_lrelu import ACT_BLOCK_CUDA, NUM_WARPS, fused_plan

pytestmark = pytest.mark.slow
# triton itself is not imported here: the interpreter tests (test_canvas, test_filtered_lrelu) need Triton's
# first import to happen after they set TRITON_INTERPRET=1, so the compiles run in a child process.
_spec = importlib.util.find_spec("triton")
if _spec is None:
    pytest.skip("triton is not installed (the fused op's kernels)", allow_module_level=True)
ptxas = os.path.join(_spec.submodule_search_locations[0], "backends", "nvidia", "bin", "ptxas")
if not os.path.isfile(ptxas):
    pytest.skip(f"triton has no bundled ptxas here ({ptxas}): it cannot compile for NVIDIA GPUs",
                allow_module_level=True)

TARGETS = [(torch.float16, 90), (torch.float16, 80), (torch.bfloat16, 90), (torch.float32, 90)]  # (dtype, sm)
MAX_SHARED = {80: 163 * 1024, 90: 227 * 1024}  # shared memory one block may use (A100, H100)
SPILLING = ((64, 64, 32, 1, 1), torch.float32, 90)  # an fp32 tile of 64: more live values than 255 registers
COMPILE = """
import dataclasses, json, sys, torch
from sg3rt.networks.filtered_lrelu_triton import kernel_resources
print(json.dumps([dataclasses.asdict(kernel_resources(*key, getattr(torch, dtype), "ieee", arch, warps))
                  for key, dtype, arch, warps in json.load(sys.stdin)]))
"""


def plan_shapes(dtype: torch.dtype) -> dict[tuple, str]:
    """(IB, AB, TB, RU, RD) of every filtered official layer at the default GPU tile for dtype -> a layer using it."""
    shapes = {}
    for name, layer in official_layers():
        if not layer.is_torgb:
            p = fused_plan(layer.up_filter, layer.down_filter, layer.up, layer.down, layer.padding, 1.0, dtype,
                           torch.device("cpu"), ACT_BLOCK_CUDA[dtype])
            shapes.setdefault(p.blocks, name)
    return shapes


CASES = [(dtype, arch, key, name) for dtype, arch in TARGETS for key, name in plan_shapes(dtype).items()]


@pytest.fixture(scope="module")
def resources() -> dict[tuple, dict]:
    """(key, dtype, sm) -> filtered_lrelu_triton.KernelResources as a dict, for every case, from one child process."""
    jobs = [(key, dtype, arch) for dtype, arch, key, _ in CASES] + [SPILLING]
    payload = json.dumps([[list(key), str(dtype).removeprefix("torch."), arch, NUM_WARPS] for key, dtype, arch in jobs])
    env = {**os.environ, "TRITON_DEFAULT_FP_FUSION": "1"}  # Triton 3.9's default, without its warning
    env.pop("TRITON_INTERPRET", None)
    done = subprocess.run([sys.executable, "-c", COMPILE], input=payload, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(zip(jobs, json.loads(done.stdout.strip().splitlines()[-1])))


@pytest.mark.parametrize("dtype,arch,key,name", CASES,
                         ids=[f"{str(d)[6:]}-sm{a}-{n}" for d, a, _, n in CASES])
def test_default_tiles_compile_without_spills(resources, dtype, arch, key, name):
    r = resources[key, dtype, arch]
    assert r["stack_bytes"] == 0, f"{name} {key} spills {r['stack_bytes']} B per thread ({r['registers']} registers)"
    assert r["shared_bytes"] <= MAX_SHARED[arch], (name, r)
    if dtype != torch.float32:  # fp16 / bf16 dots on tensor cores (fp32 "ieee" dots run on CUDA cores)
        assert r["tensor_core_ops"] > 0, (name, r)


def test_the_check_sees_a_spill(resources):
    """The same reading shows the stack where a variant does spill."""
    r = resources[SPILLING]
    assert r["stack_bytes"] > 1024 and r["registers"] <= 255 and r["tensor_core_ops"] == 0, r


# ------------------------------------------------------------------------------------------------
# StyleGAN2's fused epilogue (fir_bias_act): the 4x4 blur of upsampling layers and the unit tap of the others.

COMPILE_SG2 = """
import dataclasses, json, sys, torch
from sg3rt.networks.fir_bias_act_triton import kernel_resources
print(json.dumps([dataclasses.asdict(kernel_resources(k, bh, bw, getattr(torch, dtype), arch, warps))
                  for k, bh, bw, dtype, arch, warps in json.load(sys.stdin)]))
"""
SG2_CASES = [(k, dtype, arch) for k in (4, 1) for dtype, arch in TARGETS]
SG2_SPILLING = (4, 16, 128, "float16", 90, 4)  # 16 outputs per thread: more live values than 255 registers


def test_stylegan2_epilogue_compiles_without_spills():
    from sg3rt.networks.fir_bias_act import BLOCK_CUDA, NUM_WARPS as SG2_WARPS

    jobs = [(k, *BLOCK_CUDA, str(dtype).removeprefix("torch."), arch, SG2_WARPS) for k, dtype, arch in SG2_CASES]
    env = {**os.environ, "TRITON_DEFAULT_FP_FUSION": "1"}
    env.pop("TRITON_INTERPRET", None)
    done = subprocess.run([sys.executable, "-c", COMPILE_SG2], input=json.dumps(jobs + [SG2_SPILLING]),
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    *results, spilling = json.loads(done.stdout.strip().splitlines()[-1])
    for job, r in zip(jobs, results):
        assert r["stack_bytes"] == 0 and r["registers"] <= 128, (job, r)  # <= 128: 16+ of an SM's 64 warps resident (memory-bound: loads in flight)
        assert r["shared_bytes"] <= MAX_SHARED[job[4]], (job, r)
    assert spilling["stack_bytes"] > 0, spilling  # the reading sees a spill where one exists
