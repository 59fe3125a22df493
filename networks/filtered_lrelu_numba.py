"""The CPU kernels of the fused filtered leaky ReLU (numba; imported only by filtered_lrelu_cpu.py).

All arrays are float32 and channels-last: an image is [H, W, C] with the C channels of a pixel contiguous,
so every inner loop runs over C (or over a whole row, W * C) and vectorises. Two passes per image:

1. `up_rows`: the horizontal upsampling of every input row (polyphase: the inserted zeros are never
   touched), with the per-channel scale and bias applied to the input samples -> [B, H, Nx, C].
2. `act_down`: per chunk of output rows, the activation rows they read are made one at a time (vertical
   polyphase upsampling of those rows, leaky ReLU, gain, clamp) into a ring of Kd rows, and each output row
   is filtered from the ring as soon as its Kd rows are there. The upsampled map is never in memory whole:
   the ring (Kd rows) stays in cache. A filter symmetric along an axis (StyleGAN3's are, the radial ones in
   both) adds the two samples that share a tap first: half the multiplies.

Taps are correlation taps (g[k] multiplies sample n + k), gains included; index tables come from the host.
"""

from __future__ import annotations

import numpy as np
import numba
from numba import njit, prange


@njit(parallel=True, fastmath=False, cache=True, boundscheck=False)
def up_rows(x, scale, bias, taps, start, lo, hi, tapsum, out):  # pragma: no cover (compiled)
    """out[b, h, n, :] = scale[b] * sum_j taps[n, j] x[b, h, start[n] + j, :] + bias * tapsum[n], over j in
    [lo[n], hi[n]) (the columns inside the input). x [B, H, W, C], scale [B, C], out [B, H, Nx, C]."""
    nb, h_in, _, c_n = x.shape
    n_out = out.shape[2]
    for bh in prange(nb * h_in):
        b, h = bh // h_in, bh % h_in
        xr, orow = x[b, h], out[b, h]
        s = scale[b]
        for n in range(n_out):
            acc = orow[n]
            for c in range(c_n):
                acc[c] = 0.0
            for j in range(lo[n], hi[n]):
                t = taps[n, j]
                xm = xr[start[n] + j]
                for c in range(c_n):
                    acc[c] += t * xm[c]
            ts = tapsum[n]
            for c in range(c_n):
                acc[c] = acc[c] * s[c] + bias[c] * ts
    return out


@njit(fastmath=False, cache=True, boundscheck=False, inline="always")
def _act_row(hx, taps, start, lo, hi, r, gain, slope, clamp, dst):  # pragma: no cover
    """dst[:] = clamp(lrelu(sum_j taps[r, j] hx[start[r] + j]) * gain): one activation row, rows flattened."""
    m = dst.shape[0]
    for i in range(m):
        dst[i] = 0.0
    for j in range(lo[r], hi[r]):
        t = taps[r, j]
        src = hx[start[r] + j]
        for i in range(m):
            dst[i] += t * src[i]
    for i in range(m):
        v = dst[i]
        v = (v if v >= 0.0 else v * slope) * gain
        if clamp >= 0.0:
            v = min(max(v, -clamp), clamp)
        dst[i] = v


