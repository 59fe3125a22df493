"""The CPU kernels of the fused filtered leaky ReLU (numba; imported only by filtered_lrelu_cpu.py).

All arrays are float32 and channels-last, and every loop that matters streams over a whole row of pixels x
channels, so it vectorises and keeps no accumulator in a short loop. Two passes per image:

1. `up_rows`: the horizontal upsampling of every input row (polyphase: the inserted zeros are never
   touched), with the per-channel scale and bias applied to the input samples. Its rows are stored in the
   down-filter's phase order: upsampled column n goes to phase n % down, slot n // down, so that the
   strided down-filter becomes stride-1 shifts of whole rows.
2. `act_down`: per task (a chunk of output rows x a strip of output columns), the activation rows' strips
   are made one or two rows per pass (vertical polyphase upsampling, leaky ReLU, clamp) into a ring of
   Kd strips, and each output row is filtered from the ring as soon as its Kd rows are there. The upsampled
   map is never in memory whole: the ring stays in cache. A filter symmetric along an axis (StyleGAN3's are)
   adds the two samples that share a tap first: half the multiplies.

Taps are correlation taps (g[k] multiplies sample n + k), gains included (the activation's too: for a gain > 0,
gain * lrelu(v) = lrelu(gain * v)); index tables come from the host.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

_OPTS = dict(fastmath={"contract"}, cache=True, boundscheck=False)  # contract: a * b + c as one FMA


@njit(parallel=True, **_OPTS)
def up_rows(x, scale, bias, taps, start, lo, hi, edge, ph_lo, ph_hi, ph_shift, ph_taps, slot, unused, out):  # pragma: no cover
    """The horizontal upsampling of every input row of x [B, H, W, C] (times scale [B, C], plus bias [C], zero
    outside the input) into out [B, H, Np, C], phase-ordered (column n at phase n % down, slot n // down).
    Column n = sum_j taps[n, j] xb[start[n] + j] over j in [lo[n], hi[n]) for the `edge` columns. Where up ==
    down, up-phase p is down-phase p: its interior slots m in [ph_lo[p], ph_hi[p]) all read the same taps
    ph_taps[p] at xb[m + ph_shift[p] + j], one stride-1 pass over the flattened row (empty ranges otherwise).
    The `unused` columns of out (no n maps there) are zero."""
    nb, h_in, w_in, c_n = x.shape
    n_taps = ph_taps.shape[1]
    for bh in prange(nb * h_in):
        b, h = bh // h_in, bh % h_in
        xr, s = x[b, h], scale[b]
        xb = np.empty((w_in, c_n), np.float32)  # this row with its scale and bias
        for m in range(w_in):
            for c in range(c_n):
                xb[m, c] = xr[m, c] * s[c] + bias[c]
        orow = out[b, h]
        for u in range(unused.shape[0]):
            z = orow[unused[u]]
            for c in range(c_n):
                z[c] = 0.0
        for e in range(edge.shape[0]):
            n = edge[e]
            acc = orow[(n % ph_lo.shape[0]) * slot + n // ph_lo.shape[0]]
            j0 = lo[n]
            if hi[n] - j0 == 6:  # an interior column (every one where up != down): one pass, no stores between taps
                t = taps[n]
                s0 = start[n] + j0
                a0, a1, a2, a3, a4, a5 = xb[s0], xb[s0 + 1], xb[s0 + 2], xb[s0 + 3], xb[s0 + 4], xb[s0 + 5]
                t0, t1, t2, t3, t4, t5 = t[j0], t[j0 + 1], t[j0 + 2], t[j0 + 3], t[j0 + 4], t[j0 + 5]
                for c in range(c_n):
                    acc[c] = t0 * a0[c] + t1 * a1[c] + t2 * a2[c] + t3 * a3[c] + t4 * a4[c] + t5 * a5[c]
                continue
            for c in range(c_n):
                acc[c] = 0.0
            for j in range(lo[n], hi[n]):
                t = taps[n, j]
                xm = xb[start[n] + j]
                for c in range(c_n):
                    acc[c] += t * xm[c]
        xf = xb.reshape(w_in * c_n)
        of = orow.reshape(orow.shape[0] * c_n)
        for p in range(ph_lo.shape[0]):
            m0, m1 = ph_lo[p], ph_hi[p]
            if m1 <= m0:
                continue
            n = (m1 - m0) * c_n
            d = of[(p * slot + m0) * c_n:(p * slot + m1) * c_n]
            src0 = (m0 + ph_shift[p]) * c_n
            if n_taps == 6:
                t = ph_taps[p]
                a0, a1, a2 = xf[src0:src0 + n], xf[src0 + c_n:src0 + c_n + n], xf[src0 + 2 * c_n:src0 + 2 * c_n + n]
                a3, a4 = xf[src0 + 3 * c_n:src0 + 3 * c_n + n], xf[src0 + 4 * c_n:src0 + 4 * c_n + n]
                a5 = xf[src0 + 5 * c_n:src0 + 5 * c_n + n]
                t0, t1, t2, t3, t4, t5 = t[0], t[1], t[2], t[3], t[4], t[5]
                for i in range(n):
                    d[i] = t0 * a0[i] + t1 * a1[i] + t2 * a2[i] + t3 * a3[i] + t4 * a4[i] + t5 * a5[i]
                continue
            for j in range(n_taps):
                _axpy(d, ph_taps[p, j], xf[src0 + j * c_n:src0 + j * c_n + n], j == 0)
    return out


@njit(inline="always", **_OPTS)
def _act(v, slope, clamp):  # pragma: no cover
    """Leaky ReLU (0 <= slope <= 1: the larger of v and slope * v) and clamp; the gain is in the taps (host)."""
    v = max(v, v * slope)  # one multiply and a max, not a compare, select and two multiplies
    if clamp >= 0.0:
        v = min(max(v, -clamp), clamp)
    return v


@njit(**_OPTS)
def _act_strip(hx, taps, start, lo, hi, r, slope, clamp, down, slot, t0, width, c_n, dst):  # pragma: no cover
    """One activation row's strip: for every phase p, dst[p] = clamp(lrelu(sum_j taps[r, j] hx[start[r] + j] at
    the slots t0 .. t0 + width - 1 of phase p)); hx rows flattened, dst tile-local (width slots a phase)."""
    n = width * c_n
    j0, j1 = lo[r], hi[r]
    base = start[r]
    for p in range(down):
        o = (p * slot + t0) * c_n
        d = dst[p * n:(p + 1) * n]
        if j1 - j0 == 6:  # every official layer's interior rows: one pass, no stores between the taps
            a, b, c = hx[base + j0, o:o + n], hx[base + j0 + 1, o:o + n], hx[base + j0 + 2, o:o + n]
            e, f, g = hx[base + j0 + 3, o:o + n], hx[base + j0 + 4, o:o + n], hx[base + j0 + 5, o:o + n]
            ta, tb, tc = taps[r, j0], taps[r, j0 + 1], taps[r, j0 + 2]
            te, tf, tg = taps[r, j0 + 3], taps[r, j0 + 4], taps[r, j0 + 5]
            for i in range(n):
                d[i] = _act(ta * a[i] + tb * b[i] + tc * c[i] + te * e[i] + tf * f[i] + tg * g[i], slope, clamp)
            continue
        for i in range(n):
            d[i] = 0.0
        for j in range(j0, j1):
            t = taps[r, j]
            src = hx[base + j, o:o + n]
            for i in range(n):
                d[i] += t * src[i]
        for i in range(n):
            d[i] = _act(d[i], slope, clamp)


@njit(**_OPTS)
def _act_strip_pair(hx, taps, start, lo, r, slope, clamp, down, slot, t0, width, c_n, dst_a, dst_b):  # pragma: no cover
    """Activation rows r and r + 1 (six taps each, windows starting 0 or 1 row apart) in one pass: they share
    their input rows, so 6-7 loads make two outputs (12 as two `_act_strip` calls)."""
    n = width * c_n
    s0 = start[r] + lo[r]
    shift = start[r + 1] + lo[r + 1] - s0  # 0 or 1
    ca = np.zeros(7, np.float32)
    cb = np.zeros(7, np.float32)
    for k in range(6):
        ca[k] = taps[r, lo[r] + k]
        cb[k + shift] = taps[r + 1, lo[r + 1] + k]
    last = s0 + 5 + shift  # the seventh row is read only when the windows are a row apart
    for p in range(down):
        o = (p * slot + t0) * c_n
        a0, a1, a2 = hx[s0, o:o + n], hx[s0 + 1, o:o + n], hx[s0 + 2, o:o + n]
        a3, a4, a5 = hx[s0 + 3, o:o + n], hx[s0 + 4, o:o + n], hx[s0 + 5, o:o + n]
        a6 = hx[last, o:o + n]
        da, db = dst_a[p * n:(p + 1) * n], dst_b[p * n:(p + 1) * n]
        u0, u1, u2, u3, u4, u5, u6 = ca[0], ca[1], ca[2], ca[3], ca[4], ca[5], ca[6]
        v0, v1, v2, v3, v4, v5, v6 = cb[0], cb[1], cb[2], cb[3], cb[4], cb[5], cb[6]
        for i in range(n):
            x0, x1, x2, x3, x4, x5, x6 = a0[i], a1[i], a2[i], a3[i], a4[i], a5[i], a6[i]
            da[i] = _act(u0 * x0 + u1 * x1 + u2 * x2 + u3 * x3 + u4 * x4 + u5 * x5 + u6 * x6, slope, clamp)
            db[i] = _act(v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3 + v4 * x4 + v5 * x5 + v6 * x6, slope, clamp)


@njit(inline="always", **_OPTS)
def _axpy(y, t, a, init):  # pragma: no cover
    """y = t * a (init) or y += t * a, elementwise over y."""
    if init:
        for i in range(y.shape[0]):
            y[i] = t * a[i]
    else:
        for i in range(y.shape[0]):
            y[i] += t * a[i]


@njit(inline="always", **_OPTS)
def _axpy_pair(y, t, a, b, init):  # pragma: no cover
    """y = t * (a + b) (init) or y += t * (a + b): the two samples of a symmetric filter's tap, one multiply."""
    if init:
        for i in range(y.shape[0]):
            y[i] = t * (a[i] + b[i])
    else:
        for i in range(y.shape[0]):
            y[i] += t * (a[i] + b[i])


