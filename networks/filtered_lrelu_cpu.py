"""The fused filtered leaky ReLU on a CPU: bias -> upsample -> lrelu, clamp -> down-filter in two passes (numba).

The plain path runs four depthwise (transposed) convolutions and two in-place activations over the 2x-upsampled
map of every layer; oneDNN's depthwise kernels reach a fraction of the CPU's arithmetic rate there, and the
map (24 MB per 306 px layer of the embedded network) goes through memory six times. Here
(filtered_lrelu_numba.py) the horizontal upsampling is one polyphase pass over the input rows, stored in the
down-filter's phase order; then, per strip of output rows x columns, the vertical upsampling, activation and
down-filter stream through a ring of Kd activation strips that stays in cache, with symmetric filters folded
(StyleGAN3's radial down-filters: 36 multiplies per output, not 144). Every pass runs over whole rows of
pixels x channels (channels-last), so numba vectorises it. 1.8-2.5x the plain path per layer on 2 cores.

Same semantics as `filtered_lrelu_reference` (filtered_lrelu.py), float32 only, and a channels-last result.
numba is a dependency, but a machine without it (or anything this path does not take: fp16, gradients,
export) runs the plain path; `cpu_reason` says why. numba caches the compiled kernels on disk, so only a
machine's first run compiles them (about 17 s on 2 cores).
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..vocab import tracing
from .layers import _compiling, filter_table

TASKS_PER_THREAD = 4  # (row chunk x column strip) tasks per thread at least: load balance vs the halo each remakes
MIN_CHUNK = 8  # output rows per task at least (each task fills its ring of Kd activation rows first)
TILE_BYTES = 16384  # one activation row's strip (all phases, fp32): the ring of Kd strips stays in L2
COMPILE_NOTICE_S = 3.0  # a process's first kernel call slower than this is compiling them (loading takes ~1 s)

log = logging.getLogger(__name__)
_first_call = threading.Lock()  # held by the first call of the process until the kernels are ready
_ready = False


def numba_import_error() -> str | None:
    """None when numba and the compiled kernels' module import, else why (with the install hint)."""
    try:
        importlib.import_module(".filtered_lrelu_numba", __package__)
    except Exception as e:  # ImportError, or a broken llvmlite raising anything
        return f"numba does not import ({type(e).__name__}: {e}; pip install numba)"
    return None


def cpu_reason(x: torch.Tensor, fu: torch.Tensor | None) -> str | None:
    """Why the CPU kernel cannot filter x (with up-filter fu), or None when it can."""
    if tracing():
        return "tracing for export (the plain path is what exports)"
    if _compiling():  # numba's kernels are opaque to dynamo: each would break the graph
        return "torch.compile is tracing (it compiles the plain path)"
    if x.device.type != "cpu":
        return f"the input is on {x.device.type}"
    if x.dtype != torch.float32:
        return f"dtype {x.dtype} (the CPU kernel takes float32)"
    if torch.is_grad_enabled() and x.requires_grad:
        return "gradients are wanted (the kernel has no backward)"
    if fu is not None and fu.ndim != 1:
        return "a 2-D up-filter (the CPU kernel takes separable ones, as every official config has)"
    return numba_import_error()


@dataclass
class CpuPlan:
    """Index tables and taps of one layer (its filters, factors, padding and input size)."""

    x_taps: np.ndarray  # [Nx, J] float32: horizontal upsampling taps per upsampled column
    x_start: np.ndarray  # [Nx] int64: input column of tap 0
    x_lo: np.ndarray  # [Nx] int64: first tap inside the input
    x_hi: np.ndarray  # [Nx] int64: one past the last tap inside the input
    x_edge: np.ndarray  # int64: the upsampled columns made one at a time (all of them unless up == down)
    x_ph_lo: np.ndarray  # [down] int64: per phase, the slots made as one stride-1 pass: ph_lo <= m < ph_hi
    x_ph_hi: np.ndarray
    x_ph_shift: np.ndarray  # [down] int64: slot m's first input column is m + shift
    x_ph_taps: np.ndarray  # [down, J] float32: the taps of those slots
    x_unused: np.ndarray  # int64: stored columns no upsampled column maps to (zeroed)
    slots: int  # stored columns per phase: ceil(Nx / down)
    y_taps: np.ndarray  # [Ny, J] float32: vertical upsampling, per activation row
    y_start: np.ndarray
    y_lo: np.ndarray
    y_hi: np.ndarray
    gd: np.ndarray  # [Kd, Kd] (2-D) or [1, Kd] (separable) float32 down-filter correlation taps
    sym_y: bool  # gd equals itself flipped along y (the kernel adds the paired rows first)
    sym_x: bool
    out_h: int
    out_w: int


