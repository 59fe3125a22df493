"""Edits: shift w along a direction by a fixed amount, or sweep the amount over the video.

    FILE.npz:K:AMOUNT[@LAYERS]    direction K (0-based) of `sg3rt directions` output
    FILE.npz:K:A..B[@LAYERS]      a sweep from A to B (and back to A when the video loops)
    FILE.npy:AMOUNT[@LAYERS]      a direction of your own, e.g. an InterFaceGAN boundary [w_dim] or [1, w_dim]

LAYERS is a --mix range (coarse, middle, fine, a-b); default: the .npz's own layers, else all.
Files are read with numpy's allow_pickle=False: a direction file is data, never code. An edit is
applied after truncation and style mixing: ws[:, layers] += amount * direction.
A sweep eases in and out: amount = A + (B - A) * (1 - cos(pi * s)) / 2 with s going 0 -> 1 over a
one-way video, and 0 -> 1 -> 0 (s = 2 * phase, folded) over a looping one, so its seam never jumps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..vocab import STYLEGAN2
from .paths import LAYER_GROUPS, ease, layer_range

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SWEEP = re.compile(rf"({_NUMBER})\.\.({_NUMBER})")
SPEC_HELP = "use FILE.npz:K:AMOUNT, FILE.npz:K:A..B or FILE.npy:AMOUNT, optionally @LAYERS (coarse|middle|fine|a-b)"


def _load_array(path: Path, text: str) -> np.lib.npyio.NpzFile | np.ndarray:
    if not path.is_file():
        raise InputError(f"--edit {text!r}: no such file {str(path)!r}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:  # object arrays need pickle: refused
        raise InputError(f"--edit {text!r}: {path} holds pickled objects, which are never loaded ({e})") from None
    except (OSError, EOFError) as e:
        raise InputError(f"--edit {text!r}: {path} is not a readable .npy/.npz file ({e})") from None


@dataclass(frozen=True, eq=False)
class Edit:
    """A direction in W with a fixed amount or an (A, B) sweep, on a ws layer range."""

    direction: np.ndarray  # [w_dim] or [num_ws, w_dim] float64 (a per-layer direction)
    amount: float | tuple[float, float]  # fixed, or a sweep (A, B)
    layers: str = "all"  # all | coarse | middle | fine | a-b
    label: str = ""  # what the user wrote, for messages

    @property
    def is_sweep(self) -> bool:
        return isinstance(self.amount, tuple)

    @classmethod
    def parse(cls, text: str) -> "Edit":
        """Parse a --edit spec and load its direction (width is checked later, against the network)."""
        body, at, layers = text.rpartition("@") if "@" in text else (text, "", "")
        if at and layers not in LAYER_GROUPS and layers != "all" and not re.fullmatch(r"\d+-\d+", layers):
            raise InputError(f"bad layer range {layers!r} in --edit {text!r}: use coarse, middle, fine or a-b")
        parts = body.rsplit(":", 2)
        if len(parts) == 3 and parts[0].lower().endswith(".npz"):
            path, index, amount_text = Path(parts[0]), parts[1], parts[2]
            if not re.fullmatch(r"\d+", index):
                raise InputError(f"bad --edit {text!r}: K must be a direction index 0, 1, ...; {SPEC_HELP}")
        else:
            parts = body.rsplit(":", 1)
            if len(parts) != 2 or not parts[0].lower().endswith(".npy"):
                raise InputError(f"bad --edit {text!r}: {SPEC_HELP}")
            path, index, amount_text = Path(parts[0]), None, parts[1]
        amount = _parse_amount(amount_text, text)
        data = _load_array(path, text)
        if index is None:
            direction = np.asarray(data, dtype=np.float64) if data.dtype.kind in "fiu" else None
            if direction is None or direction.ndim not in (1, 2) or direction.size == 0:
                raise InputError(f"--edit {text!r}: {path} must hold a numeric direction [w_dim], [1, w_dim] "
                                 f"or [num_ws, w_dim], got {data.dtype} {tuple(data.shape)}")
            direction = direction[0] if direction.ndim == 2 and len(direction) == 1 else direction
            own_layers = "all"
        else:
            with data:
                if "directions" not in data.files:
                    raise InputError(f"--edit {text!r}: {path} has no 'directions' array (write one with sg3rt directions)")
                dirs = np.asarray(data["directions"], dtype=np.float64)
                own_layers = str(data["layers"]) if "layers" in data.files else "all"
            if dirs.ndim != 2 or dirs.shape[1] == 0:
                raise InputError(f"--edit {text!r}: 'directions' in {path} must be [K, w_dim], got {tuple(dirs.shape)}")
            k = int(index)
            if len(dirs) == 0:
                raise InputError(f"--edit {text!r}: {path} holds no directions "
                                 f"(its 'directions' is {tuple(dirs.shape)})")
            if k >= len(dirs):
                raise InputError(f"--edit {text!r}: direction {k} is out of range ({path} holds {len(dirs)}: 0-{len(dirs) - 1})")
            direction = dirs[k]
        which = str(path) if index is None else f"direction {int(index)} of {path}"
        if not np.all(np.isfinite(direction)):
            raise InputError(f"--edit {text!r}: the direction ({which}) has NaN or infinite values")
        if not np.any(direction):  # any amount of it would change nothing, silently
            raise InputError(f"--edit {text!r}: the direction is a zero vector ({which}): it would change nothing")
        return cls(direction, amount, layers if at else own_layers, text)

    def problem(self, num_ws: int, w_dim: int) -> str | None:
        """Why this edit does not fit a network with ws [num_ws, w_dim] (its width or layer range), or None."""
        d = self.direction
        if d.shape[-1] != w_dim or (d.ndim == 2 and d.shape[0] != num_ws):
            want = f"[{w_dim}]" + (f" or [{num_ws}, {w_dim}]" if d.ndim == 2 else "")
            return f"direction has shape {list(d.shape)}, the network needs {want}"
        if self.layers != "all":
            try:
                layer_range(self.layers, num_ws)
            except InputError as e:
                return str(e)
        return None

    def offset(self, num_ws: int, w_dim: int) -> np.ndarray:  # [num_ws, w_dim] float64: the shift per unit amount
        """The direction placed on its layers (zeros elsewhere); checks it fits the network (`problem`)."""
        problem = self.problem(num_ws, w_dim)
        if problem is not None:
            raise InputError(f"--edit {self.label!r}: {problem}")
        d = self.direction
        start, stop = (0, num_ws) if self.layers == "all" else layer_range(self.layers, num_ws)
        out = np.zeros((num_ws, w_dim))
        out[start:stop] = np.broadcast_to(d, (num_ws, w_dim))[start:stop]
        return out

    def amounts(self, phase: np.ndarray, loop: bool) -> np.ndarray:  # [F] float64
        """The amount at each frame's phase (in [0, 1)): fixed, or the eased sweep of the module docstring."""
        phase = np.asarray(phase, dtype=np.float64)
        if not self.is_sweep:
            return np.full(phase.shape, float(self.amount))
        a, b = self.amount
        s = 1.0 - np.abs(1.0 - 2.0 * np.mod(phase, 1.0)) if loop else np.clip(phase, 0.0, 1.0)
        return a + (b - a) * ease("in-out", s)


