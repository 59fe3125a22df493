"""FIR resampling helpers: export-safe padding/cropping, and up/down-sampling as tiled banded matrix
products (the fast form on a GPU). `layers.FirFilter` (the depthwise-conv form) builds on this file.

cuDNN has no fast kernel for depthwise transposed convolutions with 12-24 taps: on an H100 the
separable x4 upsampling of one StyleGAN3-R 1024 layer (fp16) took 37.9 ms with them and 3.6 ms here
(benchmarks/results/bench_gpu.json). The same filtering is a matrix product per tile:
T consecutive outputs of a 1-D pass depend on one window of `window` inputs, the window moves by `step`
inputs per tile, and every tile uses the same [window, T] matrix (the filter is shift-invariant).
So a pass is an unfold (an im2col of about 1.3x the input) and one GEMM.

A 2-D (radial) filter is split by SVD into a few separable terms: its singular values fall below 1e-8
of the first after 4-5 terms, under float32 rounding. That is exact but slower than cuDNN's strided
depthwise conv (29 vs 12 ms), so `FirFilter` uses this form for upsampling only, unless told otherwise.
Everything here is plain torch; exports keep the depthwise convolutions, which ONNX Runtime's cuDNN
algorithm search and TensorRT run directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

TILE_UP = 32  # outputs per tile of an upsampling pass (a multiple of the factor: 2 or 4)
TILE_DOWN = 16  # outputs per tile of a downsampling pass
SVD_REL_TOL = 1e-8  # keep singular values of a 2-D filter above this fraction of the largest
# ORT CPU form, horizontal pass: rows up to MATMUL_DENSE_MAX_W wide use one dense banded matrix; wider rows
# use tiles of MATMUL_TILE_IN inputs (ORT, 1 thread, busy machine: sg3r_256 about 15 % faster tiled; sg3r_64,
# 84 columns, about 10 % faster dense).
MATMUL_DENSE_MAX_W = 128
MATMUL_TILE_IN = 64


def pad_or_crop(x: torch.Tensor, dim: int, lo: int, hi: int) -> torch.Tensor:
    """Add zeros (positive) or remove samples (negative) at both ends of a spatial dim.

    Crops are slices and pads are constant pads, so the ONNX graph never needs negative Pad values.
    """
    if lo < 0 or hi < 0:
        index = [slice(None)] * 4
        index[dim] = slice(max(-lo, 0), hi if hi < 0 else None)
        x = x[tuple(index)]
        lo, hi = max(lo, 0), max(hi, 0)
    if lo > 0 or hi > 0:
        pads = [0, 0, 0, 0]
        k = 0 if dim == 3 else 2  # F.pad lists the last dim first
        pads[k], pads[k + 1] = lo, hi
        x = F.pad(x, pads)
    return x


@dataclass(frozen=True)
class BandPlan:
    """How one 1-D pass maps onto tiles: y[o] = sum_k g[k] x[(o*down + k - p0) / up] (integral indices)."""

    tile: int  # outputs per tile
    step: int  # input samples the window advances per tile
    offset: int  # input index of the first window's first sample (negative: zeros before the signal)
    window: int  # input samples per window
    taps: np.ndarray  # [window, tile] tap index feeding (input, output), -1 where none


@lru_cache(maxsize=None)
def band_plan(taps: int, up: int, down: int, p0: int) -> BandPlan:
    """The tiling of a pass with K taps, a zero-insertion or decimation factor and leading padding p0."""
    tile = TILE_UP if up > 1 else TILE_DOWN
    step = tile // up if up > 1 else tile * down
    pairs = []  # (window input index, output index, tap)
    for t in range(tile):
        for k in range(taps):
            n = t * down + k - p0
            if n % up == 0:
                pairs.append((n // up, t, k))
    offset = min(p[0] for p in pairs)
    window = max(p[0] for p in pairs) - offset + 1
    index = np.full([window, tile], -1, dtype=np.int64)
    for i, t, k in pairs:
        index[i - offset, t] = k
    return BandPlan(tile, step, offset, window, index)


def band_matrix(plan: BandPlan, g: torch.Tensor) -> torch.Tensor:
    """[window, tile] matrix of one tile from the correlation taps g [K] (dtype and device of g)."""
    index = torch.from_numpy(plan.taps).to(g.device)
    return torch.where(index >= 0, g[index.clamp(min=0)], torch.zeros((), dtype=g.dtype, device=g.device))


def output_length(length: int, taps: int, up: int, down: int, p0: int, p1: int) -> int:
    return (length * up + p0 + p1 - taps) // down + 1


def _windows(x: torch.Tensor, plan: BandPlan, dim: int, out_len: int) -> torch.Tensor:
    """Overlapping input windows of every tile along dim (a view; the GEMM copies it once)."""
    tiles = -(-out_len // plan.tile)
    end = plan.offset + (tiles - 1) * plan.step + plan.window  # one past the last input sample read
    x = pad_or_crop(x, dim, -plan.offset, end - x.shape[dim])
    return x.unfold(dim, plan.window, plan.step)  # dim 3: [B, C, H, tiles, window]; dim 2: [B, C, tiles, W, window]


def _rows_times(windows: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """[..., window] @ [window, N] as one GEMM over a contiguous im2col copy (not thousands of tiny ones)."""
    return (windows.reshape(-1, windows.shape[-1]) @ matrix).reshape(*windows.shape[:-1], matrix.shape[1])


def vertical_pass(x: torch.Tensor, matrix: torch.Tensor, plan: BandPlan, out_len: int) -> torch.Tensor:
    """Filter x [B, C, H, W] along H with a tile matrix [window, tile] -> [B, C, out_len, W]."""
    assert matrix.shape == (plan.window, plan.tile)
    windows = _windows(x, plan, 2, out_len)  # [B, C, tiles, W, window]
    y = matrix.t() @ windows.transpose(-1, -2)  # [B, C, tiles, tile, W]
    return y.flatten(2, 3)[:, :, :out_len]


def separable_terms(f2: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A 2-D filter [K, K] as sum_r col_r (x) row_r (SVD, float64 on the CPU), terms above SVD_REL_TOL."""
    u, s, vh = torch.linalg.svd(f2.detach().to("cpu", torch.float64))
    keep = int((s > s[0] * SVD_REL_TOL).sum())
    return [(u[:, r] * math.sqrt(float(s[r])), vh[r] * math.sqrt(float(s[r]))) for r in range(keep)]


