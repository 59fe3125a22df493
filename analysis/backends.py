"""Equivariance per backend and precision, against PyTorch fp32 as the baseline.

An exported engine must keep StyleGAN3's promise. Every backend sees the same latents and transforms
as torch fp32, and is flagged when a metric falls more than MAX_LOSS_DB below torch fp32's, or when
its plain images are further than MIN_PARITY_DB from torch's (the export broke the images).

Reduced precision adds its own rounding error, which no export can remove. So a loss beyond
MAX_LOSS_DB is excused when the error the backend ADDS to torch fp32's (in mean squared terms:
10^(-db/10) - 10^(-db_torch/10), written as a PSNR) is no larger than an error at its precision's
RESOLUTION_DB, i.e. that PSNR is at or above the allowance. Measured
on the references on CPU, ONNX Runtime fp16 adds error at 77-81 dB; the fp16 allowance is 70 dB.
A trained network at about 60-65 dB (the paper's figures) loses about 0.1 dB to that, so for it the
0.5 dB rule applies as stated; a broken export adds far larger errors and is flagged.
Backends that need ONNX graphs open the network file through `open_generator`, which exports it once
into the export cache ($SG3RT_CACHE_DIR), so a second `eq` run reuses the graphs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import BackendUnavailableError, InputError, Sg3rtError
from .equivariance import METRICS, SynthesisLike, latents, measure_equivariance, psnr

MAX_LOSS_DB = 0.5  # largest drop in any metric, vs torch fp32, an exported backend may show
MIN_PARITY_DB = 40.0  # plain images must match torch fp32 to this PSNR (40 dB: 2.5 8-bit levels RMS)
RESOLUTION_DB = {  # added error (dB) excused per precision (see above): fp16 measured, bf16 = fp16 - 3 bits
    "fp32": math.inf, "fp16": 70.0, "bf16": 52.0}
PARITY_SAMPLES = 4  # latents whose plain images are compared with torch fp32
BASELINE = ("torch", "fp32")
DEFAULT_PRECISIONS = {  # precisions measured when a backend is named without one
    "torch": ("fp32",),
    "onnxruntime": ("fp32", "fp16"),
    "tensorrt": ("fp16",),
}


def parse_backends(spec: str) -> list[tuple[str, str]]:
    """'torch,onnxruntime:fp16' -> [(torch, fp32), (onnxruntime, fp16)], baseline first, no repeats."""
    pairs = [BASELINE]
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name, _, precision = item.partition(":")
        if name == "auto":
            raise InputError("name backends explicitly for eq (auto picks one; eq compares several)")
        if name not in DEFAULT_PRECISIONS:
            raise InputError(f"unknown backend {name!r} (choose from {', '.join(DEFAULT_PRECISIONS)})")
        if precision and precision not in RESOLUTION_DB:
            raise InputError(f"unknown precision {precision!r} for {name} (choose from {', '.join(RESOLUTION_DB)})")
        for p in (precision,) if precision else DEFAULT_PRECISIONS.get(name, ("fp32",)):
            if (name, p) not in pairs:
                pairs.append((name, p))
    return pairs


@dataclass
class BackendRow:
    """One line of the comparison: metrics in dB and their difference from torch fp32."""

    backend: str
    precision: str
    status: str  # ok | skipped (backend not available here) | error (it failed to run)
    reason: str = ""
    db: dict[str, float] = field(default_factory=dict)
    delta: dict[str, float] = field(default_factory=dict)  # db - baseline db, per metric
    parity_db: float = math.inf  # PSNR of its plain images against torch fp32's
    added_db: dict[str, float] = field(default_factory=dict)  # error added to torch fp32's, as PSNR
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _unavailable(error: Exception) -> bool:
    """A backend that is missing here (skip it) rather than one that failed (report it)."""
    return isinstance(error, BackendUnavailableError) or (
        isinstance(error, InputError) and str(error).startswith("unknown backend"))


def equivariance_by_backend(
    network: str | os.PathLike[str],  # a network file (.pkl / .safetensors)
    backends: list[tuple[str, str]],  # (backend, precision) pairs; torch fp32 is measured first anyway
    device: str = "auto",
    **metric_kwargs: Any,  # samples, seed, batch_size, metrics ... as `equivariance_batches`
) -> Iterator[BackendRow]:
    """Yield one row per (backend, precision), the torch fp32 baseline first.

    The baseline's errors (StyleGAN2, unreadable file) propagate: without it nothing can be compared.
    Other backends that are not available here are skipped with the reason; failures become rows.
    """
    from ..runtime import open_generator

    network = Path(network)
    if network.is_dir():
        raise InputError(f"{network}: eq needs the network file itself (torch fp32 is the baseline), not an export directory")
    pairs = [BASELINE] + [p for p in backends if p != BASELINE]
    baseline: dict[str, float] = {}
    reference = torch.empty(0)
    for backend, precision in pairs:
        if (backend, precision) == BASELINE:
            with open_generator(network, backend=backend, device=device, precision=precision) as rt:
                baseline = measure_equivariance(rt, **metric_kwargs).db
                reference = plain_images(rt)
            yield BackendRow(backend, precision, "ok", db=baseline, delta={m: 0.0 for m in baseline})
            continue
        try:
            with open_generator(network, backend=backend, device=device, precision=precision) as rt:
                db = measure_equivariance(rt, **metric_kwargs).db
                noise = (plain_images(rt) - reference).square().mean().item()  # parity MSE
        except Sg3rtError as e:
            yield BackendRow(backend, precision, "skipped" if _unavailable(e) else "error", reason=str(e))
            continue
        parity = psnr(noise, 1.0)
        flagged = is_flagged(baseline, db, parity, precision)
        yield BackendRow(backend, precision, "ok", db=db, delta={m: -_loss(baseline[m], db[m]) for m in db},
                         parity_db=parity, added_db={m: added_error_db(baseline[m], db[m]) for m in db},
                         flagged=flagged)


def plain_images(rt: SynthesisLike, samples: int = PARITY_SAMPLES, seed: int = 2**31 - 1) -> torch.Tensor:
    """[samples, C, H, W] float64 on the CPU: untransformed images of fixed latents, for parity."""
    z, c = latents(rt, samples, np.random.RandomState(seed))
    return rt.synthesis(rt.mapping(z, c, truncation_psi=1.0)).double().cpu()


def added_error_db(reference: float, value: float) -> float:
    """The error a backend adds to the baseline's, as PSNR: -10 log10(10^(-value/10) - 10^(-reference/10))
    (inf when it adds none)."""
    if value >= reference:
        return math.inf
    added = 10 ** (-value / 10) - 10 ** (-reference / 10)
    return math.inf if added <= 0 else -10 * math.log10(added)


def is_flagged(baseline: dict[str, float], db: dict[str, float], parity_db: float, precision: str) -> bool:
    """The rule of the module docstring: a loss > MAX_LOSS_DB not excused by the precision, or images
    unlike torch's. NaN anywhere (a broken engine) flags too."""
    allowance = RESOLUTION_DB.get(precision, math.inf)
    for m in db:
        loss, added = _loss(baseline[m], db[m]), added_error_db(baseline[m], db[m])
        if not (loss <= MAX_LOSS_DB or added >= allowance):
            return True
    return not parity_db >= MIN_PARITY_DB


def _loss(reference: float, value: float) -> float:
    """How many dB `value` is below `reference` (inf - inf is no loss)."""
    if reference == value:
        return 0.0
    return reference - value


__all__ = ["MAX_LOSS_DB", "DEFAULT_PRECISIONS", "parse_backends", "BackendRow", "equivariance_by_backend", "is_flagged", "added_error_db",
           "plain_images", "METRICS"]
