"""`open_generator`: pick a backend by name (or `auto`) and open a network file or export directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import BackendUnavailableError, InputError
from ..export import ExportedModel, cached_export, read_model_json
from ..export.tensorrt_build import import_tensorrt, require_cuda_device
from ..networks import Generator, load_generator
from ..networks.default import default_generator
from ..vocab import BACKENDS, ENGINE_PRECISIONS, check_choice, check_precision, parse_size, torch_device
from .base import Runtime

# `auto` on a CPU: which is faster, ONNX Runtime (CPU EP) or PyTorch eager? Measured with
# benchmarks/bench_backends.py (frames() per second, median of 5, same network and threads, quiet
# 2-core machine, torch 2.13 / onnxruntime 1.32), the old (portable) export form:
#   sg3r_64  batch 1: torch 76.6 vs onnxruntime 27.7 (ort/torch 0.36x); batch 4: 78.8 vs 23.8 (0.30x)
#   sg3r_256 batch 1: torch 17.2 vs onnxruntime  5.5 (0.32x);           batch 4: 17.0 vs  5.4 (0.32x)
# ORT's CPU provider has no fast kernel for ConvTranspose with groups=C (the FIR upsampling). With the
# onnxruntime-cpu export form (networks/forms.py) and the heap kept for torch, speed ratios ort/torch,
# 1 thread each, separate processes, medians of 2 runs (busy shared machine, load 6-10:
# benchmarks/results/bench_backends_1thread.json): sg3r_64 0.86x (batch 1), 0.96x (batch 4);
# sg3r_256 0.60x, 0.59x (0.73x, 0.72x with the tiled horizontal MatMul, bench_backends_1thread_256.json).
# PyTorch is still faster, so `auto` keeps it for network files on a CPU.
CPU_AUTO_BACKEND = "torch"

# `auto` on a GPU without TensorRT: PyTorch CUDA or ONNX Runtime CUDA? Measured with benchmarks/bench_gpu.py
# on an H100 (StyleGAN3-R 1024, random weights, frames() at batch 1, one run): PyTorch fp16 10.40 frames/s
# and ONNX Runtime CUDA fp16 5.12 (fp32: 8.62 vs 4.51).
# ONNX Runtime runs the depthwise FIR convolutions of the export through cuDNN; PyTorch does not.
GPU_AUTO_BACKEND = "torch"


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> cuda when torch sees a GPU, else cpu; checked like the weights' device (vocab.torch_device):
    every backend keeps its inputs and outputs in torch tensors, so a device torch cannot use fails here,
    in one line, before any export or engine work."""
    return torch_device(device)


def tensorrt_importable() -> bool:
    try:
        import_tensorrt()
    except BackendUnavailableError:
        return False
    return True


def choose_backend(device: torch.device, is_export: bool) -> str:
    """The `auto` rule: TensorRT on a GPU when installed; else, for a network file, PyTorch CUDA (measured
    faster than ONNX Runtime CUDA: GPU_AUTO_BACKEND), and for an export directory ONNX Runtime CUDA;
    on a CPU the measured winner (CPU_AUTO_BACKEND) for files, ONNX Runtime for export directories."""
    from .onnxruntime_backend import ort_cuda_available

    if device.type == "cuda":
        if tensorrt_importable():
            return "tensorrt"
        if not is_export:
            return GPU_AUTO_BACKEND
        if ort_cuda_available():
            return "onnxruntime"
        raise BackendUnavailableError("an export directory on CUDA needs TensorRT or ONNX Runtime CUDA: "
                                      "pip install 'sg3rt[gpu]'")
    return "onnxruntime" if is_export else CPU_AUTO_BACKEND


# The options each backend takes beyond path/device/precision; anything else is a one-line InputError.
BACKEND_OPTIONS = {
    "torch": ("cuda_graphs", "fir"),  # replay synthesis from CUDA graphs, one per batch size; FIR implementation
    "onnxruntime": ("threads",),  # intra-op threads of the CPU provider
    "tensorrt": ("profile", "cache_dir", "cuda_graph_batch"),  # BatchProfile, engine cache, CUDA-graph batch
}
DEFAULT_PRECISION = {"torch": "fp32", "tensorrt": "fp16"}  # precision=None for a network file (ORT: fp32 too)