@njit(inline="always", **_OPTS)
def _tap_slices(src, kx, kd, down, slot, c_n, m):  # pragma: no cover
    """The m samples of src that taps kx and kd-1-kx multiply (phase-ordered row, `slot` slots per phase)."""
    k2 = kd - 1 - kx
    p0 = ((kx % down) * slot + kx // down) * c_n
    p1 = ((k2 % down) * slot + k2 // down) * c_n
    return src[p0:p0 + m], src[p1:p1 + m]


@njit(**_OPTS)
def _shifted_taps(src, y, gd_row, kd, down, slot, c_n, sym, first):  # pragma: no cover
    """y (+)= sum_kx gd_row[kx] * src[phase kx % down, slot kx // down + o] for every output o (rows flattened,
    `slot` slots per phase; `first`: y is written, not added to): the strided horizontal filter as stride-1
    shifts of the phase-ordered row. Symmetric taps: the pair kx, kd-1-kx is added before its one multiply.
    (Slices, not offsets: numba elides the negative-index check, and so vectorises, only for a loop counter.)"""
    m = y.shape[0]
    if sym and kd == 12:  # StyleGAN3's down-filters: the six pairs in one pass (y loaded and stored once)
        t0, t1, t2, t3, t4, t5 = gd_row[0], gd_row[1], gd_row[2], gd_row[3], gd_row[4], gd_row[5]
        a0, b0 = _tap_slices(src, 0, kd, down, slot, c_n, m)
        a1, b1 = _tap_slices(src, 1, kd, down, slot, c_n, m)
        a2, b2 = _tap_slices(src, 2, kd, down, slot, c_n, m)
        a3, b3 = _tap_slices(src, 3, kd, down, slot, c_n, m)
        a4, b4 = _tap_slices(src, 4, kd, down, slot, c_n, m)
        a5, b5 = _tap_slices(src, 5, kd, down, slot, c_n, m)
        if first:
            for i in range(m):
                y[i] = t0 * (a0[i] + b0[i]) + t1 * (a1[i] + b1[i]) + t2 * (a2[i] + b2[i]) \
                    + t3 * (a3[i] + b3[i]) + t4 * (a4[i] + b4[i]) + t5 * (a5[i] + b5[i])
        else:
            for i in range(m):
                y[i] += t0 * (a0[i] + b0[i]) + t1 * (a1[i] + b1[i]) + t2 * (a2[i] + b2[i]) \
                    + t3 * (a3[i] + b3[i]) + t4 * (a4[i] + b4[i]) + t5 * (a5[i] + b5[i])
        return
    init = first
    for kx in range(kd // 2 if sym else kd):
        a, b = _tap_slices(src, kx, kd, down, slot, c_n, m)  # b: the partner kd-1-kx (unused if not sym)
        if sym:
            _axpy_pair(y, gd_row[kx], a, b, init)
        else:
            _axpy(y, gd_row[kx], a, init)
        init = False
    if sym and kd % 2:  # the middle tap (its own partner)
        a, _ = _tap_slices(src, kd // 2, kd, down, slot, c_n, m)
        _axpy(y, gd_row[kd // 2], a, init)


@njit(parallel=True, **_OPTS)
def act_down(hx, taps, start, lo, hi, slope, clamp, gd, sym_y, sym_x, down, chunk, tile, out):  # pragma: no cover
    """Activation and down-filter. hx [B, H, Np, C] (up_rows: phase-ordered rows of Np // down slots per phase),
    taps/start/lo/hi the vertical upsampling tables per activation row, gd the down taps: [Kd, Kd] (2-D) or
    [1, Kd] (separable: the same along y and x); sym_y / sym_x: gd is symmetric along that axis (fold).
    out [B, Ho, Wo, C]. A task is `chunk` output rows x `tile` output columns: its strip of the activation
    rows (tile + halo slots per phase) and its ring stay in cache while the taps pass over them."""
    nb = hx.shape[0]
    c_n = hx.shape[3]
    row = hx.shape[2] * c_n
    slot = hx.shape[2] // down
    ho, wo = out.shape[1], out.shape[2]
    kd = gd.shape[1]
    halo = (kd - 1) // down  # slots a tile reads past its last output
    separable = gd.shape[0] == 1
    chunks = (ho + chunk - 1) // chunk
    strips = (wo + tile - 1) // tile
    for task in prange(nb * chunks * strips):
        b, rest = task // (chunks * strips), task % (chunks * strips)
        o0, t0 = (rest // strips) * chunk, (rest % strips) * tile
        o1, tw = min(o0 + chunk, ho), min(tile, wo - t0)
        width = tw + halo
        n = width * c_n * down
        hxb = hx[b].reshape(hx.shape[1], row)
        outb = out[b].reshape(ho, wo * c_n)
        ring = np.empty((kd, n), np.float32)  # activation row r's strip lives in slot r % kd
        fold = np.empty((kd, n), np.float32)  # symmetric row pairs, or the vertical pass (separable)
        made = o0 * down  # next activation row to make
        for o in range(o0, o1):
            r0 = o * down
            while made < r0 + kd:
                if made + 1 < r0 + kd and hi[made] - lo[made] == 6 and hi[made + 1] - lo[made + 1] == 6 and \
                        0 <= start[made + 1] + lo[made + 1] - start[made] - lo[made] <= 1:
                    _act_strip_pair(hxb, taps, start, lo, made, slope, clamp, down, slot, t0, width, c_n,
                                    ring[made % kd], ring[(made + 1) % kd])
                    made += 2
                    continue
                _act_strip(hxb, taps, start, lo, hi, made, slope, clamp, down, slot, t0, width, c_n,
                           ring[made % kd])
                made += 1
            y = outb[o, t0 * c_n:(t0 + tw) * c_n]
            if separable:
                v = fold[0]
                for ky in range(kd // 2 if sym_y else kd):
                    if sym_y:
                        _axpy_pair(v, gd[0, ky], ring[(r0 + ky) % kd], ring[(r0 + kd - 1 - ky) % kd], ky == 0)
                    else:
                        _axpy(v, gd[0, ky], ring[(r0 + ky) % kd], ky == 0)
                if sym_y and kd % 2:
                    _axpy(v, gd[0, kd // 2], ring[(r0 + kd // 2) % kd], kd == 1)
                _shifted_taps(v, y, gd[0], kd, down, width, c_n, sym_x, True)
                continue
            if sym_y:
                for ky in range(kd // 2):
                    a, q, f = ring[(r0 + ky) % kd], ring[(r0 + kd - 1 - ky) % kd], fold[ky]
                    for i in range(n):
                        f[i] = a[i] + q[i]
                for ky in range((kd + 1) // 2):
                    src = fold[ky] if ky < kd // 2 else ring[(r0 + ky) % kd]
                    _shifted_taps(src, y, gd[ky], kd, down, width, c_n, sym_x, ky == 0)
            else:
                for ky in range(kd):
                    _shifted_taps(ring[(r0 + ky) % kd], y, gd[ky], kd, down, width, c_n, sym_x, ky == 0)
    return out
