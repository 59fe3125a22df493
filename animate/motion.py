"""Motion for StyleGAN3: per-frame rotation and translation of the image content -> [T, 3, 3] input transforms.

Motion is a function of the same phase as the latent path (0 at the first frame, 1 after the last
frame of a loop), so a loop with a whole number of turns and cycles closes without a seam.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..vocab import NO_TRANSFORM
from ..networks import input_transform

TRANSLATIONS = ("line", "circle", "figure8")  # closed curves, each starting at its centre or rim
DEFAULT_AMPLITUDE = 0.1  # image widths, when "circle" is given without ":A"


FIXED = "fixed"  # Translation.shape of a constant shift "X,Y"
_OFFSET = re.compile(r"\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*")  # "X,Y"


@dataclass(frozen=True)
class Translation:
    """--translate: a fixed shift X,Y, or a closed curve in image widths: line (back and forth),
    circle (radius), figure8 (lemniscate). The same text means the same in `render` and `image`."""

    shape: str  # FIXED or one of TRANSLATIONS
    amplitude: float = DEFAULT_AMPLITUDE  # half-length / radius / half-width, in image widths
    cycles: int = 1  # times around the curve over the video
    offset: tuple[float, float] = (0.0, 0.0)  # the shift of FIXED, in image widths

    @property
    def fixed(self) -> bool:
        return self.shape == FIXED

    @classmethod
    def parse(cls, text: str) -> "Translation":
        """'0.1,-0.2' (a fixed shift), or 'circle', 'circle:0.1', 'figure8:0.05:2' (shape[:amplitude[:cycles]])."""
        fixed = _OFFSET.fullmatch(text)
        if fixed:
            try:
                x, y = float(fixed.group(1)), float(fixed.group(2))
            except ValueError:
                x = y = math.nan
            if not (math.isfinite(x) and math.isfinite(y)):
                raise InputError(f"bad --translate {text!r}: X,Y must be finite numbers (image widths)")
            return cls(FIXED, 0.0, 1, (x, y))
        m = re.fullmatch(r"([a-z8-]+)(?::([^:]+))?(?::([^:]+))?", text.strip().lower())
        shape = m.group(1).replace("figure-eight", "figure8").replace("eight", "figure8") if m else ""
        if shape not in TRANSLATIONS:
            raise InputError(f"bad --translate {text!r}: use X,Y in image widths (e.g. 0.1,-0.2) or "
                             f"SHAPE[:AMPLITUDE[:CYCLES]] with SHAPE one of {', '.join(TRANSLATIONS)} (e.g. circle:0.1)")
        try:
            amplitude = float(m.group(2)) if m.group(2) else DEFAULT_AMPLITUDE
            cycles = int(m.group(3)) if m.group(3) else 1
        except ValueError:
            raise InputError(f"bad --translate {text!r}: amplitude must be a number, cycles an integer") from None
        if not math.isfinite(amplitude) or amplitude < 0 or cycles < 1:
            raise InputError(f"bad --translate {text!r}: amplitude must be >= 0 and cycles >= 1")
        return cls(shape, amplitude, cycles)

    def offsets(self, phase: np.ndarray) -> np.ndarray:  # [T] -> [T, 2] (x, y) in image widths
        phase = np.asarray(phase, dtype=np.float64)
        if self.fixed:
            return np.tile(np.asarray(self.offset, dtype=np.float64), (len(phase), 1))
        theta = 2 * np.pi * self.cycles * phase
        a = self.amplitude
        if self.shape == "line":
            return np.stack([a * np.sin(theta), np.zeros_like(theta)], axis=1)
        if self.shape == "circle":
            return np.stack([a * np.cos(theta), a * np.sin(theta)], axis=1)
        return np.stack([a * np.sin(theta), 0.5 * a * np.sin(2 * theta)], axis=1)  # lemniscate of Gerono


@dataclass(frozen=True)
class Motion:
    """Rotation (total degrees over the video, or degrees per second) plus a translation curve."""

    rotate: float | None = None  # total degrees, spread over the video's phase
    rotate_speed: float | None = None  # degrees per second (needs fps)
    translate: Translation | None = None

    def __post_init__(self) -> None:
        if self.rotate is not None and self.rotate_speed is not None:
            raise InputError("give --rotate (total degrees) or --rotate-speed (degrees per second), not both")
        for name, v in (("--rotate", self.rotate), ("--rotate-speed", self.rotate_speed)):
            if v is not None and not math.isfinite(v):
                raise InputError(f"{name} must be a finite number of degrees, got {v}")

    @property
    def active(self) -> bool:
        return self.rotate is not None or self.rotate_speed is not None or self.translate is not None

    def angles(self, frames: np.ndarray, phase: np.ndarray, fps: float) -> np.ndarray:  # [T] degrees
        if self.rotate_speed is not None:
            return self.rotate_speed * np.asarray(frames, dtype=np.float64) / fps
        return (self.rotate or 0.0) * np.asarray(phase, dtype=np.float64)

    def transforms(self, frames: np.ndarray, phase: np.ndarray, fps: float) -> torch.Tensor:  # [T, 3, 3] float32
        """The official-semantics input transforms, one per frame."""
        angles = torch.from_numpy(self.angles(frames, phase, fps))
        shift = torch.from_numpy(self.translate.offsets(phase) if self.translate else np.zeros([len(angles), 2]))
        return input_transform(angles, shift).reshape(-1, 3, 3)


def check_motion(motion: Motion, runtime, reaction: Any = None) -> None:
    """StyleGAN2 has no input transform: refuse motion for it, in one line, before any rendering. With an audio
    `reaction` (AudioReaction) the same for its own motion (--react rotate/translate, named as such); and its
    translate scales the amplitude of the --translate curve, so without a curve (none, or a fixed X,Y shift) it
    would do nothing without a word: refused too."""
    if motion.active and not runtime.is_stylegan3:
        raise InputError(f"{NO_TRANSFORM}: drop --rotate/--rotate-speed/--translate")
    if reaction is None:
        return
    if reaction.moves and not runtime.is_stylegan3:
        raise InputError(f"--react rotate/translate: {NO_TRANSFORM}")
    if reaction.translate != 0 and (motion.translate is None or motion.translate.fixed):
        why = "" if motion.translate is None else ", not a fixed X,Y shift"
        raise InputError(f"--react translate needs a --translate curve, e.g. --translate circle:0.1 "
                         f"(it scales the curve's amplitude on the beat{why})")
