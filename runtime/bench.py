"""Speed and memory of a runtime: frames/s, ms/frame and peak memory per batch size.

What is timed is `frames()`: synthesis, the uint8 conversion on the device and the copy to the
host, i.e. what a render loop pays per frame. Mapping is excluded (microseconds). Results are
yielded one at a time; printing and JSON belong to the caller (CLI or benchmarks/).
"""

from __future__ import annotations

import resource
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch

from ..networks import input_transform
from ..vocab import one_hot
from .base import Runtime

WARMUP_ITERS = 2  # untimed runs first: allocator, ORT/TensorRT lazy init, cudnn autotune
TIMED_ITERS = 5  # timed runs; the median is reported
BENCH_SEED = 0  # latents of the benchmark


@dataclass
class BenchResult:
    backend: str
    device: str
    precision: str
    kind: str
    resolution: int
    batch: int
    iters: int
    median_s: float  # median time of one frames() call at this batch
    frames_per_s: float
    ms_per_frame: float
    peak_mem_mib: float  # CPU: peak RSS of the process; CUDA: max memory allocated by torch
    mem_kind: str  # "cpu_rss_peak" | "cuda_max_allocated"
    chunk: int  # images per synthesis call actually run (< batch: the torch runtime split the batch to fit)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _reset_cpu_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux); False where it cannot be reset."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _cpu_peak_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_runtime(rt: Runtime, batch: int, iters: int = TIMED_ITERS, warmup: int = WARMUP_ITERS,
                  seed: int = BENCH_SEED) -> BenchResult:
    """Time rt.frames() at one batch size (StyleGAN3: a different rotation per sample)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([batch, rt.z_dim], generator=gen)
    c = None
    if rt.c_dim > 0:
        c = one_hot(torch.arange(batch) % rt.c_dim, rt.c_dim)
    ws = rt.mapping(z, c, truncation_psi=0.7)
    transforms = input_transform(torch.linspace(0, 90, batch), torch.zeros(batch, 2)).to(rt.device) if rt.is_stylegan3 else None
    cuda = rt.device.type == "cuda"
    for _ in range(warmup):
        rt.frames(ws, transforms)
    _sync(rt.device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(rt.device)
    else:
        _reset_cpu_peak()
    times = []
    for _ in range(iters):
        _sync(rt.device)
        start = time.perf_counter()
        rt.frames(ws, transforms)  # ends with a copy to the host: synchronous
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    peak = torch.cuda.max_memory_allocated(rt.device) / 2**20 if cuda else _cpu_peak_mib()
    return BenchResult(rt.backend, str(rt.device), rt.precision, rt.kind, rt.img_resolution, batch, iters, median,
                       batch / median, 1000 * median / batch, peak, "cuda_max_allocated" if cuda else "cpu_rss_peak",
                       min(batch, getattr(rt, "chunk", None) or batch))


def bench_backends(network: Any, backends: Iterable[str], batches: Iterable[int], device: str = "auto",
                   precision: str | None = None, iters: int = TIMED_ITERS, warmup: int = WARMUP_ITERS,
                   **options: Any) -> Iterator[BenchResult]:
    """Yield one result per backend x batch for the same network (file, export dir, Generator or None)."""
    from .registry import open_generator

    for backend in backends:
        with open_generator(network, backend=backend, device=device, precision=precision, **options) as rt:
            for batch in batches:
                yield bench_runtime(rt, int(batch), iters, warmup)
