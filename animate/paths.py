"""Latent paths: where each frame sits between the seeds' latents (linear, slerp, looping cubic, noise loop).

A path lives in W (the keyframes are mapped once, then interpolated) or in Z (each frame's z is
interpolated, then mapped). Truncation happens in the mapping, style mixing after it, so both work
the same for every path. Everything here is numpy float64 until the runtime maps or synthesises.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..networks.mapping import MAX_PSI
from .seeds import MAX_SEED, class_labels, seed_z, seeds_to_z
from .writers import check_fps

PATHS = ("linear", "slerp", "cubic", "noise")
DEFAULT_SPACE = {"linear": "w", "slerp": "z", "cubic": "w", "noise": "z"}  # where each path is smoothest
SPACES_ALLOWED = {"linear": ("w", "z"), "slerp": ("w", "z"), "cubic": ("w",), "noise": ("z",)}
NOISE_HARMONICS = 3  # sine/cosine pairs in a noise loop: more makes the walk busier
SLERP_EPS = 1e-7  # below this angle (radians) slerp falls back to lerp
# Style-mixing layer groups as fractions of num_ws: 18 ws (1024px) -> coarse 0-3, middle 4-7, fine 8-17.
LAYER_GROUPS = {"coarse": (0.0, 2 / 9), "middle": (2 / 9, 4 / 9), "fine": (4 / 9, 1.0)}
MAX_FRAMES = 24 * 3600 * 120  # a day at 120 fps (10.4 M frames): a longer video is a typo (e.g. --duration 1e9)


# ------------------------------------------------------------------------------------------------
# Timing: how many frames, and where each one sits along the path.


def check_frame_count(frames: float, what: str = "the video") -> float:
    """`frames` (a count, or seconds * fps before rounding) up to MAX_FRAMES: a huge length is one line before
    any work, never an OverflowError from round(inf) or a render that never ends."""
    if not frames <= MAX_FRAMES:  # (also NaN)
        count = f"{frames:.3g}" if isinstance(frames, float) else f"{frames}"
        raise InputError(f"{what} gives {count} frames; at most {MAX_FRAMES} (a day at 120 fps)")
    return frames


@dataclass(frozen=True)
class Timeline:
    """Frame i sits at position t_i (in keyframe units); a loop never repeats its first frame at the end."""

    num_frames: int  # frames in the video
    transitions: int  # keyframe-to-keyframe segments the frames cover (>= 1)
    loop: bool  # the last frame leads back into the first

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise InputError(f"an animation needs at least one frame, got {self.num_frames}")
        check_frame_count(self.num_frames)

    @classmethod
    def build(cls, keyframes: int, loop: bool, fps: float, duration: float | None = None,
              frames_per_transition: int | None = None, frames: int | None = None) -> "Timeline":
        """Exactly one of duration (seconds), frames_per_transition or frames (total); none = 60 per transition."""
        if sum(x is not None for x in (duration, frames_per_transition, frames)) > 1:
            raise InputError("give only one of --duration, --frames-per-transition and --frames")
        check_fps(fps, what="--fps")
        transitions = max(1, keyframes if loop else keyframes - 1)
        if duration is not None:
            if not duration > 0 or not math.isfinite(duration):
                raise InputError(f"--duration must be positive, got {duration}")
            num = max(1, round(check_frame_count(duration * fps, f"--duration {duration:g} s at {fps:g} fps")))
        elif frames is not None:
            if frames < 1:
                raise InputError(f"--frames must be at least 1, got {frames}")
            num = check_frame_count(frames, "--frames")
        else:
            per = 60 if frames_per_transition is None else frames_per_transition
            if per < 1:
                raise InputError(f"--frames-per-transition must be at least 1, got {per}")
            num = check_frame_count(per * transitions + (0 if loop else 1),  # a one-way path ends on its last keyframe
                                    f"--frames-per-transition {per} over {transitions} transitions")
        return cls(num, transitions, loop)

    def phase(self, frames: np.ndarray) -> np.ndarray:  # [F] in [0, 1) for loops, [0, 1] otherwise
        frames = np.asarray(frames, dtype=np.float64)
        if self.loop:
            return frames / self.num_frames
        return frames / max(1, self.num_frames - 1)

    def positions(self, frames: np.ndarray) -> np.ndarray:  # [F] in keyframe units
        return self.phase(frames) * self.transitions


# ------------------------------------------------------------------------------------------------
# Interpolation through keyframes [K, ...] at positions t [F] -> [F, ...].


def _segments(num_keys: int, t: np.ndarray, loop: bool) -> tuple[np.ndarray, np.ndarray]:
    """Segment index (integer) and fraction in [0, 1] of each position; one-way paths end exactly on the last key."""
    t = np.asarray(t, dtype=np.float64)
    if loop:
        t = np.mod(t, num_keys)
        i = np.floor(t).astype(np.int64)
        return i, t - i
    t = np.clip(t, 0, num_keys - 1)
    i = np.minimum(np.floor(t).astype(np.int64), max(0, num_keys - 2))
    return i, t - i


def _key(keys: np.ndarray, i: np.ndarray, loop: bool) -> np.ndarray:
    """keys[i], wrapping around for loops and clamping at the ends otherwise."""
    k = len(keys)
    return keys[np.mod(i, k) if loop else np.clip(i, 0, k - 1)]


def _bcast(f: np.ndarray, like: np.ndarray) -> np.ndarray:
    return f.reshape(f.shape + (1,) * (like.ndim - 1))


def ease(name: str, f: np.ndarray) -> np.ndarray:
    """Eased fraction g(f) of a segment, f in [0, 1]: monotone, g(0) = 0, g(1) = 1 (sine family)."""
    f = np.asarray(f, dtype=np.float64)
    if name == "in":  # starts at rest
        return 1.0 - np.cos(0.5 * np.pi * f)
    if name == "out":  # arrives at rest
        return np.sin(0.5 * np.pi * f)
    if name == "in-out":  # both (also an --edit sweep's curve)
        return 0.5 * (1.0 - np.cos(np.pi * f))
    return f  # linear (cubic segments are handled by the spline)


def lerp_path(keys: np.ndarray, t: np.ndarray, loop: bool) -> np.ndarray:
    i, f = _segments(len(keys), t, loop)
    a, b = _key(keys, i, loop), _key(keys, i + 1, loop)
    f = _bcast(f, a)
    return a + (b - a) * f


def slerp(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Spherical interpolation along the last axis: the angle moves linearly, the norm in between."""
    na = np.linalg.norm(a, axis=-1, keepdims=True)
    nb = np.linalg.norm(b, axis=-1, keepdims=True)
    cos = np.sum(a * b, axis=-1, keepdims=True) / np.maximum(na * nb, 1e-30)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    sin = np.sin(omega)
    small = omega < SLERP_EPS
    safe = np.where(small, 1.0, sin)
    wa = np.where(small, 1 - f, np.sin((1 - f) * omega) / safe)
    wb = np.where(small, f, np.sin(f * omega) / safe)
    return wa * a + wb * b


