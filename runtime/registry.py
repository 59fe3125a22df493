"""`open_generator`: pick a backend by name (or `auto`) and open a network file or export directory."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import InputError
from .base import Runtime

BACKENDS = ("auto", "torch")  # extended as backends land: onnxruntime, tensorrt


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when torch sees a GPU, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise InputError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None


def open_generator(path: str | os.PathLike[str] | None = None, backend: str = "auto", device: str = "auto",
                   precision: str = "fp32") -> Runtime:
    """A runtime for a network file (None = the embedded default network)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    from ..networks import load_generator
    from ..networks.default import default_generator
    from .torch_backend import TorchRuntime

    G = default_generator() if path is None else load_generator(Path(path))
    return TorchRuntime(G, resolve_device(device), precision)
