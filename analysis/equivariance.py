"""The equivariance metrics of "Alias-Free Generative Adversarial Networks" (Karras et al. 2021, app. E).

For a random latent w and a random image-space transform A (translation and/or rotation), compare
    img = synthesis(w, transforms = A^-1)       (the input transform holds the INVERSE, as officially)
    ref = A applied in image space to synthesis(w, identity)
over the valid region only (a mask removes the border that A or the resampling filter pushes out of
the image), and report
    PSNR = 10 * log10(I_max^2 / MSE),   I_max = 2 (images span [-1, 1]),
where MSE is the masked mean squared difference over all pixels, channels and samples (one PSNR
for the whole set, as the official implementation aggregates). The three metrics:

    EQ-T       integer translation: t ~ U(-0.125, 0.125)^2 image widths, rounded to whole pixels;
               ref = exact pixel shift.
    EQ-T_frac  sub-pixel translation: t ~ U(-0.125, 0.125)^2 image widths; ref = normalised
               Lanczos-3 interpolation (separable), as the paper.
    EQ-R       rotation: angle ~ U(-pi, pi) (rotate_max = 1 half-turn); ref = band-limited resampling
               (8x windowed-sinc upsampling, bicubic lookup, windowed-sinc decimation). The generated
               image goes through the same resampler with the identity, so both share one low-pass.

Latents: z ~ N(0, I), w = mapping(z, c) with psi = 1 (no truncation), c a random one-hot class for
conditional networks. Seeded, so a run is reproducible and backends see identical inputs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch

from ..errors import InputError
from ..vocab import NO_TRANSFORM, check_seed, one_hot
from .resample import affine_transform, fractional_translate, image_transform, integer_translate

METRICS = ("eqt_int", "eqt_frac", "eqr")  # names, in the order the paper lists them
LABELS = {"eqt_int": "EQ-T", "eqt_frac": "EQ-T_frac", "eqr": "EQ-R"}
TRANSLATE_MAX = 0.125  # translation range of EQ-T and EQ-T_frac, in image widths (each axis)
ROTATE_MAX = 1.0  # rotation range of EQ-R, in half-turns: angle ~ U(-pi, pi) * ROTATE_MAX
PEAK = 2.0  # dynamic range of the images ([-1, 1]): the numerator of the PSNR


class SynthesisLike(Protocol):
    """What the metric needs from a runtime (sg3rt.runtime.Runtime satisfies it)."""

    z_dim: int
    c_dim: int
    img_resolution: int
    is_stylegan3: bool

    def mapping(self, z: Any, c: Any = None, truncation_psi: float = 1.0) -> torch.Tensor: ...

    def synthesis(self, ws: Any, transforms: Any = None) -> torch.Tensor: ...


def psnr(squared_error_sum: float, count: float, peak: float = PEAK) -> float:
    """PSNR in dB of a summed squared error over `count` values; inf for an exact match."""
    if count <= 0:
        return float("nan")
    mse = squared_error_sum / count
    return math.inf if mse <= 0 else 20 * math.log10(peak) - 10 * math.log10(mse)


@dataclass
class EquivarianceSums:
    """Running sums of masked squared errors and mask sizes, per metric (mergeable across batches)."""

    squared_error: dict[str, float] = field(default_factory=dict)
    count: dict[str, float] = field(default_factory=dict)
    samples: int = 0

    def add(self, name: str, img: torch.Tensor, ref: torch.Tensor, mask: torch.Tensor) -> None:
        err = ((img.double() - ref.double()).square() * mask.double()).sum().item()
        self.squared_error[name] = self.squared_error.get(name, 0.0) + err
        self.count[name] = self.count.get(name, 0.0) + mask.double().sum().item()

    def result(self) -> "EquivarianceResult":
        db = {name: psnr(self.squared_error[name], self.count[name]) for name in self.squared_error}
        return EquivarianceResult(db=db, samples=self.samples)


@dataclass
class EquivarianceResult:
    """PSNR in dB per metric name (see METRICS) over `samples` latents."""

    db: dict[str, float]
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def latents(rt: SynthesisLike, batch: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray | None]:
    """z [B, z_dim] ~ N(0, I) and, for conditional networks, random one-hot classes c [B, c_dim]."""
    z = rng.randn(batch, rt.z_dim).astype(np.float32)  # [B, z_dim]
    if rt.c_dim == 0:
        return z, None
    return z, one_hot(rng.randint(rt.c_dim, size=batch), rt.c_dim)  # [B, c_dim] random classes


def equivariance_batches(
    rt: SynthesisLike,
    samples: int = 64,  # number of latents (each is used once per metric)
    seed: int = 0,  # seeds the latents and the transforms
    batch_size: int = 8,  # latents per synthesis call
    metrics: tuple[str, ...] = METRICS,
    translate_max: float = TRANSLATE_MAX,
    rotate_max: float = ROTATE_MAX,
) -> Iterator[EquivarianceSums]:
    """Yield the running sums after each batch (the caller shows progress; the last one is the answer)."""
    if not rt.is_stylegan3:
        raise InputError(f"{NO_TRANSFORM}, so equivariance cannot be measured on this one")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise InputError(f"unknown metric(s) {unknown} (choose from {', '.join(METRICS)})")
    canvas = getattr(rt, "canvas", None)  # a Runtime opened with a size; the paper's metrics are on the square
    if canvas is not None:
        raise InputError(f"equivariance is measured on the network's own {rt.img_resolution} px images, "
                         f"not a {canvas[0]}x{canvas[1]} canvas: open the runtime without a size")
    if samples < 1 or batch_size < 1:
        raise InputError("samples and batch size must be at least 1")
    rng = np.random.RandomState(check_seed(seed))
    size = rt.img_resolution
    sums = EquivarianceSums()
    while sums.samples < samples:
        batch = min(batch_size, samples - sums.samples)
        z, c = latents(rt, batch, rng)
        ws = rt.mapping(z, c, truncation_psi=1.0)
        orig = rt.synthesis(ws, None).float()  # [B, C, H, W], compared on the runtime's device
        no_turn, no_shift = torch.zeros(batch, dtype=torch.float64), torch.zeros(batch, 2, dtype=torch.float64)
        for name in metrics:
            if name in ("eqt_int", "eqt_frac"):
                t = torch.from_numpy(rng.uniform(-translate_max, translate_max, size=(batch, 2)))  # [B, 2] widths
                if name == "eqt_int":
                    t = (t * size).round() / size
                A = image_transform(no_turn, t)
            else:
                A = image_transform(torch.from_numpy(rng.uniform(-math.pi, math.pi, size=batch) * rotate_max), no_shift)
            img = rt.synthesis(ws, torch.linalg.inv(A).float()).float()  # input transform = A^-1
            if name == "eqt_int":
                ref, mask = integer_translate(orig, t * size)
            elif name == "eqt_frac":
                ref, mask = fractional_translate(orig, t * size)
            else:
                ref, mask = affine_transform(orig, A)
                img, img_mask = affine_transform(img, image_transform(no_turn, no_shift))
                mask = mask * img_mask
            sums.add(name, img, ref, mask)
        sums.samples += batch
        yield sums


def measure_equivariance(rt: SynthesisLike, progress: Callable[[int], None] | None = None,
                         **kwargs: Any) -> EquivarianceResult:
    """EQ-T, EQ-T_frac and EQ-R in dB for a runtime; keyword arguments as `equivariance_batches`;
    progress(samples done) after each batch."""
    sums = None
    for sums in equivariance_batches(rt, **kwargs):
        if progress is not None:
            progress(sums.samples)
    assert sums is not None  # samples >= 1 is checked above
    return sums.result()
