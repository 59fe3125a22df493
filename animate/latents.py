"""Saved latents as keyframes: w files (.npz key `w`, as the official projector's projected_w.npz, or .npy).

A w file is data: numpy reads it with allow_pickle=False, always, so an object array (a pickle)
is refused, never run. Shapes accepted, all made [N, num_ws, w_dim] float32:
  [N, num_ws, w_dim]  N keyframes (the projector saves N = 1)
  [num_ws, w_dim]     one keyframe
  [N, 1, w_dim]       N keyframes with one w for every layer (broadcast to num_ws)
  [w_dim]             one keyframe, one w for every layer
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from ..fileio import FileSet, atomic_write, is_dir, write_bytes
from .writers import check_writable

W_KEY = "w"  # the array's name in a .npz (the official projector's projected_w.npz uses it)
W_SUFFIXES = (".npz", ".npy")
NPY_MAGIC = b"\x93NUMPY"  # the first bytes of a .npy file
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # the first bytes of a .npz (a zip archive; the second: an empty one)


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in W_SUFFIXES:
        raise InputError(f"{path}: a w file must be .npz (key '{W_KEY}') or .npy, not {suffix or 'no suffix'!r}")
    return suffix


def read_w_file(path: str | Path) -> np.ndarray:
    """The array in a w file, as stored (any shape above, at least one w); one-line errors for anything else.

    The file's first bytes say what it is (as np.load decides): anything that is neither a .npy nor a zip
    would reach numpy's pickle fallback, whose refusal reads as if the file held Python objects.
    """
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise InputError(f"{path}: no such w file")
    try:
        with open(path, "rb") as f:
            magic = f.read(len(NPY_MAGIC))
        if magic.startswith(NPY_MAGIC):
            w = np.load(path, allow_pickle=False)
        elif magic.startswith(ZIP_MAGICS):
            with np.load(path, allow_pickle=False) as data:
                if W_KEY not in data.files:
                    raise InputError(f"{path}: no array '{W_KEY}' in this .npz (it has: {', '.join(data.files) or 'none'})")
                w = data[W_KEY]
        else:
            raise InputError(f"{path}: not a numpy file (a .npy starts with \\x93NUMPY, a .npz is a zip archive)")
    except InputError:
        raise
    except ValueError as e:  # an object array (would need pickle), or a damaged header
        reason = "holds Python objects (pickled data is never loaded)" if "allow_pickle" in str(e) else str(e)
        raise InputError(f"{path}: not a w file: {reason}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise InputError(f"{path}: not a readable .npz/.npy file ({e})") from None
    if not isinstance(w, np.ndarray) or w.dtype.kind not in "fiu":
        raise InputError(f"{path}: '{W_KEY}' must be a real number array, got {getattr(w, 'dtype', type(w))}")
    if w.size == 0:  # nothing to show: refused here, so render, image and timelines all say the same
        raise InputError(f"{path}: holds no w (shape {list(w.shape)}); a w file needs at least one")
    return w


def as_keyframes(w: np.ndarray, num_ws: int, w_dim: int, where: str = "w") -> np.ndarray:
    """Any accepted shape -> [N, num_ws, w_dim] float32, checked against the network's num_ws and w_dim."""
    shape = list(w.shape)
    if w.ndim == 1:
        w = w[None, None]
    elif w.ndim == 2:
        if w.shape[0] != num_ws:
            raise InputError(f"{where}: shape {shape} is not [num_ws={num_ws}, w_dim={w_dim}] of this network")
        w = w[None]
    elif w.ndim != 3:
        raise InputError(f"{where}: shape {shape} is not [N, num_ws, w_dim] (this network: num_ws={num_ws}, w_dim={w_dim})")
    if w.shape[0] < 1 or w.shape[1] not in (1, num_ws) or w.shape[2] != w_dim:
        raise InputError(f"{where}: shape {shape} does not fit this network: want [N, {num_ws}, {w_dim}] "
                         f"(N >= 1; also [N, 1, {w_dim}], [{num_ws}, {w_dim}] or [{w_dim}])")
    w = np.broadcast_to(w, (w.shape[0], num_ws, w_dim)).astype(np.float32)  # [N, num_ws, w_dim]
    if not np.isfinite(w).all():
        raise InputError(f"{where}: has NaN or infinite values")
    return w


def load_ws(path: str | Path, num_ws: int, w_dim: int) -> np.ndarray:  # [N, num_ws, w_dim] float32
    """The keyframes of a w file for a network with these num_ws and w_dim."""
    return as_keyframes(read_w_file(path), num_ws, w_dim, str(path))


def ws_bytes(ws: np.ndarray, path: str | Path) -> bytes:
    """ws [N, num_ws, w_dim] as the bytes of a float32 w file, .npz (key `w`) or .npy by the path's suffix."""
    suffix = _check_suffix(Path(path))
    ws = np.asarray(ws, dtype=np.float32)
    if ws.ndim != 3:
        raise ValueError(f"ws must be [N, num_ws, w_dim], got {list(ws.shape)}")
    buffer = io.BytesIO()  # np.savez on a path would add its own .npz suffix to a temp name
    if suffix == ".npz":
        np.savez(buffer, **{W_KEY: ws})
    else:
        np.save(buffer, ws, allow_pickle=False)
    return buffer.getvalue()


def save_ws(path: str | Path, ws: np.ndarray) -> None:
    """Write ws [N, num_ws, w_dim] as float32 (.npz key `w`, or .npy), atomically: never a half-written file."""
    data = ws_bytes(ws, path)
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def check_w_output(path: str | Path) -> Path:
    """--save-w's path must be .npz/.npy in a folder we may write (checked before any work)."""
    path = Path(path)
    _check_suffix(path)
    if is_dir(path):  # (fileio's: a name too long is one line, not Path.is_dir's OSError)
        raise InputError(f"{path}: is a folder; give a file name for --save-w")
    check_writable(path)
    return path


class StagedWs:
    """--save-w beside a video: the w file is written to a temp name before the first frame and renamed into
    place only once the video is complete, so both appear together or neither does.

    Writing the bytes first means a full disk or a refusing folder stops the render before any work, and a
    failed or interrupted render leaves no w file of a video that does not exist (the temp file and any
    folder made for it are removed on leaving the block without commit). What is left after the video is
    one rename in a folder already written to. Should even that fail, the video is kept: it is complete,
    took the time, and the ws can be saved again; the OutputError says the w file is missing.
    """

    def __init__(self, path: str | Path):
        self.path = check_w_output(path)
        self._files = FileSet()

    def stage(self, ws: np.ndarray) -> None:
        """Write ws [N, num_ws, w_dim] to the temp file now (an OutputError if the disk refuses)."""
        data = ws_bytes(ws, self.path)
        self._files.write(self.path, lambda tmp: write_bytes(tmp, data))

    def commit(self, beside: str | Path) -> None:
        """Rename the staged file into place, once `beside` (the video) is."""
        try:
            self._files.commit()
        except OutputError as e:
            raise OutputError(f"{e}; {beside} was written, without its ws") from None

    def __enter__(self) -> "StagedWs":
        return self

    def __exit__(self, *exc: object) -> None:
        self._files.__exit__(*exc)