def slerp_path(keys: np.ndarray, t: np.ndarray, loop: bool, center: np.ndarray | None = None) -> np.ndarray:
    """Slerp between neighbouring keys, about `center` (w_avg in W, the origin in Z)."""
    c = 0.0 if center is None else center
    i, f = _segments(len(keys), t, loop)
    a, b = _key(keys, i, loop) - c, _key(keys, i + 1, loop) - c
    return c + slerp(a, b, _bcast(f, a))


def cubic_path(keys: np.ndarray, t: np.ndarray, loop: bool) -> np.ndarray:
    """Uniform Catmull-Rom through every key: C1 everywhere, and at the seam too when it loops."""
    i, f = _segments(len(keys), t, loop)
    p0, p1 = _key(keys, i - 1, loop), _key(keys, i, loop)
    p2, p3 = _key(keys, i + 1, loop), _key(keys, i + 2, loop)
    f = _bcast(f, p1)
    return 0.5 * (2 * p1 + (p2 - p0) * f + (2 * p0 - 5 * p1 + 4 * p2 - p3) * f**2 + (3 * p1 - p0 - 3 * p2 + p3) * f**3)


def noise_loop(seed: int, dim: int, phase: np.ndarray, harmonics: int = NOISE_HARMONICS) -> np.ndarray:  # [F, dim]
    """A smooth periodic random walk: a random Fourier series, deterministic from the seed.

    Amplitudes fall as 1/k and are normalised so that every frame is exactly N(0, I) distributed,
    i.e. each frame is as typical a latent as a seed's own z.
    """
    coef = np.random.RandomState(seed).randn(2, harmonics, dim)  # cos and sin coefficients
    k = np.arange(1, harmonics + 1, dtype=np.float64)
    amp = (1 / k) / np.sqrt(np.sum(1 / k**2))  # sum(amp^2) = 1
    theta = 2 * np.pi * np.asarray(phase, dtype=np.float64)[:, None] * k  # [F, H]
    return (np.cos(theta) * amp) @ coef[0] + (np.sin(theta) * amp) @ coef[1]


