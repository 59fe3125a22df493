"""Image-space transforms for the equivariance metrics: exact integer shifts and band-limited resampling.

Coordinates (as the StyleGAN3 input transform uses them): origin at the image centre, x to the right,
y down, one unit = one image width, so a square image spans [-0.5, 0.5]^2 and pixel i has its centre
at (i + 0.5) / W - 0.5. An image-space transform A [3, 3] moves content at point p to A @ p.

Every function returns the transformed images and a validity mask of the same shape: 1 where the
output depends only on pixels inside the input (and, for resampling, inside the filter support),
0 in the border that the transform or the filter support pushes outside. The metrics only compare
pixels where the mask is 1, so nothing here pads or extrapolates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LANCZOS_RADIUS = 3  # taps each side of the fractional-shift interpolator (Lanczos-3, as the paper)
AFFINE_UP = 8  # oversampling of the affine resampler: bicubic lookups on an 8x grid (4x: ~12 dB worse)
AFFINE_RADIUS = 4  # half-width, in input pixels, of the Kaiser-windowed sinc of the affine resampler
AFFINE_BETA = 8.0  # Kaiser window shape of that sinc (about 80 dB stop band)


def _check_images(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[2] != x.shape[3]:
        raise ValueError(f"images must be square [B, C, H, W], got {list(x.shape)}")


# ------------------------------------------------------------------------------------------------
# Kernels and 1-D resampling matrices.


def lanczos(d: torch.Tensor, a: int = LANCZOS_RADIUS) -> torch.Tensor:
    """Lanczos-a kernel sinc(d) * sinc(d / a) on |d| < a (float64)."""
    return torch.where(d.abs() < a, torch.sinc(d) * torch.sinc(d / a), torch.zeros_like(d))


def kaiser_sinc(d: torch.Tensor, a: int = AFFINE_RADIUS, beta: float = AFFINE_BETA) -> torch.Tensor:
    """Kaiser-windowed sinc with cutoff at the input Nyquist frequency, support |d| < a (float64)."""
    r = (d / a).clamp(-1, 1)
    window = torch.special.i0(beta * torch.sqrt(1 - r * r)) / torch.special.i0(torch.tensor(beta, dtype=d.dtype))
    return torch.where(d.abs() < a, torch.sinc(d) * window, torch.zeros_like(d))


def resampling_matrix(positions: torch.Tensor, n_in: int, kernel, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of weights kernel(position - i) over input samples i in [0, n_in), and which rows are valid.

    positions: [..., N] sample positions in input-pixel units (float64).
    Returns M [..., N, n_in] and valid [..., N] bool: True where every tap with |d| < radius lies
    inside the input (so M's row is the whole filter, nothing was cut off at the border).
    """
    i = torch.arange(n_in, dtype=torch.float64, device=positions.device)
    m = kernel(positions.unsqueeze(-1) - i)
    valid = (positions >= radius - 1) & (positions <= n_in - radius)
    return m, valid


# ------------------------------------------------------------------------------------------------
# Translations.


def integer_translate(x: torch.Tensor, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift each image by whole pixels, content moving right/down by shift = [B, 2] (dx, dy), ints.

    x: [B, C, H, W]. Exact: no resampling; uncovered pixels are 0 and masked out.
    """
    _check_images(x)
    size = x.shape[-1]
    out, mask = torch.zeros_like(x), torch.zeros_like(x)
    for b, (dx, dy) in enumerate(shift.round().long().tolist()):
        if abs(dx) >= size or abs(dy) >= size:
            continue
        src = x[b, :, max(-dy, 0) : size + min(-dy, 0), max(-dx, 0) : size + min(-dx, 0)]
        out[b, :, max(dy, 0) : size + min(dy, 0), max(dx, 0) : size + min(dx, 0)] = src
        mask[b, :, max(dy, 0) : size + min(dy, 0), max(dx, 0) : size + min(dx, 0)] = 1
    return out, mask


def fractional_translate(x: torch.Tensor, shift: torch.Tensor, a: int = LANCZOS_RADIUS) -> tuple[torch.Tensor, torch.Tensor]:
    """Shift by sub-pixel amounts with a normalised Lanczos-a interpolator (the paper's EQ-T_frac ref).

    x: [B, C, H, W]; shift: [B, 2] (dx, dy) in pixels, content moving right/down. Output pixel j
    samples the input at j - shift; rows whose Lanczos support leaves the image are masked out.
    """
    _check_images(x)
    size = x.shape[-1]
    j = torch.arange(size, dtype=torch.float64, device=x.device)
    shift = shift.to(torch.float64).to(x.device)
    mats, valids = [], []
    for axis in (0, 1):  # x then y
        m, valid = resampling_matrix(j - shift[:, axis : axis + 1], size, lambda d: lanczos(d, a), a)
        total = m.sum(-1, keepdim=True)
        mats.append((m / torch.where(total.abs() > 1e-9, total, 1.0)).to(x.dtype))  # [B, W, W], taps sum to 1
        valids.append(valid)
    mx, my = mats
    out = torch.einsum("byh,bchw,bxw->bcyx", my, x, mx)  # rows by my, columns by mx
    mask = (valids[1][:, :, None] & valids[0][:, None, :]).to(x.dtype)  # [B, H, W]
    return out, mask.unsqueeze(1).expand_as(out).contiguous()


# ------------------------------------------------------------------------------------------------
# Affine transforms (rotation) by band-limited resampling.


def _up_matrix(size: int, up: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """[size*up, size] interpolator onto a grid `up` times finer (pixel centres kept), and valid rows."""
    k = torch.arange(size * up, dtype=torch.float64, device=device)
    return resampling_matrix((k + 0.5) / up - 0.5, size, kaiser_sinc, AFFINE_RADIUS)


def affine_transform(x: torch.Tensor, A: torch.Tensor, up: int = AFFINE_UP) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply image-space transforms A [B, 3, 3] to x [B, C, H, W]; see `_affine_one` (one image at a
    time: the fine grid of a 1024 px image alone holds 8192^2 samples per channel)."""
    _check_images(x)
    pairs = [_affine_one(x[b : b + 1], A[b : b + 1], up) for b in range(x.shape[0])]
    return torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])