def check_options(backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options `backend` takes; a falsy cuda_graphs is dropped (the CLI passes it to every backend)."""
    options = {k: v for k, v in options.items() if not (k == "cuda_graphs" and not v)}
    for name in options:
        if name not in BACKEND_OPTIONS[backend]:
            if name == "cuda_graphs":
                raise InputError(f"CUDA graphs (cuda_graphs) apply to the torch backend, not {backend}")
            takes = ", ".join(BACKEND_OPTIONS[backend])
            raise InputError(f"the {backend} backend takes no option {name!r} (it takes: {takes})")
    threads = options.get("threads")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise InputError(f"threads must be a positive integer (or None: ONNX Runtime's choice), got {threads!r}")
    return options


def _exported(path: Any, is_export: bool, precision: str, canvas: tuple[int, int] | None,
              target: str) -> ExportedModel:
    """The export a graph backend runs: the directory given (whose canvas must match `canvas`), or the
    cached export of a network file at `precision` and canvas, in the form for `target`."""
    if not is_export:  # a canvas the network cannot render fails in export_onnx before any export work
        return read_model_json(cached_export(path, precision, size=canvas, target=target))
    export = read_model_json(path)
    if canvas is not None and canvas != export.contract.image_size:
        w, h = export.contract.image_size
        raise InputError(f"{path} was exported at {w}x{h} (a fixed graph shape); re-export it with "
                         f"`sg3rt export --size {canvas[0]}x{canvas[1]}`, or open the network file")
    return export


def open_generator(path: str | os.PathLike[str] | Generator | None = None, backend: str = "auto",
                   device: str = "auto", precision: str | None = None, size: Any = None, **options: Any) -> Runtime:
    """A runtime for a network file, an export directory (with model.json), a Generator, or None (default).

    precision: "fp32" | "fp16" | "bf16" (torch, tensorrt; onnxruntime takes fp32 | fp16); None = the backend's default:
    fp32 for network files (torch, onnxruntime), what an export directory holds (onnxruntime), fp16
    for TensorRT. A network file opened with onnxruntime or tensorrt is exported once into the export
    cache ($SG3RT_CACHE_DIR, default ~/.cache/sg3rt). The caller's Generator is never modified.
    options (see BACKEND_OPTIONS): torch `cuda_graphs`, `fir` (auto | fused | matmul | conv); onnxruntime `threads`; tensorrt `profile`
    (BatchProfile), `cache_dir`, `cuda_graph_batch`.
    size: "1920x1080" or (width, height), a StyleGAN3 canvas (Generator.with_canvas): the network's
    plane rendered wider or narrower; exports are cached per size; an export directory has its own.
    """
    check_choice(backend, BACKENDS, "backend")
    canvas = None if size is None else parse_size(size)
    if precision is not None:
        check_precision(precision, ENGINE_PRECISIONS)
    if path is not None and not isinstance(path, (Generator, str, os.PathLike)):
        raise InputError(f"open_generator takes a network file or export folder path, a Generator or None, "
                         f"got {type(path).__name__}")
    if path is not None and not isinstance(path, Generator):
        path = Path(path)
    is_export = isinstance(path, Path) and path.is_dir()
    dev = resolve_device(device)
    name = choose_backend(dev, is_export) if backend == "auto" else backend
    options = check_options(name, options)
    if precision == "bf16" and name == "onnxruntime":
        raise InputError("bf16 runs on the torch and tensorrt backends; onnxruntime runs fp32 or fp16")

    if name == "torch":
        if is_export:
            raise InputError(f"{path} is an ONNX export (no PyTorch weights): open the network file for the torch "
                             "backend, or use backend onnxruntime/tensorrt")
        from .torch_backend import TorchRuntime

        G = default_generator() if path is None else path if isinstance(path, Generator) else load_generator(path)
        if canvas is not None:
            G = G.with_canvas(*canvas)
        return TorchRuntime(G, dev, precision or DEFAULT_PRECISION["torch"], **options)

    if name == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeRuntime

        target = "onnxruntime-cuda" if dev.type == "cuda" else "onnxruntime-cpu"
        export = _exported(path, is_export, precision or "fp32", canvas, target)
        return OnnxRuntimeRuntime(export, dev, precision, **options)

    # tensorrt: engines are built from fp32 graphs with reduced-precision flags (see export/tensorrt_build)
    from .tensorrt_backend import TensorRTRuntime

    if dev.type != "cuda":
        import_tensorrt()
        require_cuda_device()
        raise InputError(f"TensorRT runs on CUDA devices only, not {dev}")
    from ..export.tensorrt_build import strong_typing_only

    prec = precision or DEFAULT_PRECISION["tensorrt"]
    # TensorRT 10 lowers an fp32 graph by builder flags; TensorRT 11 runs a graph in its own types.
    graph_prec = "fp16" if prec == "fp16" and strong_typing_only(import_tensorrt()) else "fp32"
    export = _exported(path, is_export, graph_prec, canvas, "tensorrt")
    return TensorRTRuntime(export, dev, prec, **options)
