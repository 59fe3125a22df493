"""sg3rt: StyleGAN3/StyleGAN2 generators as fast, export-friendly PyTorch, ONNX and TensorRT, and video.

The top level is the library's front door: networks (load_generator, Generator), runtimes
(open_generator), rendering (Animation, PathSpec, Motion, render, render_images, open_writer) and the
typed errors. Names are imported on first use (PEP 562), so `import sg3rt` and the CLI's `--help`
do not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from .version import __version__

# public name -> module that defines it (relative to this package)
_EXPORTS = {
    "Sg3rtError": ".errors", "NetworkFileError": ".errors", "UnsupportedNetworkError": ".errors",
    "UnsafePickleError": ".errors", "InputError": ".errors", "BackendUnavailableError": ".errors",
    "DeviceMemoryError": ".errors", "RuntimeClosedError": ".errors",
    "Generator": ".networks", "load_generator": ".networks", "save_generator": ".networks",
    "input_transform": ".networks",
    "export_onnx": ".export",
    "open_generator": ".runtime", "Runtime": ".runtime",
    "Animation": ".animate", "PathSpec": ".animate", "Motion": ".animate", "Translation": ".animate",
    "Grid": ".animate", "StyleMix": ".animate", "Progress": ".animate", "open_writer": ".animate",
    "parse_seeds": ".animate", "render": ".animate", "render_images": ".animate", "load_ws": ".animate",
    "save_ws": ".animate", "KeyTimeline": ".animate", "load_timeline": ".animate",
    "AudioFeatures": ".animate", "AudioReaction": ".animate",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sg3rt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