@njit(parallel=True, fastmath=False, cache=True, boundscheck=False)
def act_down(hx, taps, start, lo, hi, gain, slope, clamp, gd, sym_y, sym_x, down, chunk, out):  # pragma: no cover
    """Activation and down-filter. hx [B, H, Nx, C] (up_rows), taps/start/lo/hi the vertical upsampling tables
    per activation row, gd the down taps: [Kd, Kd] (2-D) or [1, Kd] (separable: the same along y and x);
    sym_y / sym_x: gd is symmetric along that axis (fold). out [B, Ho, Wo, C]; chunk: output rows per task."""
    nb = hx.shape[0]
    nx, c_n = hx.shape[2], hx.shape[3]
    ho, wo = out.shape[1], out.shape[2]
    kd = gd.shape[1]
    separable = gd.shape[0] == 1
    row = nx * c_n
    chunks = (ho + chunk - 1) // chunk
    for task in prange(nb * chunks):
        b, o0 = task // chunks, (task % chunks) * chunk
        o1 = min(o0 + chunk, ho)
        hxb = hx[b].reshape(hx.shape[1], row)
        ring = np.empty((kd, row), np.float32)  # activation row r lives in slot r % kd
        fold = np.empty((kd, row), np.float32)  # vertical sums (separable) or symmetric pairs (2-D)
        acc = np.empty(c_n, np.float32)
        made = o0 * down  # next activation row to make
        for o in range(o0, o1):
            r0 = o * down
            while made < r0 + kd:
                _act_row(hxb, taps, start, lo, hi, made, gain, slope, clamp, ring[made % kd])
                made += 1
            orow = out[b, o]
            if separable:
                v = fold[0]  # vertical pass: v = sum_ky gd[ky] a[r0 + ky]
                for i in range(row):
                    v[i] = 0.0
                if sym_y:
                    for ky in range(kd // 2):
                        t = gd[0, ky]
                        p, q = ring[(r0 + ky) % kd], ring[(r0 + kd - 1 - ky) % kd]
                        for i in range(row):
                            v[i] += t * (p[i] + q[i])
                    if kd % 2:
                        t, p = gd[0, kd // 2], ring[(r0 + kd // 2) % kd]
                        for i in range(row):
                            v[i] += t * p[i]
                else:
                    for ky in range(kd):
                        t, p = gd[0, ky], ring[(r0 + ky) % kd]
                        for i in range(row):
                            v[i] += t * p[i]
                v2 = v.reshape(nx, c_n)
                for ox in range(wo):
                    n0 = ox * down
                    for c in range(c_n):
                        acc[c] = 0.0
                    if sym_x:
                        for kx in range(kd // 2):
                            t = gd[0, kx]
                            p, q = v2[n0 + kx], v2[n0 + kd - 1 - kx]
                            for c in range(c_n):
                                acc[c] += t * (p[c] + q[c])
                        if kd % 2:
                            t, p = gd[0, kd // 2], v2[n0 + kd // 2]
                            for c in range(c_n):
                                acc[c] += t * p[c]
                    else:
                        for kx in range(kd):
                            t, p = gd[0, kx], v2[n0 + kx]
                            for c in range(c_n):
                                acc[c] += t * p[c]
                    for c in range(c_n):
                        orow[ox, c] = acc[c]
                continue
            # 2-D: rows paired first where gd is symmetric along y (fold[ky] = a[r0+ky] + a[r0+kd-1-ky])
            rows_n = kd
            if sym_y:
                rows_n = (kd + 1) // 2
                for ky in range(kd // 2):
                    p, q, f = ring[(r0 + ky) % kd], ring[(r0 + kd - 1 - ky) % kd], fold[ky]
                    for i in range(row):
                        f[i] = p[i] + q[i]
                if kd % 2:
                    p, f = ring[(r0 + kd // 2) % kd], fold[kd // 2]
                    for i in range(row):
                        f[i] = p[i]
            for ox in range(wo):
                n0 = ox * down
                for c in range(c_n):
                    acc[c] = 0.0
                for ky in range(rows_n):
                    src = fold[ky] if sym_y else ring[(r0 + ky) % kd]
                    if sym_x:
                        for kx in range(kd // 2):
                            t = gd[ky, kx]
                            i0, i1 = (n0 + kx) * c_n, (n0 + kd - 1 - kx) * c_n
                            p, q = src[i0:i0 + c_n], src[i1:i1 + c_n]
                            for c in range(c_n):
                                acc[c] += t * (p[c] + q[c])
                        if kd % 2:
                            i0 = (n0 + kd // 2) * c_n
                            t, p = gd[ky, kd // 2], src[i0:i0 + c_n]
                            for c in range(c_n):
                                acc[c] += t * p[c]
                    else:
                        for kx in range(kd):
                            i0 = (n0 + kx) * c_n
                            t, p = gd[ky, kx], src[i0:i0 + c_n]
                            for c in range(c_n):
                                acc[c] += t * p[c]
                for c in range(c_n):
                    orow[ox, c] = acc[c]
    return out
