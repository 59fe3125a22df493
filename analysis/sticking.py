"""Texture sticking, the check of the StyleGAN3 paper (Karras et al. 2021, figure 1 / section 1).

Average many frames of a small latent walk around one central latent. Details that move with the
content average out into a smooth blur (StyleGAN3); details glued to the pixel grid (StyleGAN2's
noise inputs, padding and aliasing give them fixed screen positions) stay sharp in the average.

Score: high-frequency energy of the average image relative to that of a single frame (the mean over
frames), both measured after removing each channel's mean and applying a Hann window:
    score = E_hf(mean_i frame_i) / mean_i E_hf(frame_i),  E_hf = sum of |FFT|^2 above HF_CUTOFF.
1 means the fine detail is identical in every frame (fully stuck); frames whose fine detail moves
independently give about 1 / frames.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..vocab import MAX_SEED, check_seed, class_labels
from .equivariance import SynthesisLike

WALK_RADIUS = 0.2  # std of the latent steps around the central z (z ~ N(0, I) has unit std)
MAX_RADIUS = 10.0  # beyond a few stds the walk leaves the latent distribution: a typo guard
HF_CUTOFF = 0.25  # "high frequency": radial frequency above this, in cycles per pixel (Nyquist = 0.5)


@dataclass
class StickingResult:
    frame: torch.Tensor  # [C, H, W] the central frame, float in about [-1, 1]
    average: torch.Tensor  # [C, H, W] average of all frames of the walk
    score: float  # E_hf(average) / mean E_hf(frame): 1 = stuck, about 1/frames = none
    frames: int

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "frames": self.frames}


def high_frequency_energy(img: torch.Tensor, cutoff: float = HF_CUTOFF) -> torch.Tensor:
    """[B, C, H, W] -> [B]: windowed spectral energy above `cutoff` cycles/pixel, summed over channels."""
    h, w = img.shape[-2:]
    x = img.double() - img.double().mean(dim=(-2, -1), keepdim=True)
    window = torch.outer(torch.hann_window(h, periodic=False, dtype=torch.float64),
                         torch.hann_window(w, periodic=False, dtype=torch.float64))
    power = torch.fft.fft2(x * window).abs().square()  # [B, C, H, W]
    fy, fx = torch.meshgrid(torch.fft.fftfreq(h, dtype=torch.float64), torch.fft.fftfreq(w, dtype=torch.float64),
                            indexing="ij")
    band = torch.hypot(fx, fy) > cutoff
    return (power * band).sum(dim=(-3, -2, -1))


def texture_sticking(
    rt: SynthesisLike,
    frames: int = 64,  # frames in the walk (the average's sample count)
    seed: int = 0,  # central latent: the official seed convention z = RandomState(seed).randn(z_dim)
    radius: float = WALK_RADIUS,
    batch_size: int = 8,
    class_idx: int | None = None,  # class of a conditional network (required there, as in render)
) -> StickingResult:
    """Render a small latent walk and compare its average with its central frame (see module doc)."""
    if frames < 2:
        raise InputError("texture sticking needs at least 2 frames")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real) or not 0 < radius <= MAX_RADIUS:  # 0: identical frames, "stuck" for all
        raise InputError(f"radius must be a number above 0 and at most {MAX_RADIUS:g}, got {radius!r}")
    seed = check_seed(seed, high=MAX_SEED - 1)  # the steps use seed + 1
    z0 = np.random.RandomState(seed).randn(rt.z_dim)  # [z_dim]
    steps = np.random.RandomState(seed + 1).randn(frames, rt.z_dim)
    steps[0] = 0  # frame 0 is the central latent itself
    z = (z0 + radius * steps).astype(np.float32)  # [frames, z_dim]
    c = class_labels(rt.c_dim, class_idx, frames)  # [frames, c_dim] | None
    total, energy, first = None, 0.0, None
    for start in range(0, frames, batch_size):
        cb = None if c is None else c[start : start + batch_size]
        img = rt.synthesis(rt.mapping(z[start : start + batch_size], cb)).double().cpu()  # [b, C, H, W]
        first = img[0] if first is None else first
        total = img.sum(0) if total is None else total + img.sum(0)
        energy += high_frequency_energy(img).sum().item()
    average = total / frames
    score = high_frequency_energy(average[None])[0].item() / max(energy / frames, 1e-30)
    return StickingResult(frame=first.float(), average=average.float(), score=score, frames=frames)


def side_by_side(result: StickingResult, min_size: int = 256, gap: int = 4) -> np.ndarray:
    """[H', W', C] uint8: frame | average, each scaled up (nearest, whole factor) to >= min_size."""
    from ..networks import to_uint8_frames

    pair = to_uint8_frames(torch.stack([result.frame, result.average])).numpy()  # [2, H, W, C]
    scale = max(1, -(-min_size // pair.shape[1]))
    pair = pair.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w, ch = pair.shape[1:]
    canvas = np.full((h, 2 * w + gap, ch), 255, np.uint8)
    canvas[:, :w], canvas[:, w + gap :] = pair[0], pair[1]
    return canvas[..., 0] if ch == 1 else canvas