@dataclass
class FirMatrices:
    """Everything a filter needs per call, built once per (filter, dtype, device)."""

    plan_x: BandPlan
    plan_y: BandPlan
    rows: torch.Tensor  # [plan_x.window, terms * plan_x.tile]: the horizontal pass of every term
    cols: list[torch.Tensor]  # per term, [plan_y.window, plan_y.tile]: its vertical pass


def fir_matrices(g: torch.Tensor, taps: int, up: int, down: int, padding: tuple[int, int, int, int],
                 dtype: torch.dtype, device: torch.device) -> FirMatrices:
    """g: correlation taps, [K] (separable, the same along x and y) or [K, K] (2-D, split by SVD)."""
    plan_x, plan_y = band_plan(taps, up, down, padding[0]), band_plan(taps, up, down, padding[2])
    g = g.detach().to("cpu", torch.float64)
    terms = [(g, g)] if g.ndim == 1 else separable_terms(g)
    rows = torch.cat([band_matrix(plan_x, row) for _, row in terms], dim=1)
    cols = [band_matrix(plan_y, col).to(device, dtype) for col, _ in terms]
    return FirMatrices(plan_x, plan_y, rows.to(device, dtype), cols)


def fir_matmul(x: torch.Tensor, m: FirMatrices, taps: int, up: int, down: int,
               padding: tuple[int, int, int, int]) -> torch.Tensor:
    """upfirdn2d by tiled matrix products: x [B, C, H, W] -> [B, C, H', W'] (see FirFilter)."""
    assert x.ndim == 4 and m.rows.dtype == x.dtype, (x.shape, x.dtype, m.rows.dtype)
    px0, px1, py0, py1 = padding
    out_w = output_length(x.shape[3], taps, up, down, px0, px1)
    out_h = output_length(x.shape[2], taps, up, down, py0, py1)
    # Horizontal passes of all terms in one GEMM: -> [B, C, H, tiles, terms, tile].
    h = _rows_times(_windows(x, m.plan_x, 3, out_w), m.rows).unflatten(-1, (len(m.cols), m.plan_x.tile))
    y = None
    for r, col in enumerate(m.cols):
        term = vertical_pass(h[..., r, :].flatten(3)[..., :out_w], col, m.plan_y, out_h)
        y = term if y is None else y + term
    return y


