"""Writing outputs so that a failure never leaves a half-written file: temp name beside it, then rename.

The bottom of the package (imports nothing of sg3rt but its errors): networks/, export/, animate/,
analysis/ and the CLI all write through these helpers.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Callable


def temp_path(path: Path, suffix: str = ".tmp") -> Path:
    """A fresh hidden name beside `path` (same folder, so the final rename is atomic)."""
    return path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"


def create_temp_file(path: Path, suffix: str = ".tmp") -> Path:
    """Create an empty temp file beside `path`, with the mode a plain open() would give it.

    os.open(..., 0o666) lets the kernel apply the process umask, so the umask is never read or changed
    (mkstemp would make the file 0600 and reading the umask means setting it: process-global state).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = temp_path(path, suffix)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> None:
    """Call write(tmp_path) on a temp file beside `path`, then rename: never a half-written output."""
    path = Path(path)
    tmp = create_temp_file(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_png(path: str | os.PathLike[str], image: Any) -> None:
    """uint8 [H, W, C] (C = 1, 3 or 4) -> a PNG file, atomically."""
    import imageio.v3 as iio

    atomic_write(path, lambda tmp: iio.imwrite(tmp, image, extension=".png"))


def json_safe(value: Any) -> Any:
    """inf/nan -> None, recursively (JSON has neither; an infinite PSNR means identical images)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    """Indented JSON (inf/nan as null), atomically."""
    import json

    write_text(path, json.dumps(json_safe(payload), indent=2) + "\n")