def _affine_one(x: torch.Tensor, A: torch.Tensor, up: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Transform x [B, C, H, W] by A [B, 3, 3] with (approximately) ideal band-limited resampling.

    1. Interpolate x onto a grid `up` times finer with a Kaiser-windowed sinc (band limit = Nyquist
       of x): the continuous band-limited image, sampled densely.
    2. Read that fine image at A^-1 of each fine output position with bicubic interpolation, which is
       accurate on a signal oversampled `up` times.
    3. Low-pass to the output Nyquist with the same windowed sinc and decimate back to H x W.
    Both comparands of EQ-R go through this (the generated image with A = identity), so they share
    the same low-pass and differ only by the transform. Mask: outputs whose whole support of taps,
    bicubic footprints and filter lies inside the input.
    """
    batch, size = x.shape[0], x.shape[-1]
    u, u_valid = _up_matrix(size, up, x.device)  # [S, size], [S] with S = size * up
    u32 = u.to(x.dtype)
    fine = torch.einsum("yh,bchw,xw->bcyx", u32, x, u32)  # [B, C, S, S]
    fine_valid = (u_valid[:, None] & u_valid[None, :]).to(x.dtype)  # [S, S]

    # Bicubic needs 2 fine samples either side: erode validity by 2 before reading it bilinearly.
    eroded = 1 - F.max_pool2d(1 - fine_valid[None, None], kernel_size=5, stride=1, padding=2)
    fine_size = size * up
    pos = (torch.arange(fine_size, device=x.device, dtype=x.dtype) + 0.5) / fine_size - 0.5  # in widths
    gy, gx = torch.meshgrid(pos, pos, indexing="ij")  # [S, S] output positions
    inv = torch.linalg.inv(A.to(torch.float64)).to(device=x.device, dtype=x.dtype)  # [B, 3, 3]
    grid = torch.stack([  # [B, S, S, 2] source positions of the output points, grid_sample units (2/width)
        2 * (inv[:, i, 0, None, None] * gx + inv[:, i, 1, None, None] * gy + inv[:, i, 2, None, None])
        for i in (0, 1)], dim=-1)
    moved = F.grid_sample(fine, grid, mode="bicubic", padding_mode="zeros", align_corners=False)
    moved_valid = F.grid_sample(eroded.expand(batch, 1, -1, -1), grid, mode="bilinear",
                                padding_mode="zeros", align_corners=False) > 1 - 1e-4  # [B, 1, S, S]

    d = (u.T / up).to(x.dtype)  # [size, S]: low-pass + decimate, the adjoint of the interpolator
    out = torch.einsum("hy,bcyx,wx->bchw", d, moved, d)
    touched = torch.einsum("hy,byx,wx->bhw", d.abs(), (~moved_valid[:, 0]).to(x.dtype), d.abs())
    out_valid = _decimated_valid(size, up, x.device)
    mask = (touched < 1e-6) & out_valid[:, None] & out_valid[None, :]
    return out, mask.to(x.dtype).unsqueeze(1).expand_as(out).contiguous()


def _decimated_valid(size: int, up: int, device: torch.device) -> torch.Tensor:
    """[size] output rows of the decimator whose taps all fall on the fine grid (it ends at the border)."""
    j = torch.arange(size, dtype=torch.float64, device=device)
    # taps at fine positions s with |s - j| < radius; s spans [-0.5 + 0.5/up, size - 0.5 - 0.5/up]
    lo = -0.5 + 0.5 / up
    hi = size - 0.5 - 0.5 / up
    return (j - AFFINE_RADIUS >= lo - 1 / up) & (j + AFFINE_RADIUS <= hi + 1 / up)


def image_transform(angle: torch.Tensor, translate: torch.Tensor) -> torch.Tensor:
    """Image-space transforms [B, 3, 3] float64: rotate by `angle` [B] radians (counter-clockwise on
    screen), then translate by `translate` [B, 2] image widths (x right, y down)."""
    c, s = torch.cos(angle.to(torch.float64)), torch.sin(angle.to(torch.float64))
    t = translate.to(torch.float64)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([
        torch.stack([c, s, t[:, 0]], dim=1),
        torch.stack([-s, c, t[:, 1]], dim=1),
        torch.stack([zero, zero, one], dim=1),
    ], dim=1)


__all__ = ["integer_translate", "fractional_translate", "affine_transform", "image_transform", "lanczos",
           "kaiser_sinc", "resampling_matrix"]
