"""Where sg3rt caches derived files (ONNX exports of network files, TensorRT engines), and the
cached export itself: a network file, Generator or the default network -> its export directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ..errors import NetworkFileError

CACHE_ENV = "SG3RT_CACHE_DIR"  # overrides the cache root (tests point it at a temp dir)


def cache_root() -> Path:
    """$SG3RT_CACHE_DIR, else $XDG_CACHE_HOME/sg3rt, else ~/.cache/sg3rt."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sg3rt"


def onnx_cache_dir(source_sha256: str, precision: str, frames: bool, noise_mode: str, opset: int,
                   size: tuple[int, int] | None = None, target: str = "portable") -> Path:
    """The export directory of a network file under the cache, keyed by its hash and export options."""
    from ..version import __version__
    from .onnx_export import TARGET_FIR_FORMS

    canvas = "" if size is None else f"-{size[0]}x{size[1]}"
    form = TARGET_FIR_FORMS.get(target, "unknown")  # a target's graph form can change within a version
    name = (f"{source_sha256[:24]}-{precision}-noise_{noise_mode}-opset{opset}{'-frames' if frames else ''}{canvas}-{target}"
            f"-{form}-sg3rt{__version__}")
    return cache_root() / "onnx" / name


def cached_export(network: Any, precision: str = "fp32", frames: bool = False, noise_mode: str = "const",
                  opset: int | None = None, size: tuple[int, int] | None = None, target: str = "portable") -> Path:
    """The cached export directory of a network file, a Generator or None (the default network),
    exported on the first call (checked and verified like `sg3rt export`) in the form for `target`;
    `size` (width, height): a StyleGAN3 canvas (G.with_canvas), one export per size."""
    from ..networks import Generator, load_generator, network_format
    from ..networks.default import default_generator
    from .contract import DEFAULT_OPSET
    from .onnx_export import export_onnx, file_sha256, generator_sha256

    opset = DEFAULT_OPSET if opset is None else opset
    if network is None or isinstance(network, Generator):
        G = default_generator() if network is None else network
        digest, source = generator_sha256(G), None
    else:
        source = Path(network)
        network_format(source)  # a clear error for a missing or foreign file before hashing it
        G, digest = None, file_sha256(source)
    out = onnx_cache_dir(digest, precision, frames, noise_mode, opset, size, target)
    if not _usable(out):
        shutil.rmtree(out, ignore_errors=True)  # ours, and damaged (truncated, half-deleted): made again
        G = G if G is not None else load_generator(source)
        export_onnx(G, out, precision=precision, frames=frames, noise_mode=noise_mode, opset=opset, source=source,
                    size=size, target=target)
    return out


def _usable(out: Path) -> bool:
    """Whether a cached export is complete and its graphs are the ones its model.json records; a damaged
    one would otherwise fail every open. The graph hashes are remembered, so the runtime's own read of
    model.json does not hash them again."""
    from .exported import read_model_json

    if not (out / "model.json").is_file():
        return False
    try:
        read_model_json(out)
    except NetworkFileError:
        return False
    return True
