"""The Triton kernel of the fused filtered leaky ReLU and its torch.library registration.

Imported only when the fused path runs (filtered_lrelu.py imports it lazily): `import sg3rt` never
imports triton. One program filters one output tile of one channel map:

    X  [IB, IB]  input tile (x scale) + bias, zero outside the map (the padding)  global -> registers
    H  = X @ WUX_r            [IB, AB]   horizontal polyphase upsampling  (tl.dot)
    U  = sum_r WUY_r @ H      [AB, AB]   vertical polyphase upsampling
    A  = clamp(lrelu(U) * gain)          activation tile, fp32, never stored
    G  = A @ WDX_r            [AB, TB]   horizontal down-filter at the kept columns only
    Y  = sum_r WDY_r @ G      [TB, TB]   vertical down-filter at the kept rows only -> global

The W matrices are dense polyphase filter banks built on the host (filtered_lrelu.fused_plan): the
zero-inserted samples never exist, and because a tile advances by a multiple of `up` upsampled
samples every tile uses the same matrices. A 2-D filter is a sum of separable terms (r).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .triton_compile import TRITON_DTYPES as _TRITON_DTYPES
from .triton_compile import KernelResources, compiled_resources


@triton.jit
def _filtered_lrelu_kernel(
    x_ptr, scale_ptr, bias_ptr, y_ptr,  # [B, C, H, W] input, [B, C] fp32 scale, [C] fp32 bias, [B, C, OH, OW] output
    wux_ptr, wuy_ptr, wdx_ptr, wdy_ptr,  # [RU, IB, AB], [RU, AB, IB], [RD, AB, TB], [RD, TB, AB]
    C, H, W, OH, OW, planes,  # sizes; planes = B * C
    sxb, sxc, sxh, sxw, syb, syc, syh, syw,  # strides in elements
    in_y0, in_x0,  # input row / column read first by tile 0 (negative: padding)
    in_step, tile,  # input samples and output samples a tile advances by
    in_need,  # input samples a tile reads (<= IB; the rest of the block is masked off)
    tiles_x,  # tiles per output row
    gain, slope, clamp,  # activation: clamp(lrelu(u, slope) * gain, -clamp, clamp)
    IB: tl.constexpr, AB: tl.constexpr, TB: tl.constexpr,  # input / activation / output block sizes
    RU: tl.constexpr, RD: tl.constexpr,  # separable terms of the up and down filters
    HAS_CLAMP: tl.constexpr,
    HAS_SCALE: tl.constexpr,  # x * scale[b, c] before the bias (the demodulation, where not folded into the conv)
    PLANES_PER_PROGRAM: tl.constexpr,  # channel maps one program filters, reusing the loaded matrices
    DOT_PRECISION: tl.constexpr,  # "ieee" keeps fp32 exact; ignored for fp16 / bf16 operands
):
    pid_tile = tl.program_id(0)
    pid_plane = tl.program_id(1)
    ty = pid_tile // tiles_x
    tx = pid_tile % tiles_x
    dot_dtype = wux_ptr.dtype.element_ty

    ri = tl.arange(0, IB)
    ra = tl.arange(0, AB)
    rt = tl.arange(0, TB)
    rows = ty * in_step + in_y0 + ri  # [IB] input rows of this tile
    cols = tx * in_step + in_x0 + ri  # [IB] input columns
    row_ok = (rows >= 0) & (rows < H) & (ri < in_need)
    col_ok = (cols >= 0) & (cols < W) & (ri < in_need)
    in_mask = row_ok[:, None] & col_ok[None, :]  # [IB, IB]
    out_rows = ty * tile + rt
    out_cols = tx * tile + rt
    out_mask = ((rt < tile) & (out_rows < OH))[:, None] & ((rt < tile) & (out_cols < OW))[None, :]  # [TB, TB]

    ux_offs = ri[:, None] * AB + ra[None, :]  # [IB, AB] offsets into one bank of each stack
    uy_offs = ra[:, None] * IB + ri[None, :]  # [AB, IB]
    dx_offs = ra[:, None] * TB + rt[None, :]  # [AB, TB]
    dy_offs = rt[:, None] * AB + ra[None, :]  # [TB, AB]
    in_offs = rows[:, None] * sxh + cols[None, :] * sxw
    out_offs = out_rows[:, None] * syh + out_cols[None, :] * syw

    for p in range(PLANES_PER_PROGRAM):
        plane = pid_plane * PLANES_PER_PROGRAM + p
        if plane < planes:
            b = (plane // C).to(tl.int64)
            c = plane % C
            xt = tl.load(x_ptr + (b * sxb + c * sxc) + in_offs, mask=in_mask, other=0.0).to(tl.float32)
            if HAS_SCALE:
                xt = xt * tl.load(scale_ptr + plane)
            xt = tl.where(in_mask, xt + tl.load(bias_ptr + c), 0.0).to(dot_dtype)  # bias, then zero padding

            u = tl.zeros([AB, AB], dtype=tl.float32)
            for r in tl.static_range(RU):
                h = tl.dot(xt, tl.load(wux_ptr + r * IB * AB + ux_offs), input_precision=DOT_PRECISION)  # [IB, AB]
                u += tl.dot(tl.load(wuy_ptr + r * AB * IB + uy_offs), h.to(dot_dtype), input_precision=DOT_PRECISION)

            a = tl.where(u >= 0, u, u * slope) * gain
            if HAS_CLAMP:
                a = tl.minimum(tl.maximum(a, -clamp), clamp)
            a = a.to(dot_dtype)

            y = tl.zeros([TB, TB], dtype=tl.float32)
            for r in tl.static_range(RD):
                g = tl.dot(a, tl.load(wdx_ptr + r * AB * TB + dx_offs), input_precision=DOT_PRECISION)  # [AB, TB]
                y += tl.dot(tl.load(wdy_ptr + r * TB * AB + dy_offs), g.to(dot_dtype), input_precision=DOT_PRECISION)

            tl.store(y_ptr + (b * syb + c * syc) + out_offs, y.to(y_ptr.dtype.element_ty), mask=out_mask)


@triton_op("sg3rt::filtered_lrelu", mutates_args=())
def filtered_lrelu_op(
    x: torch.Tensor,  # [B, C, H, W] fp16 / bf16 / fp32
    scale: torch.Tensor | None,  # [B, C] fp32, contiguous: x * scale before the bias; None: no scale
    bias: torch.Tensor,  # [C] fp32
    wux: torch.Tensor,  # [RU, IB, AB] in the dot dtype (x's dtype)
    wuy: torch.Tensor,  # [RU, AB, IB]
    wdx: torch.Tensor,  # [RD, AB, TB]
    wdy: torch.Tensor,  # [RD, TB, AB]
    out_h: int,
    out_w: int,
    in_y0: int,
    in_x0: int,
    in_step: int,
    tile: int,
    in_need: int,
    gain: float,
    slope: float,
    clamp: float,  # < 0: no clamp
    planes_per_program: int,
    num_warps: int,
    dot_precision: str,  # fp32 dots: "ieee" (exact, CUDA cores) or "tf32x3" (tensor cores); fp16/bf16 ignore it
) -> torch.Tensor:  # [B, C, out_h, out_w], x's dtype
    """Launch: one program per (output tile, group of channel maps)."""
    B, C, H, W = x.shape
    IB, AB, TB = wux.shape[1], wux.shape[2], wdx.shape[2]
    y = torch.empty([B, C, out_h, out_w], dtype=x.dtype, device=x.device)
    tiles_y, tiles_x = -(-out_h // tile), -(-out_w // tile)
    planes = B * C
    grid = (tiles_y * tiles_x, -(-planes // planes_per_program))
    wrap_triton(_filtered_lrelu_kernel)[grid](
        x, bias if scale is None else scale, bias, y, wux, wuy, wdx, wdy,
        C, H, W, out_h, out_w, planes,
        *x.stride(), *y.stride(),
        in_y0, in_x0, in_step, tile, in_need, tiles_x,
        gain, slope, clamp,
        IB=IB, AB=AB, TB=TB, RU=wux.shape[0], RD=wdx.shape[0], HAS_CLAMP=clamp >= 0, HAS_SCALE=scale is not None,
        PLANES_PER_PROGRAM=planes_per_program, DOT_PRECISION=dot_precision, num_warps=num_warps,
    )
    return y


def kernel_resources(ib: int, ab: int, tb: int, ru: int, rd: int, dtype: torch.dtype, dot_precision: str = "ieee",
                     arch: int = 90, num_warps: int = 4) -> KernelResources:
    """The kernel compiled for NVIDIA compute capability `arch` (90 = H100, 89 = RTX 40xx, 80 = A100) without a
    GPU, and its resource use (triton_compile.py): a variant that spills registers runs far below the GPU's speed."""
    constexprs = dict(IB=ib, AB=ab, TB=tb, RU=ru, RD=rd, HAS_CLAMP=True, HAS_SCALE=True, PLANES_PER_PROGRAM=1,
                      DOT_PRECISION=dot_precision)
    pointers = {"bias_ptr": "fp32", "scale_ptr": "fp32"}  # the other pointers are of x's dtype
    return compiled_resources(_filtered_lrelu_kernel, constexprs, pointers, _TRITON_DTYPES[dtype],
                              ("gain", "slope", "clamp"), arch, num_warps)