# ------------------------------------------------------------------------------------------------
# Style mixing: some layers' w come from another seed.


def layer_range(spec: str, num_ws: int) -> tuple[int, int]:
    """'coarse' | 'middle' | 'fine' | 'a-b' (inclusive) -> [start, stop) of the ws layers."""
    if spec in LAYER_GROUPS:
        lo, hi = LAYER_GROUPS[spec]
        return round(lo * num_ws), round(hi * num_ws)
    m = re.fullmatch(r"(\d+)-(\d+)", spec)
    if m is None:
        raise InputError(f"bad layer range {spec!r}: use coarse, middle, fine or a-b (0-based, inclusive)")
    a, b = int(m.group(1)), int(m.group(2))
    if a > b or b >= num_ws:
        raise InputError(f"layer range {spec!r} must satisfy a <= b < num_ws = {num_ws}")
    return a, b + 1


@dataclass(frozen=True)
class StyleMix:
    """Take layers `layers` (coarse/middle/fine or a-b) from `seed` instead of the path."""

    layers: str
    seed: int

    @classmethod
    def parse(cls, text: str) -> "StyleMix":
        """'coarse:5' or '4-7:12' -> StyleMix."""
        layers, sep, seed = text.partition(":")
        if not sep or not re.fullmatch(r"\d+", seed.strip()):
            raise InputError(f"bad --mix {text!r}: use LAYERS:SEED, e.g. coarse:5, fine:12 or 4-7:3")
        if int(seed) > MAX_SEED:  # checked here, not in RandomState after the network loads
            raise InputError(f"bad --mix {text!r}: seed {int(seed)} is too large (seeds go from 0 to {MAX_SEED})")
        if layers not in LAYER_GROUPS and not re.fullmatch(r"\d+-\d+", layers):
            raise InputError(f"bad layer range {layers!r} in --mix {text!r}: use coarse, middle, fine or a-b")
        return cls(layers, int(seed))


def apply_mixes(ws: torch.Tensor, mix_ws: list[tuple[tuple[int, int], torch.Tensor]]) -> torch.Tensor:
    """ws [B, num_ws, w_dim] with the layers [start, stop) of each mix replaced by its w [num_ws, w_dim]."""
    for (start, stop), w in mix_ws:
        mask = torch.zeros(ws.shape[1], 1, dtype=torch.bool, device=ws.device)
        mask[start:stop] = True
        ws = torch.where(mask, w.to(ws.device, ws.dtype), ws)
    return ws


# ------------------------------------------------------------------------------------------------
# One path through a list of seeds, evaluated frame by frame on a runtime.


@dataclass(frozen=True)
class PathSpec:
    """How to move between seeds (shared by every tile of a grid)."""

    kind: str = "cubic"  # linear | slerp | cubic | noise
    space: str | None = None  # w | z; None = the path's default
    loop: bool = True  # close the path back to its first seed, as the official gen_video (noise always loops)
    psi: float = 1.0  # truncation psi
    cutoff: int | None = None  # truncate only the first `cutoff` layers
    class_idx: int | None = None  # class of a conditional network
    mixes: tuple[StyleMix, ...] = field(default_factory=tuple)
    edits: tuple[Any, ...] = field(default_factory=tuple)  # edits.Edit shifts, applied after mixing (scene.Animation)
    stabilize: bool = False  # ws[:, 0] = w_avg: no global rotation/sliding in a StyleGAN3 walk (scene.Animation)

    def __post_init__(self) -> None:
        if self.kind not in PATHS:
            raise InputError(f"unknown path {self.kind!r} (choose from {', '.join(PATHS)})")
        if self.space is not None and self.space not in ("w", "z"):
            raise InputError(f"unknown --space {self.space!r} (choose from w, z)")
        if self.space is not None and self.space not in SPACES_ALLOWED[self.kind]:
            raise InputError(f"--path {self.kind} works in {' or '.join(s.upper() for s in SPACES_ALLOWED[self.kind])}, "
                             f"not {str(self.space).upper()}")
        if not math.isfinite(self.psi):
            raise InputError(f"--psi must be a finite number, got {self.psi}")
        if abs(self.psi) > MAX_PSI:  # checked before the network loads, as the mapping would after
            raise InputError(f"--psi must be between -{MAX_PSI:g} and {MAX_PSI:g}, got {self.psi:g}")

    @property
    def latent_space(self) -> str:
        return self.space or DEFAULT_SPACE[self.kind]

    @property
    def loops(self) -> bool:
        return self.loop or self.kind == "noise"


