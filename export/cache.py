"""Where sg3rt caches derived files: ONNX exports of network files and TensorRT engines."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SG3RT_CACHE_DIR"  # overrides the cache root (tests point it at a temp dir)


def cache_root() -> Path:
    """$SG3RT_CACHE_DIR, else $XDG_CACHE_HOME/sg3rt, else ~/.cache/sg3rt."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sg3rt"


def onnx_cache_dir(source_sha256: str, precision: str, frames: bool, noise_mode: str, opset: int) -> Path:
    """The export directory of a network file under the cache, keyed by its hash and export options."""
    from .. import __version__

    name = f"{source_sha256[:24]}-{precision}-noise_{noise_mode}-opset{opset}{'-frames' if frames else ''}-sg3rt{__version__}"
    return cache_root() / "onnx" / name
