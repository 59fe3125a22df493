"""Fused filtered leaky ReLU of one StyleGAN3 layer: bias -> upsample -> lrelu, clamp -> down-filter.

The plain path (FirFilter + lrelu_clamp, `filtered_lrelu_reference`) is the reference, the CPU path and
what ONNX export traces. On CUDA, when Triton imports, one Triton kernel (filtered_lrelu_triton.py) does
the whole chain per output tile: the upsampled tile (4x to 16x the input) never goes to global memory,
and the down-filter is evaluated at the kept output positions only. This module holds what runs on the
host: when the fused op can run (`fused_reason`, `use_fused`), its polyphase filter banks (`fused_plan`)
and the call (`fused_filtered_lrelu`). Triton is imported only inside those calls.

Semantics (upfirdn2d, as FirFilter): u = zero-insert x (* scale) + bias by `up`, pad, convolve with fu * fu_gain;
a = clamp(lrelu(u, slope) * gain, +-clamp); y = convolve a with fd, keep every `down`-th sample.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..vocab import tracing
from .filtered_lrelu_cpu import cpu_reason
from .layers import FirFilter, filter_table, lrelu_clamp

# Upsampled samples per tile side on a GPU, per dtype (the activation tile is ACT_BLOCK^2 fp32): the largest
# tile whose compiled kernel keeps every value in registers on sm_80 and sm_90 with NUM_WARPS warps
# (benchmarks/kernel_resources.py; tests/test_kernel_resources.py). fp32 dots run on CUDA cores ("ieee"
# precision) and spill kilobytes per thread at 64.
ACT_BLOCK_CUDA = {torch.float16: 64, torch.bfloat16: 64, torch.float32: 32}
ACT_BLOCK_INTERPRETER = 128  # bigger tiles on the CPU interpreter: fewer (slow) interpreted programs
MIN_BLOCK = 16  # tl.dot needs every block dimension >= 16
NUM_WARPS = 4  # warps per program (the tile's four GEMMs are small)
DOT_PRECISIONS = ("ieee", "tf32x3")  # fp32 dots: exact on CUDA cores (default), or 3xTF32 on tensor cores
PLANES_PER_PROGRAM_CUDA = 1  # channel maps per program on a GPU (> 1 reuses the banks' index math)
PLANES_PER_PROGRAM_INTERPRETER = 8  # fewer interpreted programs, each op on one tile of 8 maps in turn
# 2-D (radial) filters run as separable terms: keep those whose singular value exceeds this fraction of the dot
# operands' machine epsilon, relative to the first. Smaller terms change an output by less than rounding the
# operands does (fp32 keeps 4-5 terms of the official radial filters, fp16 2-4, bf16 2-3: fewer dots per tile).
SVD_EPS_FRACTION = 0.1
FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
FUSED_OP = "fused filtered lrelu"  # the op's name in warnings (use_fused, fused_or_plain)
FUSED_CPU_OP = "fused filtered lrelu (CPU)"  # the numba kernels' (filtered_lrelu_cpu.py)
MIN_CAPABILITY = (7, 0)  # oldest NVIDIA GPU generation Triton compiles for (Volta)
MIN_CAPABILITY_BF16 = (8, 0)  # bfloat16 dots need Ampere or newer

_warned: set[str] = set()  # fallback reasons already reported
_failed: dict[str, str] = {}  # op -> why its kernel failed on this machine (it is not tried again in this process)


# ------------------------------------------------------------------------------------------------
# The plain path.


def filtered_lrelu_reference(
    x: torch.Tensor,  # [B, C, H, W]
    bias: torch.Tensor,  # [C]
    fu: torch.Tensor | None,  # [Ku] separable or [Ku, Ku]; None: no up-filter (one unit tap)
    fd: torch.Tensor | None,  # [Kd] separable or [Kd, Kd]; None: no down-filter
    up: int,
    down: int,
    padding: tuple[int, int, int, int],  # px0, px1, py0, py1 around the zero-inserted signal
    fu_gain: float,  # overall gain of the up-filter (up**2 * sqrt(2) in StyleGAN3)
    gain: float,  # activation gain after the leaky ReLU
    slope: float,
    clamp: float | None,
    scale: torch.Tensor | None = None,  # [B, C]: x * scale before the bias (unfolded demodulation); None: none
) -> torch.Tensor:  # [B, C, OH, OW]
    """The chain in plain PyTorch with FirFilter's conv form, in x's dtype (as SynthesisLayer runs it)."""
    c = x.shape[1]
    fu = torch.ones([1]) if fu is None else fu
    fd = torch.ones([1]) if fd is None else fd
    if scale is not None:
        x = x * scale.to(x.dtype).unsqueeze(2).unsqueeze(3)
    x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    upsample = FirFilter(fu.shape[0], fu.ndim == 1, c, up=up, padding=padding, gain=fu_gain)
    downsample = FirFilter(fd.shape[0], fd.ndim == 1, c, down=down)
    upsample.impl = downsample.impl = "conv"
    x = lrelu_clamp(upsample(x, fu.to(x.device)), gain, slope, clamp)
    return downsample(x, fd.to(x.device))


def output_size(size: int, ku: int, kd: int, up: int, down: int, p0: int, p1: int) -> int:
    """Samples along one axis after upsampling + padding + fu (length L*up + p0 + p1 - Ku + 1), then fd."""
    return (size * up + p0 + p1 - ku + 1 - kd) // down + 1


# ------------------------------------------------------------------------------------------------
# When the fused op runs.


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_import_error() -> str | None:
    """None when triton imports, else why not (with the install hint)."""
    try:
        import triton  # noqa: F401
    except Exception as e:  # ImportError, or a broken install raising anything
        return f"triton does not import ({type(e).__name__}: {e}; pip install triton)"
    return None


def fused_reason(x: torch.Tensor) -> str | None:
    """Why the fused op cannot filter x, or None when it can."""
    if tracing():
        return "tracing for export (the plain path is what exports)"
    if not x.is_cuda and not _interpreting():
        return f"the input is on {x.device.type} (the fused op needs CUDA, or TRITON_INTERPRET=1)"
    if x.dtype not in FUSED_DTYPES:
        return f"dtype {x.dtype} (the fused op takes float16, bfloat16 or float32)"
    if torch.is_grad_enabled() and x.requires_grad:
        return "gradients are wanted (the fused op has no backward)"
    if x.is_cuda:
        have = torch.cuda.get_device_capability(x.device)
        need = MIN_CAPABILITY_BF16 if x.dtype == torch.bfloat16 else MIN_CAPABILITY
        if have < need:
            return (f"the GPU's compute capability is {have[0]}.{have[1]} (Triton's kernels need {need[0]}.{need[1]}+"
                    f"{' for bfloat16' if x.dtype == torch.bfloat16 else ''})")
    return triton_import_error()


def use_fused(impl: str, x: torch.Tensor, op: str = FUSED_OP) -> bool:
    """Whether a layer with fir_impl `impl` filters x with its fused op (`op` names it in the warning).

    "auto" wants it for CUDA tensors, "fused" always; where it is wanted but cannot run, one warning per
    reason says why and the caller's next best path runs (auto's matmul/conv rule). Export is silent.
    """
    if impl not in ("auto", "fused") or (impl == "auto" and not x.is_cuda) or op in _failed:
        return False
    reason = fused_reason(x)
    if reason is None:
        return True
    if not reason.startswith("tracing"):
        _warn_once(op, reason)
    return False


def _warn_once(op: str, reason: str) -> None:
    """One warning per reason per process that `op` does not run here (the caller's next best path does)."""
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"{op} not used: {reason}; running the unfused FIR path", RuntimeWarning, stacklevel=4)