def check_w_keyframes(spec: PathSpec) -> None:
    """Given ws are keyframes in W: a path in Z, a noise loop or a truncation cannot use them."""
    if spec.kind == "noise":
        raise InputError("--path noise is seeded, not keyframed: it cannot use a w file")
    if spec.space == "z":
        raise InputError("a w file's keyframes live in W: leave out --space z")
    if spec.psi != 1.0 or spec.cutoff is not None:
        raise InputError("--psi/--cutoff truncate the mapping of seeds; a w file's ws are used as they are")


class LatentPath:
    """ws for any frame of one path: W paths map their keyframes once, Z paths map every frame.

    The keyframes are seeds (mapped with the spec's truncation and class) or given ws [K, num_ws, w_dim]
    (a w file: used as they are, so the path runs in W and truncation does not apply to them).
    """

    def __init__(self, runtime: Any, seeds: list[int] | None, spec: PathSpec, timeline: Timeline,
                 ws: np.ndarray | None = None):
        if (seeds is None) == (ws is None):
            raise InputError("give the keyframes as seeds or as ws, not both" if ws is not None else "no keyframes")
        if ws is not None:
            check_w_keyframes(spec)
            ws = np.asarray(ws, dtype=np.float64)
            if ws.ndim != 3 or ws.shape[1:] != (runtime.num_ws, runtime.w_dim) or len(ws) < 1:
                raise InputError(f"keyframe ws must be [K, {runtime.num_ws}, {runtime.w_dim}], got {list(ws.shape)}")
        elif spec.kind == "noise" and len(seeds) != 1:
            raise InputError(f"--path noise takes one seed per path (a noise loop is seeded, not keyframed); "
                             f"got {len(seeds)}: use --grid to render several loops")
        self.runtime, self.spec, self.timeline = runtime, spec, timeline
        self.seeds = None if seeds is None else list(seeds)
        self.c1 = class_labels(runtime.c_dim, spec.class_idx, 1)  # [1, c_dim] | None
        self.z_keys = None if seeds is None else seeds_to_z(self.seeds, runtime.z_dim).astype(np.float64)  # [K, z_dim]
        self.w_keys = ws  # [K, num_ws, w_dim] float64 | None
        if ws is None and spec.latent_space == "w":
            self.w_keys = self._map(self.z_keys).double().cpu().numpy()  # [K, num_ws, w_dim]
        self.mix_ws = [(layer_range(m.layers, runtime.num_ws), self._map(seed_z(m.seed, runtime.z_dim)[None])[0])
                       for m in spec.mixes]

    def keyframe_ws(self) -> torch.Tensor:  # [K, num_ws, w_dim] float32
        """The ws the keyframes show (mixing included): what --save-w writes, so they render the same again."""
        if self.spec.kind == "noise":
            raise InputError("--path noise has no keyframes to save (a noise loop is seeded, not keyframed)")
        ws = self._map(self.z_keys) if self.w_keys is None else torch.from_numpy(self.w_keys.astype(np.float32))
        return apply_mixes(ws.to(self.runtime.w_avg.device), self.mix_ws)

    def _map(self, z: np.ndarray) -> torch.Tensor:  # [B, z_dim] -> [B, num_ws, w_dim] on the runtime's device
        c = None if self.c1 is None else np.repeat(self.c1, len(z), axis=0)
        return self.runtime.mapping(z.astype(np.float32), c, self.spec.psi, self.spec.cutoff)

    def latents(self, frames: np.ndarray) -> np.ndarray:  # [F, z_dim] (Z) or [F, num_ws, w_dim] (W), float64
        """The path's own latents at these frames, before mapping/mixing."""
        spec, tl = self.spec, self.timeline
        if spec.kind == "noise":
            return noise_loop(self.seeds[0], self.runtime.z_dim, tl.phase(frames))
        keys = self.w_keys if self.w_keys is not None else self.z_keys  # given ws are always W keys
        t, loop = tl.positions(frames), spec.loops
        if spec.kind == "linear":
            return lerp_path(keys, t, loop)
        if spec.kind == "slerp":
            center = self.runtime.w_avg.double().cpu().numpy() if self.w_keys is not None else None
            return slerp_path(keys, t, loop, center)
        return cubic_path(keys, t, loop)

    def ws(self, frames: np.ndarray) -> torch.Tensor:  # [F, num_ws, w_dim] float32 on the runtime's device
        lat = self.latents(frames)
        if self.w_keys is None:
            ws = self._map(lat)
        else:
            ws = torch.from_numpy(lat.astype(np.float32)).to(self.runtime.w_avg.device)
        return apply_mixes(ws, self.mix_ws)
