"""Run the Triton kernels of sg3rt on CPU tensors with Triton's interpreter (tests without a GPU).

`use_interpreter()` sets TRITON_INTERPRET=1 (read when a kernel is defined, so before sg3rt's kernel module
is first imported) and replaces the interpreter's tl.dot, whose numpy call takes a `dtype` argument that
keeps it off BLAS (about 30 ms for one 128^3 product) and which multiplies bfloat16's raw uint16 bits as
integers. The replacement converts both operands to the accumulator's dtype (float32, as tensor cores
accumulate) and multiplies with torch on one thread. Nothing changes where a CUDA device runs the kernels for real.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

import numpy as np
import pytest
import torch


def _as_float32(data: np.ndarray, is_bf16: bool) -> np.ndarray:
    if is_bf16:  # the interpreter stores bfloat16 as its upper 16 bits in uint16
        return (data.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return data.astype(np.float32)


def _blas_dot(self, a, b, d, input_precision, max_num_imprecise_acc):
    from triton.runtime.interpreter import TensorHandle

    if a.dtype.primitive_bitwidth == 8 or b.dtype.primitive_bitwidth == 8:
        return _STOCK_DOT(self, a, b, d, input_precision, max_num_imprecise_acc)
    import triton.language as tl

    acc = d.data.dtype
    lhs = torch.from_numpy(_as_float32(a.data, a.dtype.scalar == tl.bfloat16).astype(acc))
    rhs = torch.from_numpy(_as_float32(b.data, b.dtype.scalar == tl.bfloat16).astype(acc))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these products are small: threads only wait for each other (100x on a busy CPU)
    try:
        out = (lhs @ rhs).numpy()
    finally:
        torch.set_num_threads(threads)
    return TensorHandle(out + d.data, d.dtype.scalar)


_STOCK_DOT = None


def device() -> str:
    """Where the kernels run in this test session: "cuda", or "cpu" through the interpreter."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def use_interpreter() -> None:
    """Without CUDA: interpret Triton kernels on the CPU (skip the caller's tests where triton is missing)."""
    global _STOCK_DOT
    if torch.cuda.is_available():
        return
    os.environ["TRITON_INTERPRET"] = "1"
    interpreter = pytest.importorskip("triton.runtime.interpreter", reason="triton is not installed")
    if _STOCK_DOT is None:
        _STOCK_DOT = interpreter.InterpreterBuilder.create_dot
        interpreter.InterpreterBuilder.create_dot = _blas_dot


@contextlib.contextmanager
def interpreting() -> Iterator[str]:
    """use_interpreter() for a block, then TRITON_INTERPRET as it was; yields device()."""
    before = os.environ.get("TRITON_INTERPRET")
    use_interpreter()
    try:
        yield device()
    finally:
        if before is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = before


@pytest.fixture(autouse=True, scope="module")
def interpreter_for_module() -> Iterator[str]:
    """Import into a test module: its tests run Triton kernels in the interpreter where there is no CUDA."""
    with interpreting() as where:
        yield where