def use_fused_cpu(impl: str, x: torch.Tensor, fu: torch.Tensor | None) -> bool:
    """Whether a StyleGAN3 layer with fir_impl `impl` runs its filtered activation through the CPU kernels
    (filtered_lrelu_cpu.py): "auto" and "fused" want them for CPU tensors (except under TRITON_INTERPRET=1, where
    "fused" means the Triton kernel); where they cannot run, one warning per reason and the plain path."""
    if impl not in ("auto", "fused") or x.device.type != "cpu" or FUSED_CPU_OP in _failed:
        return False
    if impl == "fused" and _interpreting():
        return False
    reason = cpu_reason(x, fu)
    if reason is None:
        return True
    quiet = reason.startswith(("tracing", "torch.compile")) or (impl == "auto" and reason.startswith("dtype"))
    if not quiet:
        _warn_once(FUSED_CPU_OP, reason)
    return False


def _interrupt_behind(e: BaseException) -> BaseException | None:
    """The KeyboardInterrupt (or other non-Exception) that e wraps, if any: a signal handler that raises while a
    compiled kernel's dispatcher runs Python code comes back as a SystemError caused by the interrupt (numba)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if not isinstance(e, Exception):
            return e
        e = e.__cause__ or e.__context__
    return None


def fused_or_plain(op: str, fused: Callable[[], torch.Tensor], plain: Callable[[], torch.Tensor]) -> torch.Tensor:
    """fused(); where its kernel cannot compile or launch on this machine (Triton raises), one warning naming the
    error, then plain() now and for every later call of this op (use_fused says no): a kernel that this GPU,
    driver or Triton build cannot run never stops a render. Our own assertion errors and out-of-memory propagate."""
    try:
        return fused()
    except (AssertionError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as e:  # triton's CompilationError, OutOfResources, driver errors, ptxas failures, ...
        interrupt = _interrupt_behind(e)
        if interrupt is not None:  # Ctrl-C or SIGTERM landed inside the kernel's dispatch: stop, as anywhere else
            raise interrupt from None
        if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
            raise  # a failed launch has already invalidated the capture; CapturedCall's warm-up runs come first
        why = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else 'no message'}"
        _failed[op] = why
        warnings.warn(f"{op} failed here and is not used from now on ({why}); running the unfused FIR path",
                      RuntimeWarning, stacklevel=3)
        return plain()


# ------------------------------------------------------------------------------------------------
# Polyphase filter banks of one (filters, dtype, device, tile size).


@dataclass
class FusedPlan:
    """The four filter-bank stacks and the tiling numbers the kernel takes (see filtered_lrelu_triton)."""

    wux: torch.Tensor  # [RU, IB, AB]: input columns -> upsampled columns, per separable term
    wuy: torch.Tensor  # [RU, AB, IB]: input rows -> upsampled rows
    wdx: torch.Tensor  # [RD, AB, TB]: activation columns -> kept output columns
    wdy: torch.Tensor  # [RD, TB, AB]: activation rows -> kept output rows
    tile: int  # output samples per tile side (<= TB)
    in_step: int  # input samples a tile advances by: tile * down / up
    in_need: int  # input samples per tile side (<= IB)
    in_x0: int  # first input column of tile 0 (negative inside the padding)
    in_y0: int  # first input row of tile 0

    @property
    def blocks(self) -> tuple[int, int, int, int, int]:
        """(IB, AB, TB, RU, RD): the kernel's block sizes and separable terms, what one compiled variant is for."""
        ru, ib, ab = self.wux.shape
        rd, _, tb = self.wdx.shape
        return ib, ab, tb, ru, rd

    @property
    def tile_macs(self) -> int:
        """Multiply-adds of one tile of one channel map: the four dots per separable term (see the kernel)."""
        ib, ab, tb, ru, rd = self.blocks
        return ru * (ib * ib * ab + ab * ib * ab) + rd * (ab * ab * tb + tb * ab * tb)


