"""The Triton kernel of StyleGAN2's fused layer epilogue and its torch.library registration.

Imported only when the fused path runs (fir_bias_act.py imports it lazily): `import sg3rt` never imports
triton. One program computes one output tile of one channel map, all arithmetic in fp32:

    acc = sum_{i,j} taps[i, j] * x[oy + i - pad_y, ox + j - pad_x]   (zero outside x: the padding)
    acc = acc * scale[b, c]                                           (demodulation, when not folded)
    acc = acc + noise[b, oy, ox] * strength + bias[c]
    y   = clamp(lrelu(acc, slope) * gain, +-clamp)

The K x K taps are few (the 4 x 4 blur of an upsampling layer, or one unit tap) and memory-bound work:
each tap is one masked load of the tile, which the neighbouring taps re-read from cache.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .triton_compile import TRITON_DTYPES, KernelResources, compiled_resources


@triton.jit
def _fir_bias_act_kernel(
    x_ptr, taps_ptr, scale_ptr, noise_ptr, strength_ptr, bias_ptr, y_ptr,
    # [B, C, H, W] input, [K, K] fp32 correlation taps, [B, C] fp32 scale, [B or 1, OH, OW] fp32 noise,
    # [1] fp32 noise strength, [C] fp32 bias, [B, C, OH, OW] output
    C, H, W, OH, OW,  # sizes
    sxb, sxc, sxh, sxw, syb, syc, syh, syw, snb,  # strides in elements (snb = 0: one noise map for the batch)
    pad_y, pad_x,  # padding before the first row / column (negative: a crop)
    tiles_x,  # tiles per output row
    gain, slope, clamp,  # activation: clamp(lrelu(acc, slope) * gain, -clamp, clamp)
    K: tl.constexpr,  # taps per side
    HAS_SCALE: tl.constexpr, HAS_NOISE: tl.constexpr, HAS_CLAMP: tl.constexpr,
    BH: tl.constexpr, BW: tl.constexpr,  # output tile rows, columns
):
    pid_tile = tl.program_id(0)
    plane = tl.program_id(1)
    b = (plane // C).to(tl.int64)
    c = plane % C
    oy = (pid_tile // tiles_x) * BH + tl.arange(0, BH)  # [BH] output rows
    ox = (pid_tile % tiles_x) * BW + tl.arange(0, BW)  # [BW] output columns
    out_mask = (oy < OH)[:, None] & (ox < OW)[None, :]

    x_base = x_ptr + b * sxb + c * sxc
    acc = tl.zeros([BH, BW], dtype=tl.float32)
    for i in tl.static_range(K):
        iy = oy + (i - pad_y)
        row_ok = (iy >= 0) & (iy < H)
        for j in tl.static_range(K):
            ix = ox + (j - pad_x)
            m = row_ok[:, None] & ((ix >= 0) & (ix < W))[None, :]
            v = tl.load(x_base + iy[:, None] * sxh + ix[None, :] * sxw, mask=m, other=0.0).to(tl.float32)
            acc += v * tl.load(taps_ptr + i * K + j)

    if HAS_SCALE:
        acc = acc * tl.load(scale_ptr + b * C + c)
    if HAS_NOISE:
        noise = tl.load(noise_ptr + b * snb + oy[:, None] * OW + ox[None, :], mask=out_mask, other=0.0)
        acc += noise * tl.load(strength_ptr)
    acc += tl.load(bias_ptr + c)
    a = tl.where(acc >= 0, acc, acc * slope) * gain
    if HAS_CLAMP:
        a = tl.minimum(tl.maximum(a, -clamp), clamp)
    tl.store(y_ptr + b * syb + c * syc + oy[:, None] * syh + ox[None, :] * syw, a.to(y_ptr.dtype.element_ty),
             mask=out_mask)


@triton_op("sg3rt::fir_bias_act", mutates_args=())
def fir_bias_act_op(
    x: torch.Tensor,  # [B, C, H, W] fp16 / bf16 / fp32
    taps: torch.Tensor,  # [K, K] fp32 correlation taps (gain included)
    scale: torch.Tensor | None,  # [B, C] fp32, contiguous
    noise: torch.Tensor | None,  # [B or 1, out_h, out_w] fp32, contiguous
    strength: torch.Tensor | None,  # [1] fp32 (with noise)
    bias: torch.Tensor,  # [C] fp32
    out_h: int,
    out_w: int,
    pad_y: int,
    pad_x: int,
    gain: float,
    slope: float,
    clamp: float,  # < 0: no clamp
    block_h: int,
    block_w: int,
    num_warps: int,
) -> torch.Tensor:  # [B, C, out_h, out_w], x's dtype
    """Launch: one program per (output tile, channel map)."""
    B, C, H, W = x.shape
    y = torch.empty([B, C, out_h, out_w], dtype=x.dtype, device=x.device)
    tiles_x = -(-out_w // block_w)
    grid = (-(-out_h // block_h) * tiles_x, B * C)
    wrap_triton(_fir_bias_act_kernel)[grid](
        x, taps, bias if scale is None else scale, bias if noise is None else noise,
        bias if strength is None else strength, bias, y,
        C, H, W, out_h, out_w,
        *x.stride(), *y.stride(), 0 if noise is None or noise.shape[0] == 1 else noise.stride(0),
        pad_y, pad_x, tiles_x,
        gain, slope, clamp,
        K=taps.shape[0], HAS_SCALE=scale is not None, HAS_NOISE=noise is not None, HAS_CLAMP=clamp >= 0,
        BH=block_h, BW=block_w, num_warps=num_warps,
    )
    return y


def kernel_resources(k: int, block_h: int, block_w: int, dtype: torch.dtype, arch: int = 90,
                     num_warps: int = 4) -> KernelResources:
    """The kernel (K x K taps, a block_h x block_w tile, scale and noise on) compiled for `arch` without a GPU,
    and its resource use (triton_compile.py)."""
    constexprs = dict(K=k, HAS_SCALE=True, HAS_NOISE=True, HAS_CLAMP=True, BH=block_h, BW=block_w)
    pointers = {name: "fp32" for name in ("taps_ptr", "scale_ptr", "noise_ptr", "strength_ptr", "bias_ptr")}
    return compiled_resources(_fir_bias_act_kernel, constexprs, pointers, TRITON_DTYPES[dtype],
                              ("gain", "slope", "clamp"), arch, num_warps)