def _parse_amount(text: str, spec: str) -> float | tuple[float, float]:
    m = _SWEEP.fullmatch(text.strip())
    if m is not None:
        return float(m.group(1)), float(m.group(2))
    if re.fullmatch(_NUMBER, text.strip()):
        return float(text)
    raise InputError(f"bad amount {text!r} in --edit {spec!r}: a number (e.g. 2.5) or a sweep A..B (e.g. -3..3)")


STILL_ONLY = "a sweep A..B needs a video (sg3rt render); give one AMOUNT for an image"  # check_still's default why


def check_still(edits: tuple[Edit, ...] | list[Edit], why: str = STILL_ONLY) -> None:
    """Fixed amounts only (a still image, a live slider's start): a sweep A..B is a one-line error naming
    the edit and `why`, before any work."""
    for e in edits:
        if e.is_sweep:
            raise InputError(f"--edit {e.label!r}: {why}")


class BoundEdits:
    """Edits checked against a network and ready to add to ws, frame by frame."""

    def __init__(self, edits: tuple[Edit, ...] | list[Edit], num_ws: int, w_dim: int, loop: bool):
        self.edits, self.loop = tuple(edits), loop
        self.offsets = [torch.from_numpy(e.offset(num_ws, w_dim)) for e in self.edits]  # each [num_ws, w_dim]

    def __bool__(self) -> bool:
        return bool(self.edits)

    def apply(self, ws: torch.Tensor, phase: np.ndarray | None = None) -> torch.Tensor:
        """ws [F, num_ws, w_dim] + sum over edits of amount(frame) * offset; phase [F] (None: fixed amounts only)."""
        for edit, offset in zip(self.edits, self.offsets):
            if phase is None:
                check_still((edit,))
                phase_f = np.zeros(ws.shape[0])
            else:
                phase_f = np.asarray(phase, dtype=np.float64)
            amount = torch.from_numpy(edit.amounts(phase_f, self.loop)).to(ws.device, torch.float64)  # [F]
            shift = amount[:, None, None] * offset.to(ws.device)[None]  # [F, num_ws, w_dim] float64
            ws = (ws.double() + shift).to(ws.dtype)
        return ws


def check_stabilize(kind: str) -> None:
    if kind == STYLEGAN2:
        raise InputError("--stabilize needs a StyleGAN3 network: StyleGAN2 has no input layer affine to anchor")


def stabilize(ws: torch.Tensor, w_avg: torch.Tensor) -> torch.Tensor:
    """ws [B, num_ws, w_dim] with ws[:, 0] = w_avg: the input layer's affine (StyleGAN3's rotation and
    translation of the Fourier features) then reads the same w in every frame, so a walk changes the
    content without turning or sliding the whole picture (stylegan3-fun's "anchor")."""
    ws = ws.clone()
    ws[:, 0] = w_avg.to(ws.device, ws.dtype)
    return ws