def _up_tables(g: np.ndarray, length: int, up: int, p0: int, p1: int):
    """Polyphase tables of one axis: output n = sum_j taps[n, j] x[start[n] + j] over lo[n] <= j < hi[n]."""
    k = len(g)
    n_out = length * up + p0 + p1 - k + 1
    n = np.arange(n_out)
    start = -((p0 - n) // up)  # ceil((n - p0) / up): the first input whose zero-inserted sample a tap reaches
    j_max = -(-k // up)
    idx = up * (start[:, None] + np.arange(j_max)[None, :]) - n[:, None] + p0  # tap index of (n, j)
    taps = np.where((idx >= 0) & (idx < k), g[np.clip(idx, 0, k - 1)], 0.0)
    lo = np.clip(-start, 0, j_max)
    hi = np.clip(length - start, 0, j_max)
    hi = np.maximum(hi, lo)
    return taps.astype(np.float32), start.astype(np.int64), lo.astype(np.int64), hi.astype(np.int64)


def cpu_plan(fu: torch.Tensor | None, fd: torch.Tensor | None, up: int, down: int,
             padding: tuple[int, int, int, int], fu_gain: float, height: int, width: int) -> CpuPlan:
    """The tables of a layer for an input of height x width (filters as SynthesisLayer's buffers: true
    convolution taps; fu_gain the up-filter's overall gain)."""
    px0, px1, py0, py1 = padding
    g = np.ones(1) if fu is None else fu.detach().to("cpu", torch.float64).numpy()[::-1]
    g = g * math.sqrt(fu_gain)  # per axis: the 2-D filter is g (x) g
    d = np.ones((1, 1)) if fd is None else fd.detach().to("cpu", torch.float64).numpy()
    d = d[::-1, ::-1] if d.ndim == 2 else d[::-1][None, :]
    kd = d.shape[1]
    xt, xs, xl, xh = _up_tables(g, width, up, px0, px1)
    yt, ys, yl, yh = _up_tables(g, height, up, py0, py1)
    gd = np.ascontiguousarray(d, dtype=np.float32)
    sym_x = bool(np.array_equal(gd, gd[:, ::-1]))
    sym_y = sym_x if gd.shape[0] == 1 else bool(np.array_equal(gd, gd[::-1, :]))
    out_h, out_w = (len(yt) - kd) // down + 1, (len(xt) - kd) // down + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"input {height}x{width} is too small for a {kd}-tap down-filter after upsampling")
    slots = -(-len(xt) // down)  # per phase
    n = np.arange(len(xt))
    unused = np.setdiff1d(np.arange(down * slots), (n % down) * slots + n // down)
    j = xt.shape[1]
    ph_lo, ph_hi = np.zeros(down, np.int64), np.zeros(down, np.int64)
    ph_shift, ph_taps = np.zeros(down, np.int64), np.zeros((down, j), np.float32)
    streamed = np.zeros(len(xt), bool)
    if up == down:  # up-phase p is down-phase p: its full-tap columns share one set of taps
        for p in range(down):
            cols = n[(n % down == p) & (xl == 0) & (xh == j)]
            if len(cols) == 0:
                continue
            m = cols // down
            assert np.all(np.diff(m) == 1) and np.all(xs[cols] - m == xs[cols[0]] - m[0])
            assert np.all(xt[cols] == xt[cols[0]])
            ph_lo[p], ph_hi[p], ph_shift[p], ph_taps[p] = m[0], m[-1] + 1, xs[cols[0]] - m[0], xt[cols[0]]
            streamed[cols] = True
    edge = n[~streamed].astype(np.int64)
    return CpuPlan(xt, xs, xl, xh, edge, ph_lo, ph_hi, ph_shift, ph_taps, unused.astype(np.int64), slots,
                   yt, ys, yl, yh, gd, sym_y, sym_x, out_h, out_w)


@contextmanager
def _compile_notice():
    """Around the process's first kernel call: numba compiles the kernels on a machine's first run (then loads
    them from its disk cache), 20-40 s of silence before the first frame; say so on the log (the CLI shows it)."""
    global _ready
    if _ready:
        yield
        return
    with _first_call:
        if _ready:  # another thread made them ready while this one waited
            yield
            return
        start = time.perf_counter()
        timer = threading.Timer(COMPILE_NOTICE_S, log.info, ["compiling the CPU kernels (numba): once per machine, "
                                                             "20-40 s on 2 cores; later runs load them from a cache"])
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
        _ready = True
        if time.perf_counter() - start > COMPILE_NOTICE_S:
            log.info(f"CPU kernels ready ({time.perf_counter() - start:.0f} s)")


def filtered_lrelu_cpu(
    x: torch.Tensor,  # [B, C, H, W] float32 on the CPU (channels-last memory saves a copy)
    bias: torch.Tensor,  # [C]
    fu: torch.Tensor | None,  # [Ku] separable up-filter (true convolution taps); None: no up-filter
    fd: torch.Tensor | None,  # [Kd] separable or [Kd, Kd] down-filter; None: none
    up: int,
    down: int,
    padding: tuple[int, int, int, int],  # px0, px1, py0, py1 around the zero-inserted signal
    fu_gain: float,  # overall gain of the up-filter
    gain: float,  # activation gain after the leaky ReLU
    slope: float,
    clamp: float | None,
    cache: dict | None = None,  # the caller's: one plan per (filters, factors, padding, input size)
    scale: torch.Tensor | None = None,  # [B, C]: x * scale before the bias (unfolded demodulation); None: none
) -> torch.Tensor:  # [B, C, OH, OW] float32, channels-last memory
    """Run the CPU kernels (see the module docstring; semantics of filtered_lrelu_reference)."""
    from . import filtered_lrelu_numba as k

    b, c, h, w = x.shape
    assert x.dtype == torch.float32 and x.device.type == "cpu", (x.dtype, x.device)
    if not (gain > 0 and 0 <= slope <= 1):  # what lets the kernel fold the gain and take max(v, slope * v)
        raise ValueError(f"the CPU kernel takes a gain > 0 and a slope in [0, 1], got gain {gain}, slope {slope}")
    assert bias.shape == (c,), (bias.shape, x.shape)
    plan = filter_table(cache, (fu, fd), (up, down, padding, fu_gain, h, w),
                        lambda: cpu_plan(fu, fd, up, down, padding, fu_gain, h, w))
    xn = x.detach().permute(0, 2, 3, 1).contiguous().numpy()  # [B, H, W, C]: no copy when channels-last
    if scale is None:
        sn = np.ones((b, c), np.float32)
    else:
        assert scale.shape == (b, c), (scale.shape, x.shape)
        sn = scale.detach().to("cpu", torch.float32).contiguous().numpy()
    bn = bias.detach().to("cpu", torch.float32).contiguous().numpy()
    threads = torch.get_num_threads()
    if k.numba.get_num_threads() != min(threads, k.numba.config.NUMBA_NUM_THREADS):
        k.numba.set_num_threads(min(threads, k.numba.config.NUMBA_NUM_THREADS))
    hx = np.empty((b, h, down * plan.slots, c), np.float32)
    out = np.empty((b, plan.out_h, plan.out_w, c), np.float32)
    if out.size == 0:  # an empty batch (or no channels): nothing to filter; the task split would divide by zero
        return torch.from_numpy(out).permute(0, 3, 1, 2)
    with _compile_notice():
        _run_kernels(k, plan, xn, sn, bn, hx, out, gain, slope, clamp, down, threads)
    return torch.from_numpy(out).permute(0, 3, 1, 2)


def _run_kernels(k, plan: CpuPlan, xn, sn, bn, hx, out, gain: float, slope: float, clamp: float | None, down: int,
                 threads: int) -> None:
    """up_rows into hx [B, H, Np, C], then act_down into out [B, OH, OW, C]; tasks sized for `threads`."""
    b, c = xn.shape[0], xn.shape[3]
    k.up_rows(xn, sn, bn, plan.x_taps, plan.x_start, plan.x_lo, plan.x_hi, plan.x_edge, plan.x_ph_lo, plan.x_ph_hi,
              plan.x_ph_shift, plan.x_ph_taps, plan.slots, plan.x_unused, hx)
    kd = plan.gd.shape[1]
    tile = max(4, TILE_BYTES // (4 * c * down) - (kd - 1) // down)  # output columns per task
    strips = -(-plan.out_w // tile)
    chunks = max(1, -(-TASKS_PER_THREAD * threads // (b * strips)))  # row chunks per image and strip
    chunk = max(MIN_CHUNK, -(-plan.out_h // chunks))
    f32 = np.float32  # float32 scalars: a float64 one would promote the activation's arithmetic (2x slower)
    y_taps = plan.y_taps if gain == 1 else plan.y_taps * f32(gain)  # gain * lrelu(v) = lrelu(gain * v), gain > 0
    k.act_down(hx, y_taps, plan.y_start, plan.y_lo, plan.y_hi, f32(slope), f32(-1.0 if clamp is None else clamp),
               plan.gd, plan.sym_y, plan.sym_x, down, chunk, tile, out)
