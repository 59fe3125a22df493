"""`open_generator`: pick a backend by name (or `auto`) and open a network file or export directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import BackendUnavailableError, InputError
from ..networks import Generator
from .base import Runtime

BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")

# `auto` on a CPU: which is faster, ONNX Runtime (CPU EP) or PyTorch eager? Measured with
# benchmarks/bench_backends.py (frames() per second, median of 5, same network and threads, quiet
# 2-core machine, torch 2.13 / onnxruntime 1.32):
#   sg3r_64  batch 1: torch 76.6 vs onnxruntime 27.7 (ort/torch 0.36x); batch 4: 78.8 vs 23.8 (0.30x)
#   sg3r_256 batch 1: torch 17.2 vs onnxruntime  5.5 (0.32x);           batch 4: 17.0 vs  5.4 (0.32x)
# ORT's CPU provider has no fast kernel for ConvTranspose with groups=C (the FIR upsampling).
CPU_AUTO_BACKEND = "torch"

# `auto` on a GPU without TensorRT: PyTorch CUDA or ONNX Runtime CUDA? Measured with benchmarks/bench_gpu.py
# on an H100 (StyleGAN3-R 1024, random weights, frames() at batch 1, one run): PyTorch fp16 10.40 frames/s
# and ONNX Runtime CUDA fp16 5.12 (fp32: 8.62 vs 4.51).
# ONNX Runtime runs the depthwise FIR convolutions of the export through cuDNN; PyTorch does not.
GPU_AUTO_BACKEND = "torch"


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' -> cuda when torch sees a GPU, else cpu."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise InputError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None


def tensorrt_importable() -> bool:
    try:
        from ..export.tensorrt_build import import_tensorrt

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


def _is_export_dir(path: Any) -> bool:
    return isinstance(path, Path) and path.is_dir()


def exported_network(path: Any, precision: str, frames: bool = False, noise_mode: str = "const",
                     opset: int | None = None) -> Path:
    """The cached export directory of a network file, Generator or None (default), exporting on a miss."""
    from ..export import export_onnx
    from ..export.cache import onnx_cache_dir
    from ..export.contract import DEFAULT_OPSET
    from ..export.onnx_export import file_sha256, generator_sha256
    from ..networks import Generator, load_generator
    from ..networks.default import default_generator

    opset = DEFAULT_OPSET if opset is None else opset
    if path is None or isinstance(path, Generator):
        G = default_generator() if path is None else path
        digest = generator_sha256(G)
        path = None
    else:
        from ..networks.files import network_format

        network_format(path)  # a clear error for a missing or foreign file before hashing it
        G, digest = None, file_sha256(path)
    out = onnx_cache_dir(digest, precision, frames, noise_mode, opset)
    if not (out / "model.json").is_file():
        G = G if G is not None else load_generator(path)
        export_onnx(G, out, precision=precision, frames=frames, noise_mode=noise_mode, opset=opset, source=path)
    return out


def open_generator(path: str | os.PathLike[str] | Generator | None = None, backend: str = "auto",
                   device: str = "auto", precision: str | None = None, **options: Any) -> Runtime:
    """A runtime for a network file, an export directory (with model.json), a Generator, or None (default).

    precision: torch/onnxruntime "fp32" | "fp16", tensorrt also "bf16"; None = fp32 for network files,
    the exported precision for export directories (fp16 for TensorRT). A network file opened with
    onnxruntime or tensorrt is exported once into the cache ($SG3RT_CACHE_DIR, default ~/.cache/sg3rt).
    options: TensorRT `profile` (BatchProfile), `cache_dir`, `cuda_graph_batch`; ONNX Runtime `threads`;
    PyTorch `cuda_graphs` (replay synthesis from CUDA graphs, one per batch size).
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if path is not None and not isinstance(path, Generator):
        path = Path(path)
    is_export = _is_export_dir(path)
    dev = resolve_device(device)
    name = choose_backend(dev, is_export) if backend == "auto" else backend
    if options.get("cuda_graphs") and name != "torch":
        raise InputError(f"CUDA graphs (cuda_graphs) apply to the torch backend, not {name}")
    if name != "torch":
        options.pop("cuda_graphs", None)

    if name == "torch":
        if is_export:
            raise InputError(f"{path} is an ONNX export (no PyTorch weights): open the network file for the torch "
                             "backend, or use backend onnxruntime/tensorrt")
        from ..networks import load_generator
        from ..networks.default import default_generator
        from .torch_backend import TorchRuntime

        G = default_generator() if path is None else path if isinstance(path, Generator) else load_generator(path)
        return TorchRuntime(G, dev, precision or "fp32", **options)

    if name == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeRuntime

        export_dir = path if is_export else exported_network(path, precision or "fp32")
        return OnnxRuntimeRuntime(export_dir, dev, precision, **options)

    # tensorrt: engines are built from fp32 graphs with reduced-precision flags (see export/tensorrt_build)
    from .tensorrt_backend import TensorRTRuntime

    if dev.type != "cuda":
        from ..export.tensorrt_build import import_tensorrt, require_cuda_device

        import_tensorrt()
        require_cuda_device()
        raise InputError(f"TensorRT runs on CUDA devices only, not {dev}")
    export_dir = path if is_export else exported_network(path, "fp32")
    return TensorRTRuntime(export_dir, dev, precision or "fp16", **options)
