"""Equivariance per backend and precision: the export against PyTorch at the same precision.

An exported engine must keep StyleGAN3's promise. Every backend sees the same latents and transforms.
Its verdict compares it with PyTorch running the same network at the same precision on the same
device (the reference row): an export that loses more than MAX_LOSS_DB there, or whose plain images
are further than MIN_PARITY_DB from torch fp32's, is flagged as a bug. Differences from torch fp32
are reported for every row too.

Why not judge fp16 against fp32: half precision costs equivariance by itself. On an H100, PyTorch's
own fp16 path (the official per-layer policy) lost 1.7-9.2 dB against fp32 on the untrained
references, whose 65-78 dB baselines sit far above a trained network's; ONNX Runtime CUDA fp16 lost
the same within 0.5 dB (benchmarks/results/eq_cuda.md). No export can win that back, and a rule that
flags every fp16 engine would flag nothing useful. PyTorch runs fp32, fp16 and bf16, so every export
has its reference row.

torch-fused, torch-matmul and torch-conv rows are PyTorch with that FIR form forced (the fused Triton
op against the unfused paths, same run); plain `torch` rows use the runtime's auto choice (fused on
CUDA where Triton imports, matmul/conv elsewhere).
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
from ..vocab import ENGINE_PRECISIONS, FIR_IMPLS, TORCH_PRECISIONS
from .equivariance import METRICS, SynthesisLike, latents, measure_equivariance, psnr

MAX_LOSS_DB = 0.5  # largest drop in any metric, vs torch fp32, an exported backend may show
MIN_PARITY_DB = 40.0  # plain images must match torch fp32 to this PSNR (40 dB: 2.5 8-bit levels RMS)
PARITY_SAMPLES = 4  # latents whose plain images are compared with torch fp32
BASELINE = ("torch", "fp32")
TORCH_FIR_VARIANTS = {f"torch-{impl}": impl for impl in FIR_IMPLS if impl != "auto"}  # torch rows, FIR forced
DEFAULT_PRECISIONS = {  # precisions measured when a backend is named without one
    "torch": ("fp32",),
    **{name: ("fp32",) for name in TORCH_FIR_VARIANTS},
    "onnxruntime": ("fp32", "fp16"),
    "tensorrt": ("fp16",),
}


CPU_PRECISIONS = ("fp32",)  # measured on a CPU unless a precision is named: fp16 there is emulated (19 min vs 56 s)


def parse_backends(spec: str, cpu: bool = False) -> list[tuple[str, str]]:
    """'torch,onnxruntime:fp16' -> [(torch, fp32), (onnxruntime, fp16)], baseline first, no repeats.

    A backend named without a precision gets DEFAULT_PRECISIONS, or fp32 alone on a CPU (`cpu`)."""
    pairs = [BASELINE]
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        name, _, precision = item.partition(":")
        if name == "auto":
            raise InputError("name backends explicitly for eq (auto picks one; eq compares several)")
        if name not in DEFAULT_PRECISIONS:
            raise InputError(f"unknown backend {name!r} (choose from {', '.join(DEFAULT_PRECISIONS)})")
        if precision and precision not in ENGINE_PRECISIONS:
            raise InputError(f"unknown precision {precision!r} for {name} (choose from {', '.join(ENGINE_PRECISIONS)})")
        if precision == "bf16" and name == "onnxruntime":
            raise InputError("onnxruntime runs fp32 or fp16; bf16 runs on torch and tensorrt")
        defaults = CPU_PRECISIONS if cpu and name != "tensorrt" else DEFAULT_PRECISIONS[name]
        for p in (precision,) if precision else defaults:
            if (name, p) not in pairs:
                pairs.append((name, p))
    return pairs


@dataclass
class BackendRow:
    """One line of the comparison: metrics in dB, their difference from torch fp32 and from the reference."""

    backend: str
    precision: str
    status: str  # ok | skipped (backend not available here) | error (it failed to run)
    reason: str = ""
    db: dict[str, float] = field(default_factory=dict)
    delta: dict[str, float] = field(default_factory=dict)  # db - baseline db, per metric
    parity_db: float = math.inf  # PSNR of its plain images against torch fp32's
    reference: str = ""  # the row its verdict compares with: "torch fp16", "none" (no torch row), "-" (torch)
    delta_ref: dict[str, float] = field(default_factory=dict)  # db - the reference row's db, per metric
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def verdict(self) -> str:
        """baseline, reference for fp16, ok (worst difference from its reference), or FLAGGED."""
        if self.backend == "torch":
            return "baseline" if self.precision == "fp32" else f"reference for {self.precision}"
        if self.backend in TORCH_FIR_VARIANTS:
            return f"torch, {TORCH_FIR_VARIANTS[self.backend]} FIR (see dB vs torch fp32)"
        if self.reference == "none":
            return "FLAGGED: images unlike torch's" if self.flagged else f"ok (no torch {self.precision} to judge by)"
        note = f"{min(self.delta_ref.values()):+.2f} dB vs {self.reference}"
        return f"FLAGGED: {note} (limit -{MAX_LOSS_DB:g}) or images unlike torch's" if self.flagged else f"ok ({note})"


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
    pairs = with_references(backends)
    references: dict[str, dict[str, float]] = {}  # torch's metrics per precision
    baseline: dict[str, float] = {}
    images = torch.empty(0)
    for backend, precision in pairs:
        if (backend, precision) == BASELINE:
            with open_generator(network, backend=backend, device=device, precision=precision) as rt:
                baseline = references[precision] = measure_equivariance(rt, **metric_kwargs).db
                images = plain_images(rt)
            yield BackendRow(backend, precision, "ok", db=baseline, delta={m: 0.0 for m in baseline}, reference="-")
            continue
        try:
            with _open_variant(network, backend, device, precision) as rt:
                db = measure_equivariance(rt, **metric_kwargs).db
                noise = (plain_images(rt) - images).square().mean().item()  # parity MSE
        except Sg3rtError as e:
            yield BackendRow(backend, precision, "skipped" if _unavailable(e) else "error", reason=str(e))
            continue
        parity = psnr(noise, 1.0)
        delta = {m: -_loss(baseline[m], db[m]) for m in db}
        if backend == "torch" or backend in TORCH_FIR_VARIANTS:
            if backend == "torch":
                references[precision] = db
            yield BackendRow(backend, precision, "ok", db=db, delta=delta, parity_db=parity, reference="-")
            continue
        ref = references.get(precision)
        yield BackendRow(backend, precision, "ok", db=db, delta=delta, parity_db=parity,
                         reference=f"torch {precision}" if ref is not None else "none",
                         delta_ref={} if ref is None else {m: -_loss(ref[m], db[m]) for m in db},
                         flagged=is_flagged(ref, db, parity))


def unavailable(backends: list[tuple[str, str]], device: str = "auto") -> list[tuple[str, str, str]]:
    """(backend, precision, why) for each pair whose backend cannot run here at all (not installed, no GPU for it),
    found without opening anything: `sg3rt eq` refuses them before its minutes-long torch baseline."""
    from ..runtime.registry import resolve_device

    dev = resolve_device(device)
    missing = []
    for backend, precision in backends:
        try:
            if backend == "tensorrt":
                from ..export.tensorrt_build import import_tensorrt

                import_tensorrt()
                if dev.type != "cuda":
                    raise BackendUnavailableError("TensorRT runs on a CUDA GPU; this run's device is the CPU")
            elif backend == "onnxruntime":
                from ..runtime.onnxruntime_backend import _import_onnxruntime

                _import_onnxruntime()
            elif TORCH_FIR_VARIANTS.get(backend) == "fused":
                from ..networks.filtered_lrelu import fused_reason

                reason = fused_reason(torch.empty(0, device=dev))
                if reason is not None:
                    raise BackendUnavailableError(f"the fused filtered-lrelu op cannot run here: {reason}")
        except BackendUnavailableError as e:
            missing.append((backend, precision, str(e)))
    return missing


def _open_variant(network: Path, backend: str, device: str, precision: str) -> Any:
    """open_generator for a row: torch-fused / torch-matmul / torch-conv are torch with that FIR form.

    A fused row where the fused op cannot run is unavailable (skipped with the reason) rather than
    quietly measuring the unfused path under the fused name."""
    from ..networks.filtered_lrelu import fused_reason
    from ..runtime import open_generator
    from ..runtime.registry import resolve_device

    if backend not in TORCH_FIR_VARIANTS:
        return open_generator(network, backend=backend, device=device, precision=precision)
    impl = TORCH_FIR_VARIANTS[backend]
    if impl == "fused":
        reason = fused_reason(torch.empty(0, device=resolve_device(device)))
        if reason is not None:
            raise BackendUnavailableError(f"the fused filtered-lrelu op cannot run here: {reason}")
    return open_generator(network, backend="torch", device=device, precision=precision, fir=impl)


def with_references(backends: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """torch fp32 first, and torch at every other precision an export is measured at, before it."""
    pairs = [BASELINE]
    for backend, precision in backends:
        is_torch = backend == "torch" or backend in TORCH_FIR_VARIANTS
        if not is_torch and precision in TORCH_PRECISIONS and ("torch", precision) not in pairs:
            pairs.append(("torch", precision))
        if (backend, precision) not in pairs:
            pairs.append((backend, precision))
    return pairs


def plain_images(rt: SynthesisLike, samples: int = PARITY_SAMPLES, seed: int = 2**31 - 1) -> torch.Tensor:
    """[samples, C, H, W] float64 on the CPU: untransformed images of fixed latents, for parity."""
    z, c = latents(rt, samples, np.random.RandomState(seed))
    return rt.synthesis(rt.mapping(z, c, truncation_psi=1.0)).double().cpu()


def is_flagged(reference: dict[str, float] | None, db: dict[str, float], parity_db: float) -> bool:
    """The rule of the module docstring: a loss > MAX_LOSS_DB against the same-precision torch row
    (none: not judged on dB), or plain images unlike torch fp32's. NaN anywhere flags too."""
    if any(math.isnan(v) for v in db.values()):
        return True
    if reference is not None and any(not _loss(reference[m], db[m]) <= MAX_LOSS_DB for m in db):
        return True
    return not parity_db >= MIN_PARITY_DB


def _loss(reference: float, value: float) -> float:
    """How many dB `value` is below `reference` (inf - inf is no loss)."""
    if reference == value:
        return 0.0
    return reference - value


__all__ = ["MAX_LOSS_DB", "DEFAULT_PRECISIONS", "parse_backends", "BackendRow", "equivariance_by_backend", "is_flagged",
           "with_references", "plain_images", "METRICS"]
