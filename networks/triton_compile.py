"""Compile a Triton kernel for a real NVIDIA GPU on any machine and read what it asks of the GPU.

Triton's wheel bundles ptxas and cuobjdump, so a cubin for sm_80 / sm_90 can be built and inspected
without a GPU: registers, spills and shared memory decide whether a tile size can run fast, and that is
checked where CI runs (tests/test_kernel_resources.py) before a GPU measures it (benchmarks/bench_gpu.py).
Imported only by the kernel modules' `kernel_resources` functions (it imports triton).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass

import torch
import triton

TRITON_DTYPES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}  # signature names


@dataclass(frozen=True)
class KernelResources:
    """What one compiled variant of a kernel asks of each GPU thread and block (from its cubin)."""

    registers: int  # per thread (255 at most; more live values spill to the stack)
    stack_bytes: int  # per thread: spilled registers and local arrays, in slow local memory (0 = no spill)
    shared_bytes: int  # per block, static + what Triton's layout conversions and pipelines allocate
    tensor_core_ops: int  # mma / wgmma instructions in the PTX (0: no dot runs on tensor cores)


def compiled_resources(
    kernel,  # a @triton.jit function
    constexprs: dict,  # the variant: every tl.constexpr argument's value
    pointers: dict[str, str],  # element type of pointer arguments not of `dtype` (e.g. {"bias_ptr": "fp32"})
    dtype: str,  # element type of the other pointer arguments ("fp16", "bf16", "fp32")
    floats: tuple[str, ...],  # scalar arguments that are floats (the others are i32)
    arch: int,  # compute capability: 90 = H100, 89 = RTX 40xx, 80 = A100
    num_warps: int,
) -> KernelResources:
    """Compile `kernel` for `arch` with Triton's own ptxas and read its resource use from the cubin and PTX."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = triton.runtime.jit.JITFunction(kernel.fn)  # a fresh JIT function: compilable also under TRITON_INTERPRET=1
    signature = {}
    for name in fn.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            signature[name] = "*" + pointers.get(name, dtype)
        else:
            signature[name] = "fp32" if name in floats else "i32"
    compiled = triton.compile(ASTSource(fn, signature, constexprs), target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": num_warps})
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        usage = subprocess.run([cuobjdump, "--dump-resource-usage", f.name], capture_output=True, text=True,
                               check=True).stdout
    fields = dict(re.findall(r"(REG|STACK|SHARED):(\d+)", usage))
    ptx = compiled.asm["ptx"]
    return KernelResources(registers=int(fields["REG"]), stack_bytes=int(fields["STACK"]),
                           shared_bytes=int(fields["SHARED"]) + int(compiled.metadata.shared),
                           tensor_core_ops=len(re.findall(r"\b(?:wgmma\.mma_async|mma\.sync)\b", ptx)))
