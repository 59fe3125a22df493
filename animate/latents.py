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

from ..errors import InputError
from ..fileio import atomic_write

W_KEY = "w"  # the array's name in a .npz (the official projector's projected_w.npz uses it)
W_SUFFIXES = (".npz", ".npy")


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in W_SUFFIXES:
        raise InputError(f"{path}: a w file must be .npz (key '{W_KEY}') or .npy, not {suffix or 'no suffix'!r}")
    return suffix


def read_w_file(path: str | Path) -> np.ndarray:
    """The array in a w file, as stored (any shape above); one-line errors for anything else."""
    path = Path(path)
    suffix = _check_suffix(path)
    if not path.is_file():
        raise InputError(f"{path}: no such w file")
    try:
        if suffix == ".npy":
            w = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as data:
                if W_KEY not in data.files:
                    raise InputError(f"{path}: no array '{W_KEY}' in this .npz (it has: {', '.join(data.files) or 'none'})")
                w = data[W_KEY]
    except InputError:
        raise
    except ValueError as e:  # an object array (would need pickle), or not a numpy file at all
        reason = "holds Python objects (pickled data is never loaded)" if "allow_pickle" in str(e) else str(e)
        raise InputError(f"{path}: not a w file: {reason}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise InputError(f"{path}: not a readable .npz/.npy file ({e})") from None
    if not isinstance(w, np.ndarray) or w.dtype.kind not in "fiu":
        raise InputError(f"{path}: '{W_KEY}' must be a real number array, got {getattr(w, 'dtype', type(w))}")
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
    """--save-w's path must be .npz/.npy (checked before any work)."""
    path = Path(path)
    _check_suffix(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name for --save-w")
    return path
