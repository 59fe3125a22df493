"""Global frame-to-frame shift by phase correlation: how much a video slides as a whole.

A StyleGAN3 latent walk moves its input layer's affine too, which rotates and translates the whole
picture; `--stabilize` freezes it. This measures the difference: the normalised cross-power spectrum
of two frames peaks at their relative shift (refined to subpixel by a parabola through the peak).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def _gray(frames: np.ndarray) -> np.ndarray:  # [F, H, W(, C)] -> [F, H, W] float64, zero mean, windowed
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim == 4:
        x = x.mean(axis=-1)
    if x.ndim != 3:
        raise InputError(f"frames must be [F, H, W] or [F, H, W, C], got {tuple(np.shape(frames))}")
    x = x - x.mean(axis=(1, 2), keepdims=True)
    window = np.outer(np.hanning(x.shape[1]), np.hanning(x.shape[2]))  # edges do not wrap into the peak
    return x * window


def _peak_offset(c_minus: float, c0: float, c_plus: float) -> float:
    den = c_minus - 2 * c0 + c_plus
    return 0.0 if den == 0 else float(np.clip(0.5 * (c_minus - c_plus) / den, -0.5, 0.5))


def frame_shifts(frames: np.ndarray) -> np.ndarray:  # [F - 1, 2] (dy, dx) in pixels
    """Subpixel global shift from each frame to the next."""
    g = _gray(frames)
    if len(g) < 2:
        raise InputError("measuring shifts needs at least two frames")
    spectra = np.fft.fft2(g)
    out = np.zeros((len(g) - 1, 2))
    h, w = g.shape[1:]
    for i in range(len(g) - 1):
        cross = spectra[i + 1] * np.conj(spectra[i])
        corr = np.real(np.fft.ifft2(cross / np.maximum(np.abs(cross), 1e-12)))
        py, px = np.unravel_index(np.argmax(corr), corr.shape)
        dy = py + _peak_offset(corr[py - 1, px], corr[py, px], corr[(py + 1) % h, px])
        dx = px + _peak_offset(corr[py, px - 1], corr[py, px], corr[py, (px + 1) % w])
        out[i] = ((dy + h / 2) % h - h / 2, (dx + w / 2) % w - w / 2)
    return out


def mean_shift(frames: np.ndarray) -> float:
    """Mean length (pixels) of the frame-to-frame global shift."""
    return float(np.mean(np.linalg.norm(frame_shifts(frames), axis=1)))