# ------------------------------------------------------------------------------------------------
# The ONNX Runtime CPU form of upsampling (export only): a banded MatMul along x, polyphase rows along y.
#
# ORT's CPU ConvTranspose with groups=C loops over the channels with a K=1 GEMM and a col2im each (59-76 %
# of ORT's time on sg3r_64, issue 13). Here the horizontal pass is one MatMul by a constant [W, W'] banded
# matrix, and the vertical pass is `up` stride-1 depthwise Convs (one per output phase) whose outputs are
# interleaved by whole rows (a Stack + Reshape: contiguous row copies). All ops are plain ONNX.


def _numpy_taps(g: torch.Tensor) -> np.ndarray:
    """Taps as float64 numpy: the matrices built from them are constants of a traced graph."""
    return g.detach().to("cpu", torch.float64).numpy()


def _taps_at(g: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
    """float64 tensor shaped like idx: the tap g[idx] where 0 <= idx < K, else 0."""
    k = int(g.shape[0])
    return torch.from_numpy(np.where((idx >= 0) & (idx < k), _numpy_taps(g)[np.clip(idx, 0, k - 1)], 0.0))


def banded_matrix(g: torch.Tensor, length: int, up: int, p0: int, p1: int) -> torch.Tensor:
    """[length, out_len] float64 M with y = x @ M the zero-inserted (up), padded (p0, p1) signal correlated
    with taps g [K]: M[i, o] = g[i * up + p0 - o] where that index is a tap."""
    k = int(g.shape[0])
    out_len = output_length(length, k, up, 1, p0, p1)
    return _taps_at(g, np.arange(length)[:, None] * up + p0 - np.arange(out_len)[None, :])


def tiled_band(g: torch.Tensor, up: int, p0: int, tile_in: int) -> tuple[torch.Tensor, int]:
    """One tile of a zero-inserting pass as a matrix: ([win, tile_in * up] float64, a). Tile t's outputs
    t*T .. t*T+T-1 (T = tile_in * up) read inputs t*tile_in + a .. + win - 1, with the same matrix for every t."""
    k, t_out = int(g.shape[0]), tile_in * up
    a = -(p0 // up)  # ceil(-p0 / up): the first input any output of tile 0 reads
    win = (t_out - 1 - p0 + k - 1) // up - a + 1
    return _taps_at(g, (a + np.arange(win))[:, None] * up + p0 - np.arange(t_out)[None, :]), a


def banded_columns(x: torch.Tensor, g: torch.Tensor, up: int, p0: int, p1: int, tile_in: int,
                   crop: bool = True) -> torch.Tensor:
    """The horizontal pass of x [B, C, H, W] as one MatMul on overlapping column windows of `tile_in` inputs
    (Slices + Stack), so a multiply-add per tap window, not per input column -> [B, C, H, W'].
    crop=False keeps the last tile whole (W' rounded up to a tile: the pass continued on zero padding)."""
    k, length = int(g.shape[0]), int(x.shape[3])
    out_len = output_length(length, k, up, 1, p0, p1)
    m, a = tiled_band(g, up, p0, tile_in)
    win, t_out = int(m.shape[0]), int(m.shape[1])
    tiles = -(-out_len // t_out)
    end = a + (tiles - 1) * tile_in + win  # one past the last input read
    xp = pad_or_crop(x, 3, -a, end - length)  # column 0 of xp is input a
    windows = torch.stack([xp[..., t * tile_in : t * tile_in + win] for t in range(tiles)], dim=3)  # [B,C,H,tiles,win]
    y = (windows @ m.to(x.dtype)).reshape(-1, int(x.shape[1]), int(x.shape[2]), tiles * t_out)
    return y[..., :out_len] if crop else y


def polyphase_taps(g: torch.Tensor, up: int, p0: int) -> tuple[torch.Tensor, int]:
    """Per output phase r, the stride-1 correlation taps of a zero-inserting pass: ([up, J] float64, j_lo).

    Output o = up*m + r reads input m + j with tap g[up*j + p0 - r]; all phases share the offsets
    j_lo .. j_lo + J - 1 (taps outside g are zero), so they share one padded input.
    """
    k = int(g.shape[0])
    j_lo = min(-((p0 - r) // up) for r in range(up))  # ceil((r - p0) / up), smallest over r
    j_hi = max((k - 1 + r - p0) // up for r in range(up))
    j = np.arange(j_lo, j_hi + 1)
    return _taps_at(g, up * j[None, :] + p0 - np.arange(up)[:, None]), j_lo  # [up, J]


def polyphase_rows(x: torch.Tensor, taps: torch.Tensor, j_lo: int, out_len: int, channels: int) -> torch.Tensor:
    """Upsample x [B, C, H, W] along H: one depthwise [J, 1] Conv per phase (taps [up, J], x's dtype),
    rows interleaved -> [B, C, out_len, W]. `channels` = C as a Python int (constant weights in a trace)."""
    up, j = int(taps.shape[0]), int(taps.shape[1])
    c, h = channels, int(x.shape[2])
    rows = -(-out_len // up)  # outputs per phase
    x = pad_or_crop(x, 2, -j_lo, rows + j - 1 - h + j_lo)
    phases = [F.conv2d(x, taps[r].reshape(1, 1, j, 1).expand(c, 1, j, 1), groups=c) for r in range(up)]
    w = int(x.shape[3])  # static sizes: a traced flatten would make the graph's spatial dims symbolic
    y = torch.stack(phases, dim=3).reshape(-1, c, rows * up, w)  # [B, C, rows*up, W]: phase r of row m is row up*m + r
    return y[:, :, :out_len]


def upsample_matmul_polyphase(x: torch.Tensor, g: torch.Tensor, up: int, padding: tuple[int, int, int, int],
                              channels: int) -> torch.Tensor:
    """upfirdn2d upsampling (correlation taps g: [K] separable or [K, K], gain included) of x [B, C, H, W]
    as banded MatMul (x) + polyphase rows (y); a 2-D g is split into separable terms (SVD, exact in fp32)."""
    assert x.ndim == 4 and x.shape[1] == channels, (x.shape, channels)
    px0, px1, py0, py1 = padding
    g = g.detach().to("cpu", torch.float64)
    terms = [(g, g)] if g.ndim == 1 else separable_terms(g)
    y = None
    for col, row in terms:
        if int(x.shape[3]) > MATMUL_DENSE_MAX_W:  # a dense [W, W'] matrix costs W multiply-adds per output
            h = banded_columns(x, row, up, px0, px1, MATMUL_TILE_IN)
        else:
            h = x @ banded_matrix(row, int(x.shape[3]), up, px0, px1).to(x.dtype)  # [B, C, H, W']
        taps, j_lo = polyphase_taps(col, up, py0)
        out_h = output_length(int(x.shape[2]), int(col.shape[0]), up, 1, py0, py1)
        term = polyphase_rows(h, taps.to(x.dtype), j_lo, out_h, channels)
        y = term if y is None else y + term
    return y


# ------------------------------------------------------------------------------------------------
# The ONNX Runtime CPU form of a whole StyleGAN3 filtered activation (export only): upsample, activation,
# downsample, with the vertical upsampling phases never interleaved.
#
# After the polyphase rows of upsample_matmul_polyphase, rows up*m + r of the upsampled map are phase r's
# row m. A strided down-filter reading rows down*o + k (up a multiple of down: StyleGAN3's factors are powers
# of two with up >= down) is then, per output phase q of up // down, a sum over r of stride-1 convolutions of
# phase r: the activation (elementwise) runs on each phase, fused into its Conv by ORT, and no upsampled map
# is ever copied into rows (the Stack/Slice that took 25 % of ORT's time at 256 px). Crops of the upsampled
# map are deferred to the (4x smaller) output: a valid output reads no sample past the cropped end.
# upsample_act_downsample_phases does the same along x too (no MatMul, no column windows): every op is then a
# depthwise Conv or an elementwise op that ORT runs in its blocked layout.


def merged_down_taps(d: np.ndarray, up: int, down: int) -> np.ndarray:
    """[up // down, up, J, ...] float64: taps of output phase q on upsampling phase r, t[q, r, i] = d[up*i + r - down*q]
    (zero outside d), from correlation taps d [K] or [K, K] whose first axis runs along the merged (y) axis."""
    k, ratio = int(d.shape[0]), up // down
    j = max((k - 1 - r + down * q) // up for q in range(ratio) for r in range(up)) + 1
    out = np.zeros((ratio, up, j, *d.shape[1:]))
    for q in range(ratio):
        for r in range(up):
            for i in range(j):
                if 0 <= up * i + r - down * q < k:
                    out[q, r, i] = d[up * i + r - down * q]
    return out


def lrelu_as_relu_sum(t: torch.Tensor, slope: float, clamp: float | None, channels: int) -> torch.Tensor:
    """clamp(lrelu(t), -clamp, clamp) / slope, as ops that ORT keeps in its blocked (NCHWc) layout after a Conv.

    lrelu(zc) = slope * (zc + (1/slope - 1) relu(zc)) with zc = clip(t, -clamp/slope, clamp) (the same clamp);
    ORT fuses the Clip into the Conv before it, runs Relu in place and the per-channel Mul + Add as a fused
    1x1 Conv. Its own LeakyRelu + Clip cannot both be fused and cost a layout copy each way (21 % of ORT's time
    at 256 px). The caller folds the factor `slope` into the (linear) down-filter.
    """
    zc = t if clamp is None else t.clamp(-clamp / slope, clamp)
    scale = torch.full([1, channels, 1, 1], 1 / slope - 1, dtype=t.dtype)  # per channel: a Mul ORT folds to a Conv
    return zc + torch.relu(zc) * scale


def _output(y: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """The merged forms' result cropped to [B, C, height, width] (crops were deferred to the output), with static
    sizes for ONNX shape inference, which cannot follow the traced Pads (a Reshape copies nothing)."""
    if int(y.shape[2]) > height or int(y.shape[3]) > width:
        y = y[:, :, :height, :width]
    return y.reshape(-1, channels, height, width)


def upsample_act_downsample(x: torch.Tensor, g: torch.Tensor, up: int, padding: tuple[int, int, int, int],
                            d: torch.Tensor, down: int, slope: float, clamp: float | None,
                            channels: int) -> torch.Tensor:
    """down(clamp(lrelu(up(x)))) for x [B, C, H, W] (C = channels, a Python int): g [K] separable upsampling
    correlation taps (gain included), d [Kd] separable or [Kd, Kd] 2-D downsampling correlation taps, leaky ReLU
    `slope` and symmetric `clamp` (None: none). Horizontal upsampling is a banded MatMul; see the comment above
    for the rest. -> [B, C, H', W']."""
    assert x.ndim == 4 and x.shape[1] == channels and g.ndim == 1, (x.shape, channels, g.shape)
    assert up % down == 0, (up, down)
    px0, px1, py0, py1 = padding
    k, kd, ratio = int(g.shape[0]), int(d.shape[0]), up // down
    h_in, w_in = int(x.shape[2]), int(x.shape[3])
    out_h = output_length(h_in, k, up, 1, py0, py1)  # rows and columns of the upsampled map
    out_w = output_length(w_in, k, up, 1, px0, px1)
    out_hd, out_wd = (out_h - kd) // down + 1, (out_w - kd) // down + 1  # of the output
    taps, j_lo = polyphase_taps(g, up, py0)
    j = int(taps.shape[1])
    tq = torch.from_numpy(merged_down_taps(_numpy_taps(d), up, down) * slope).to(x.dtype)  # see lrelu_as_relu_sum
    j2 = int(tq.shape[2])
    rows = max(-(-out_h // up), -(-out_hd // ratio) - 1 + j2)  # rows per phase: enough for every output
    # Rows are padded before the horizontal pass (it maps zero rows to zero rows), on the smaller tensor.
    x = pad_or_crop(x, 2, -j_lo, rows + j - 1 - h_in + j_lo)
    if w_in > MATMUL_DENSE_MAX_W:
        h = banded_columns(x, g, up, px0, px1, MATMUL_TILE_IN, crop=False)  # [B, C, H_p, >= out_w]
    else:
        h = x @ banded_matrix(g, w_in, up, px0, px1).to(x.dtype)  # [B, C, H_p, out_w]
    taps = taps.to(x.dtype)
    c = channels
    phases = [lrelu_as_relu_sum(F.conv2d(h, taps[r].reshape(1, 1, j, 1).expand(c, 1, j, 1), groups=c), slope, clamp, c)
              for r in range(up)]
    if d.ndim == 1:  # separable: the horizontal down pass on each phase, then the vertical one merged
        dx = torch.tensor(_numpy_taps(d), dtype=x.dtype).reshape(1, 1, 1, kd).expand(c, 1, 1, kd)  # a constant
        phases = [F.conv2d(p, dx, stride=(1, down), groups=c) for p in phases]
    stride = (1, down) if d.ndim == 2 else 1
    outs = []
    for q in range(ratio):
        y = None
        for r in range(up):
            w = tq[q, r].reshape(1, 1, j2, -1)
            term = F.conv2d(phases[r], w.expand(c, 1, j2, int(w.shape[3])), stride=stride, groups=c)
            y = term if y is None else y + term
        outs.append(y)
    y = outs[0]
    if ratio > 1:  # output phases interleaved by rows (on the output, 1 / (up * down) of the upsampled map)
        n, wd = int(y.shape[2]), int(y.shape[3])
        y = torch.stack(outs, dim=3).reshape(-1, c, n * ratio, wd)
    return _output(y, c, out_hd, out_wd)


def upsample_act_downsample_phases(x: torch.Tensor, g: torch.Tensor, up: int, padding: tuple[int, int, int, int],
                                   d: torch.Tensor, down: int, slope: float, clamp: float | None,
                                   channels: int) -> torch.Tensor:
    """upsample_act_downsample with both axes in phases: the upsampled map is never built, not even its
    columns. Phase (r, s) (rows up*m + r, columns up*n + s) is a stride-1 depthwise Conv of the padded input
    per axis, the activation runs on each phase map, and the down-filter sums stride-1 Convs over the phases
    per output phase (q_y, q_x); those are interleaved by DepthToSpace when up > down. -> [B, C, H', W']."""
    assert x.ndim == 4 and x.shape[1] == channels and g.ndim == 1, (x.shape, channels, g.shape)
    assert up % down == 0, (up, down)
    px0, px1, py0, py1 = padding
    k, kd, ratio, c = int(g.shape[0]), int(d.shape[0]), up // down, channels
    h_in, w_in = int(x.shape[2]), int(x.shape[3])
    out_h, out_w = output_length(h_in, k, up, 1, py0, py1), output_length(w_in, k, up, 1, px0, px1)
    out_hd, out_wd = (out_h - kd) // down + 1, (out_w - kd) // down + 1
    d64 = _numpy_taps(d)
    if d.ndim == 2:  # [ratio_y, up_y, J2, ratio_x, up_x, J2]: both axes of the 2-D taps merged
        m0 = merged_down_taps(d64, up, down)  # [ratio, up, J2, kd], rows merged
        tq = np.stack([[merged_down_taps(m0[q, r].T, up, down) for r in range(up)] for q in range(ratio)])
        tq = tq.transpose(0, 1, 5, 2, 3, 4)  # [q_y, r, i_y, q_x, s, i_x]
        j2 = int(tq.shape[2])
    else:
        tq = merged_down_taps(d64, up, down)  # [ratio, up, J2], the same along both axes
        j2 = int(tq.shape[2])
    rows = max(-(-out_h // up), -(-out_hd // ratio) - 1 + j2)  # per phase: enough for every output
    cols = max(-(-out_w // up), -(-out_wd // ratio) - 1 + j2)
    ty, jy = polyphase_taps(g, up, py0)  # [up, Jy]
    tx, jx = polyphase_taps(g, up, px0)
    ty, tx = ty.numpy(), tx.numpy()  # numpy: indexing a torch constant would leave float64 Slices in the graph
    ny, nx = int(ty.shape[1]), int(tx.shape[1])
    pads = [-jx, cols + nx - 1 - w_in + jx, -jy, rows + ny - 1 - h_in + jy]  # left, right, top, bottom
    if min(pads) >= 0:
        x = F.pad(x, pads)  # one Pad op
    else:
        x = pad_or_crop(pad_or_crop(x, 2, *pads[2:]), 3, *pads[:2])
    dt = x.dtype

    def dw(t: torch.Tensor, taps: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
        w = torch.tensor(taps, dtype=dt).reshape(1, 1, *shape)  # a constant in the graph's dtype
        return F.conv2d(t, w.expand(c, 1, *shape), groups=c)

    def add(a: torch.Tensor | None, b: torch.Tensor) -> torch.Tensor:
        return b if a is None else a + b

    cols_x = [dw(x, tx[s], (1, nx)) for s in range(up)]  # [B, C, rows + ny - 1, cols] per column phase
    phases = [[lrelu_as_relu_sum(dw(cols_x[s], ty[r], (ny, 1)), slope, clamp, c) for s in range(up)]
              for r in range(up)]  # [r][s]: [B, C, rows, cols]
    outs = []  # per (q_y, q_x), row-major
    if d.ndim == 2:
        for qy in range(ratio):
            for qx in range(ratio):
                y = None
                for r in range(up):
                    for s in range(up):
                        y = add(y, dw(phases[r][s], tq[qy, r, :, qx, s, :] * slope, (j2, j2)))
                outs.append(y)
    else:
        for qy in range(ratio):
            for qx in range(ratio):
                y = None
                for r in range(up):
                    hd = None
                    for s in range(up):
                        hd = add(hd, dw(phases[r][s], tq[qx, s], (1, j2)))
                    y = add(y, dw(hd, tq[qy, r] * slope, (j2, 1)))
                outs.append(y)
    y = outs[0]
    if ratio > 1:  # channel c * ratio^2 + q_y * ratio + q_x -> pixel (ratio * i + q_y, ratio * j + q_x)
        n, m = int(y.shape[2]), int(y.shape[3])
        y = F.pixel_shuffle(torch.stack(outs, dim=2).reshape(-1, c * ratio * ratio, n, m), ratio)
    return _output(y, c, out_hd, out_wd)


def filtered_activation_ort_cpu(x: torch.Tensor, g: torch.Tensor, up: int, padding: tuple[int, int, int, int],
                                d: torch.Tensor, down: int, slope: float, clamp: float | None,
                                channels: int) -> torch.Tensor:
    """down(clamp(lrelu(up(x)))) in the form ONNX Runtime's CPU provider runs fastest, per layer (arguments as
    upsample_act_downsample). Per-layer A/B in ORT (sg3r_256, 1 thread, interleaved): both axes in phases is
    25-30 % faster where up == down, and on the x4 layers with rows wider than one dense banded matrix; x4
    layers on narrow rows keep the banded MatMul (their 16 phase maps, 64 small Convs and a DepthToSpace cost
    10-20 % more)."""
    if up > down and int(x.shape[3]) <= MATMUL_DENSE_MAX_W:
        return upsample_act_downsample(x, g, up, padding, d, down, slope, clamp, channels)
    return upsample_act_downsample_phases(x, g, up, padding, d, down, slope, clamp, channels)