def _next_pow2(n: int) -> int:
    return max(MIN_BLOCK, 1 << (int(n) - 1).bit_length())


def _terms(f: torch.Tensor | None, gain: float, rel_tol: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """f * gain as sum_r col_r (along y) (x) row_r (along x), float64, the terms whose singular value is above
    rel_tol times the first; a 1-D f is one term of itself."""
    if f is None:
        return [(np.ones(1) * math.sqrt(gain), np.ones(1) * math.sqrt(gain))]
    g = f.detach().to("cpu", torch.float64).numpy()
    if g.ndim == 1:
        g = g * math.sqrt(gain)
        return [(g, g)]
    u, s, vh = np.linalg.svd(g * gain)
    keep = int((s > s[0] * rel_tol).sum())
    return [(u[:, r] * math.sqrt(s[r]), vh[r] * math.sqrt(s[r])) for r in range(keep)]


def _up_bank(f: np.ndarray, up: int, p0: int, ab: int, ib: int) -> np.ndarray:
    """[AB, IB]: upsampled sample a of a tile from input sample j of its window (true convolution).

    Tile windows start at input floor((Y0 - p0) / up) for a tile starting at upsampled sample Y0 (a
    multiple of up), so tap k = up*j - a + c0 with c0 = p0 - up*ceil(p0/up) for every tile.
    """
    k_len = len(f)
    c0 = p0 + up * ((-p0) // up)
    k = up * np.arange(ib)[None, :] - np.arange(ab)[:, None] + c0
    ok = (k >= 0) & (k < k_len)
    return np.where(ok, f[::-1][np.clip(k, 0, k_len - 1)], 0.0)


def _down_bank(f: np.ndarray, down: int, tile: int, ab: int, tb: int) -> np.ndarray:
    """[TB, AB]: output o of a tile from activation sample a (true convolution, no padding); rows >= tile are 0."""
    k_len = len(f)
    k = np.arange(ab)[None, :] - down * np.arange(tb)[:, None]
    ok = (k >= 0) & (k < k_len) & (np.arange(tb)[:, None] < tile)
    return np.where(ok, f[::-1][np.clip(k, 0, k_len - 1)], 0.0)


def fused_plan(
    fu: torch.Tensor | None, fd: torch.Tensor | None, up: int, down: int, padding: tuple[int, int, int, int],
    fu_gain: float, dtype: torch.dtype, device: torch.device, act_block: int,
) -> FusedPlan:
    """Filter banks in `dtype` (the dot operands' dtype) for tiles of act_block upsampled samples a side."""
    ku = 1 if fu is None else fu.shape[0]
    kd = 1 if fd is None else fd.shape[0]
    px0, _, py0, _ = padding
    if act_block < kd or act_block & (act_block - 1):
        raise ValueError(f"act_block must be a power of two >= {kd}, got {act_block}")
    tile = (act_block - kd) // down + 1  # outputs whose down-filter support fits the activation tile
    while (tile * down) % up:
        tile -= 1  # tiles must start at a multiple of up upsampled samples (one bank for all tiles)
    if tile < 1:
        raise ValueError(f"act_block {act_block} is too small for up={up}, down={down}, {kd} taps")
    a_need = (tile - 1) * down + kd  # activation samples the kept outputs read
    in_need = max((a_need - 1 + ku - 1 - (p0 + up * ((-p0) // up))) // up + 1 for p0 in (px0, py0))
    ib, tb = _next_pow2(in_need), _next_pow2(tile)
    rel_tol = SVD_EPS_FRACTION * torch.finfo(dtype).eps
    up_terms, down_terms = _terms(fu, fu_gain, rel_tol), _terms(fd, 1.0, rel_tol)

    def stack(banks: list[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(banks)).to(device=device, dtype=dtype).contiguous()

    return FusedPlan(
        wux=stack([_up_bank(row, up, px0, act_block, ib).T for _, row in up_terms]),
        wuy=stack([_up_bank(col, up, py0, act_block, ib) for col, _ in up_terms]),
        wdx=stack([_down_bank(row, down, tile, act_block, tb).T for _, row in down_terms]),
        wdy=stack([_down_bank(col, down, tile, act_block, tb) for col, _ in down_terms]),
        tile=tile, in_step=tile * down // up, in_need=in_need, in_x0=(-px0) // up, in_y0=(-py0) // up,
    )


# ------------------------------------------------------------------------------------------------
# The fused op.


def fused_filtered_lrelu(
    x: torch.Tensor,  # [B, C, H, W] fp16 / bf16 / fp32, CUDA (or CPU under TRITON_INTERPRET=1)
    bias: torch.Tensor,  # [C]
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    fu_gain: float,
    gain: float,
    slope: float,
    clamp: float | None,
    cache: dict | None = None,  # the caller's: filter banks per (filters, dtype, device, tile size)
    act_block: int | None = None,  # upsampled samples per tile side (power of two); None: per device and dtype
    num_warps: int = NUM_WARPS,  # warps per program (a GPU tuning knob; bench_gpu.py --tiles sweeps it)
    dot_precision: str = "ieee",  # fp32 only, DOT_PRECISIONS (a GPU candidate: bench_gpu.py --layer-dtypes fp32-tf32x3)
    scale: torch.Tensor | None = None,  # [B, C]: x * scale before the bias (the demodulation at batch > 1)
) -> torch.Tensor:  # [B, C, OH, OW], x's dtype
    """Run the Triton kernel (see the module docstring for the semantics)."""
    from .filtered_lrelu_triton import filtered_lrelu_op

    assert x.ndim == 4 and bias.shape == (x.shape[1],), (x.shape, bias.shape)
    assert dot_precision in DOT_PRECISIONS, dot_precision
    if scale is not None:
        assert scale.shape == x.shape[:2], (scale.shape, x.shape)
        scale = scale.to(torch.float32).contiguous()
    if act_block is None:
        act_block = ACT_BLOCK_CUDA[x.dtype] if x.is_cuda else ACT_BLOCK_INTERPRETER
    plan = filter_table(cache, (fu, fd), (up, down, padding, fu_gain, x.dtype, x.device, act_block),
                        lambda: fused_plan(fu, fd, up, down, padding, fu_gain, x.dtype, x.device, act_block))
    ku = 1 if fu is None else fu.shape[0]
    kd = 1 if fd is None else fd.shape[0]
    px0, px1, py0, py1 = padding
    out_h = output_size(x.shape[2], ku, kd, up, down, py0, py1)
    out_w = output_size(x.shape[3], ku, kd, up, down, px0, px1)
    return filtered_lrelu_op(
        x, scale, bias.to(torch.float32), plan.wux, plan.wuy, plan.wdx, plan.wdy, out_h, out_w,
        plan.in_y0, plan.in_x0, plan.in_step, plan.tile, plan.in_need,
        float(gain), float(slope), -1.0 if clamp is None else float(clamp),
        PLANES_PER_PROGRAM_CUDA if x.is_cuda else PLANES_PER_PROGRAM_INTERPRETER, num_warps, dot_precision,
    )


def filtered_lrelu(
    x: torch.Tensor, bias: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, up: int, down: int,
    padding: tuple[int, int, int, int], fu_gain: float, gain: float, slope: float, clamp: float | None,
    impl: str = "auto", cache: dict | None = None,
) -> torch.Tensor:
    """The dispatcher: the fused op where `use_fused(impl, x)`, else the plain path."""
    args = (x, bias, fu, fd, up, down, padding, fu_gain, gain, slope, clamp)
    if use_fused(impl, x):
        return fused_or_plain(FUSED_OP, lambda: fused_filtered_lrelu(*args, cache), lambda: filtered_lrelu_reference(*args))
    return filtered_lrelu_reference(*args)
