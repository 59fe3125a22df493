"""Keyframe timelines: a TOML (or JSON) file says what the video shows when (`sg3rt render --timeline`).

    fps = 30            # frames per second (default 30)
    loop = true         # the last segment eases back to the first key (default false)
    [[key]]
    time = 0.0          # seconds, strictly increasing
    seed = 1            # or w = "projected_w.npz:0"
    ease = "in-out"     # the segments of every property that start here

Every property (latent, psi, cutoff, class, rotate, translate, mix, edit) is its own track through
the keys that set it: before its first such key it holds that key's value, after its last it holds
the last (a loop instead eases from the last back to the first). Every track is a weighted sum of its
keys' values, the weights given by the segment's ease, so the frame at a key's time gets weight
exactly 1 on that key and shows exactly that key's image (as `sg3rt image` with those settings).

Latents interpolate in W, linearly (or Catmull-Rom): the path the StyleGAN papers measure (perceptual
path length is taken in W with lerp), weights that sum to 1 so the other properties compose with it
exactly, and a w file's keys are W keys anyway. Truncation and mixing act per layer, so the frame's
ws = truncate(mix(latent)) with psi, cutoff and mix blended layer by layer; a class change blends the
ws mapped under either class (a cross-fade in W, not a cut). Edits add amount * direction, each
direction's amount a track of its own; a sweep A..B runs over the segment that starts at its key.

Video length: a one-way timeline ends on its last key (frames = last time * fps + 1); a loop closes
with one more segment as long as the mean key spacing, rounded to whole frames (duration = last time +
(last - first) / (keys - 1), frames = duration * fps), so frame `frames` would be frame 0 again. A
top-level `duration` overrides both.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..fileio import read_document
from ..networks import input_transform
from ..vocab import NO_TRANSFORM, class_labels, parse_size
from .edits import Edit
from .grid import Grid
from .latents import as_keyframes, read_w_file
from .paths import StyleMix, check_frame_count, ease, layer_range
from ..networks.mapping import MAX_PSI
from .seeds import MAX_SEED, seed_z
from .writers import check_fps

EASES = ("linear", "in", "out", "in-out", "cubic")  # `ease` values; cubic = Catmull-Rom through the keys (C1)
DEFAULT_FPS = 30.0  # frames per second when the file gives none
DEFAULT_EASE = "linear"  # a key's ease when neither it nor the top level gives one
SNAP_S = 1e-9  # a frame this close to a key's time (seconds) is on the key: float noise never blurs a key
TOP_FIELDS = ("fps", "size", "loop", "psi", "ease", "duration", "key")
KEY_FIELDS = ("time", "seed", "w", "psi", "cutoff", "class", "rotate", "translate", "mix", "edit", "ease")


# ------------------------------------------------------------------------------------------------
# Eases and track weights: value(t) = sum_j weights[t, j] * value_j.


def track_weights(times: np.ndarray, eases: list[str], t: np.ndarray, loop: bool, period: float) -> np.ndarray:
    """Weights [F, n] of a track's n points (at `times`, strictly increasing) at frame times t [F].

    Segment j -> j+1 uses eases[j]. `cubic` is the Catmull-Rom spline in Hermite form with tangents
    m_j = (p_{j+1} - p_{j-1}) / (t_{j+1} - t_{j-1}), so the velocity in seconds is continuous at a key
    between two cubic segments even when the keys are unevenly spaced. One-way tracks hold their end
    values (the spline's end tangent is half the end segment's slope, as paths.cubic_path); loops wrap
    around with `period`.
    """
    times = np.asarray(times, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    n, F = len(times), len(t)
    out = np.zeros((F, n))
    if n == 1:
        out[:, 0] = 1.0
        return out
    near = np.abs(t[:, None] - times[None, :])  # [F, n]
    snap = near.min(axis=1) < SNAP_S
    t = np.where(snap, times[near.argmin(axis=1)], t)
    for row, u in enumerate(t):
        if not loop and (u <= times[0] or u >= times[-1]):
            out[row, 0 if u <= times[0] else n - 1] = 1.0
            continue
        a = int(np.searchsorted(times, u, side="right")) - 1  # times[a] <= u (a = -1: before the first)
        if 0 <= a < n - 1:
            ta, b, tb = times[a], a + 1, times[a + 1]
        elif a < 0:  # a loop before its first point: in the closing segment, one period earlier
            a, ta, b, tb = n - 1, times[-1] - period, 0, times[0]
        else:  # a loop after its last point: the closing segment back to the first
            ta, b, tb = times[a], 0, times[0] + period
        f = (u - ta) / (tb - ta)
        if f == 0.0:
            out[row, a] = 1.0
            continue
        if eases[a] != "cubic":
            g = float(ease(eases[a], f))
            out[row, a] += 1.0 - g
            out[row, b] += g
            continue
        if loop:  # neighbours around the circle, at their times next to this segment
            p, q = (a - 1) % n, (b + 1) % n
            tp, tq = ta - (times[a] - times[p]) % period, tb + (times[q] - times[b]) % period
        else:
            p, tp = (a - 1, times[a - 1]) if a >= 1 else (a, ta - (tb - ta))
            q, tq = (b + 1, times[b + 1]) if b + 1 < n else (b, tb + (tb - ta))
        h00, h10 = 2 * f**3 - 3 * f**2 + 1, f**3 - 2 * f**2 + f
        h01, h11 = -2 * f**3 + 3 * f**2, f**3 - f**2
        alpha, beta = (tb - ta) / (tb - tp), (tb - ta) / (tq - ta)
        for j, w in ((p, -h10 * alpha), (a, h00 - h11 * beta), (b, h01 + h10 * alpha), (q, h11 * beta)):
            out[row, j] += w
    return out


# ------------------------------------------------------------------------------------------------
# Parsing: a dict (from TOML or JSON) -> keys with checked fields; no network needed.


@dataclass(frozen=True, eq=False)
class Key:
    """One [[key]]: its 1-based number and time, the fields it sets (None = not set), its ease."""

    number: int  # 1-based, in the order written (what error messages name)
    time: float  # seconds
    ease: str
    seed: int | None = None
    w: np.ndarray | None = None  # [num_ws, w_dim] / [1, w_dim] / [w_dim]: one w as stored in its file
    w_label: str = ""  # "file.npz:index" as written
    psi: float | None = None
    cutoff: int | None = None
    class_idx: int | None = None
    rotate: float | None = None  # degrees
    translate: tuple[float, float] | None = None  # image widths
    mix: tuple[StyleMix, ...] | None = None
    edit: tuple[Edit, ...] | None = None

    @property
    def where(self) -> str:
        return f"key {self.number} (time {self.time})"


class _Fields:
    """Typed reads of one table's fields, every error naming where it is."""

    def __init__(self, table: dict, where: str):
        self.table, self.where = table, where

    def fail(self, name: str, message: str) -> InputError:
        return InputError(f"{self.where}: field '{name}' {message}")

    def number(self, name: str, low: float | None = None, strict: bool = False,
               bound: float | None = None) -> float | None:
        """A finite number; >= low (> low if strict); |v| <= bound."""
        v = self.table.get(name)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(name, f"must be a finite number, got {v!r}")
        if low is not None and (v <= low if strict else v < low):
            raise self.fail(name, f"must be {'>' if strict else '>='} {low:g}, got {v!r}")
        if bound is not None and abs(v) > bound:
            raise self.fail(name, f"must be between -{bound:g} and {bound:g}, got {v!r}")
        return float(v)

    def integer(self, name: str, low: int = 0, high: int | None = None) -> int | None:
        v = self.table.get(name)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
            rng = f"{low}..{high}" if high is not None else f">= {low}"
            raise self.fail(name, f"must be an integer {rng}, got {v!r}")
        return v

    def strings(self, name: str) -> list[str] | None:
        """A string or a list of strings (as a repeatable option)."""
        v = self.table.get(name)
        if v is None:
            return None
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise self.fail(name, f"must be a string or a list of strings, got {v!r}")
        return items


def _resolve(path_text: str, base: Path) -> Path:
    path = Path(path_text).expanduser()
    return path if path.is_absolute() else base / path


def _parse_w(text: Any, base: Path, f: _Fields) -> tuple[np.ndarray, str]:
    """'file.npz:index' (index 0 if left out; paths relative to the timeline's folder) -> one stored w."""
    if not isinstance(text, str) or not text.strip():
        raise f.fail("w", f"must be a string 'FILE.npz:INDEX' (a w file of sg3rt --save-w or the projector), got {text!r}")
    path_text, sep, index_text = text.rpartition(":")
    if not sep or not re.fullmatch(r"\d+", index_text.strip()):
        path_text, index_text = text, "0"
    try:
        stored = read_w_file(_resolve(path_text, base))
    except InputError as e:
        raise f.fail("w", f"{text!r}: {e}") from None
    count = stored.shape[0] if stored.ndim == 3 else 1
    index = int(index_text)
    if index >= count:
        raise f.fail("w", f"{text!r}: index {index} is out of range (the file holds {count} w: 0-{count - 1})")
    return (stored[index] if stored.ndim == 3 else stored), text


_EDIT_PATH = re.compile(r"^(.*?\.(?:npz|npy))(:.*)$", re.IGNORECASE)


def _parse_edits(items: list[str], base: Path, f: _Fields) -> tuple[Edit, ...]:
    edits = []
    for text in items:
        m = _EDIT_PATH.match(text)
        spec = text if m is None else f"{_resolve(m.group(1), base)}{m.group(2)}"
        try:
            edit = Edit.parse(spec)
        except InputError as e:  # named as written here, so the CLI's "--edit 'spec': " would only repeat it
            raise f.fail("edit", f"{text!r}: {str(e).removeprefix(f'--edit {spec!r}: ')}") from None
        edits.append(Edit(edit.direction, edit.amount, edit.layers, text))
    return tuple(edits)


def _parse_key(table: Any, number: int, top_ease: str, base: Path) -> Key:
    if not isinstance(table, dict):
        raise InputError(f"key {number}: must be a table of fields ([[key]] in TOML, an object in JSON), got {table!r}")
    if "time" not in table:
        raise InputError(f"key {number}: missing field 'time' (seconds)")
    f = _Fields(table, f"key {number}")
    time = f.number("time", 0.0)
    f.where = where = f"key {number} (time {time})"
    for name in table:
        if name not in KEY_FIELDS:
            raise InputError(f"{where}: unknown field {name!r} (fields: {', '.join(KEY_FIELDS)})")
    if "seed" in table and "w" in table:
        raise InputError(f"{where}: give 'seed' or 'w', not both (a key shows one latent)")
    for name in ("psi", "cutoff"):
        if "w" in table and name in table:
            raise f.fail(name, "truncates the mapping of seeds; a key's w is used as it is (as sg3rt image --w-file)")
    key_ease = table.get("ease", top_ease)
    if key_ease not in EASES:
        raise f.fail("ease", f"must be one of {', '.join(EASES)}, got {key_ease!r}")
    w, w_label = _parse_w(table["w"], base, f) if "w" in table else (None, "")
    translate = table.get("translate")
    if translate is not None:
        if (not isinstance(translate, list) or len(translate) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in translate)):
            raise f.fail("translate", f"must be [x, y], two finite numbers in image widths, got {translate!r}")
        translate = (float(translate[0]), float(translate[1]))
    mixes = f.strings("mix")
    if mixes is not None:
        try:
            mixes = tuple(StyleMix.parse(m) for m in mixes)
        except InputError as e:
            raise f.fail("mix", str(e)) from None
    edits = f.strings("edit")
    return Key(number, time, key_ease, seed=f.integer("seed", 0, MAX_SEED), w=w, w_label=w_label,
               psi=f.number("psi", bound=MAX_PSI), cutoff=f.integer("cutoff"), class_idx=f.integer("class"), rotate=f.number("rotate"),
               translate=translate, mix=mixes, edit=None if edits is None else _parse_edits(edits, base, f))


def _top_size(value: Any) -> tuple[int, int]:
    try:
        return parse_size(value)
    except InputError as e:
        raise InputError(f"top level: field 'size': {e}") from None


def canvas_size(size: tuple[int, int] | None, runtime: Any) -> tuple[int, int]:
    """(W, H) of the frames: the runtime's, which must be the timeline's `size` where it sets one
    (open the runtime with `open_generator(..., size=timeline.size)`, as `sg3rt render --timeline` does)."""
    own = (runtime.width, runtime.height)
    if size is not None and size != own:
        raise InputError(f"the timeline's size is {size[0]}x{size[1]} but the runtime renders {own[0]}x{own[1]}: "
                         "open it with size=timeline.size")
    return own


# ------------------------------------------------------------------------------------------------
# The timeline: parsed keys, timing, and each property's track points.


@dataclass(frozen=True)
class _Points:
    """One property's track: point times [n], the ease of the segment starting at each, the values."""

    times: np.ndarray  # [n] seconds
    eases: list[str]
    values: list[Any]

    def weights(self, t: np.ndarray, loop: bool, period: float) -> np.ndarray:  # [F, n]
        return track_weights(self.times, self.eases, t, loop, period)


@dataclass(eq=False)
class KeyTimeline:
    """A parsed timeline file (no network needed): keys, fps, size, loop; `bind(runtime)` makes the frames."""

    keys: list[Key]
    fps: float = DEFAULT_FPS
    loop: bool = False
    psi: float = 1.0  # the psi of every frame when no key sets psi
    size: tuple[int, int] | None = None  # (W, H) canvas; None = the network's own
    duration: float | None = None  # seconds; None = the rule of the module docstring
    source: str = ""  # the file name, for messages
    edit_points: _Points = field(init=False)  # amounts [T] per point, one column per edit term
    edit_terms: list[Edit] = field(init=False)  # one Edit per distinct direction and layers, first use first

    def __post_init__(self) -> None:
        if not self.keys:
            raise InputError("a timeline needs at least one key ([[key]] tables with a time)")
        for prev, key in zip(self.keys, self.keys[1:]):
            if not key.time > prev.time:
                raise InputError(f"{key.where}: times must increase from key to key ({prev.where} comes before it)")
        if not any(k.seed is not None or k.w is not None for k in self.keys):
            raise InputError("no key sets 'seed' or 'w': the timeline has nothing to show")
        last = self.keys[-1].time
        if self.duration is not None and (self.duration <= last if self.loop else self.duration < last):
            raise InputError(f"duration {self.duration:g} s must be {'after' if self.loop else 'at or after'} "
                             f"the last key's time ({last:g} s)")
        if self.loop and self.duration is None and len(self.keys) < 2:
            raise InputError("a loop needs at least two keys (or a top-level duration)")
        check_fps(self.fps, what="fps")
        first = self.keys[0].time
        span = self.duration if self.duration is not None else (  # seconds, as `length` (which rounds: inf would not)
            last + ((last - first) / (len(self.keys) - 1) if self.loop else 0.0))
        check_frame_count(span * self.fps, f"the timeline ({span:g} s at {self.fps:g} fps)")
        self.edit_points = self._edit_points()

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, base: str | Path = ".", source: str = "") -> "KeyTimeline":
        """Build from the file's schema as a dict (`key`: a list of tables); `w`/`edit` paths are relative to `base`."""
        if not isinstance(data, dict):
            raise InputError(f"a timeline is a table of fields, got {type(data).__name__}")
        for name in data:
            if name not in TOP_FIELDS:
                raise InputError(f"unknown top-level field {name!r} (fields: {', '.join(TOP_FIELDS)})")
        top = _Fields(data, "top level")
        fps = top.number("fps", 0.0, strict=True)
        if fps is not None:
            check_fps(fps, what="top level: field 'fps'")
        psi = top.number("psi", bound=MAX_PSI)
        duration = top.number("duration", 0.0, strict=True)
        loop = data.get("loop", False)
        if not isinstance(loop, bool):
            raise top.fail("loop", f"must be true or false, got {loop!r}")
        top_ease = data.get("ease", DEFAULT_EASE)
        if top_ease not in EASES:
            raise top.fail("ease", f"must be one of {', '.join(EASES)}, got {top_ease!r}")
        size = None if data.get("size") is None else _top_size(data["size"])
        tables = data.get("key")
        if not isinstance(tables, list) or not tables:
            raise InputError("no keys: add [[key]] tables (TOML) or a 'key' list (JSON), each with a time")
        keys = [_parse_key(t, i + 1, top_ease, Path(base)) for i, t in enumerate(tables)]
        return cls(keys, DEFAULT_FPS if fps is None else fps, loop, 1.0 if psi is None else psi, size, duration, source)

    # -- timing ----------------------------------------------------------------------------------
    @property
    def length(self) -> float:
        """Seconds: the loop's period, or the time of a one-way timeline's last frame."""
        if self.duration is not None:
            return self.duration
        first, last = self.keys[0].time, self.keys[-1].time
        if not self.loop:
            return last
        closing = max(1, round((last - first) / (len(self.keys) - 1) * self.fps))  # whole frames: keys stay on frames
        return last + closing / self.fps

    @property
    def num_frames(self) -> int:
        frames = self.length * self.fps
        if self.loop:
            return max(1, round(frames))
        return int(math.floor(frames + 1e-6)) + 1  # a one-way video ends on (or just before) its end

    def frame_times(self, frames: np.ndarray) -> np.ndarray:  # [F] seconds
        """Frame i at i / fps; a loop whose length is no whole number of frames spreads them evenly."""
        frames = np.asarray(frames, dtype=np.float64)
        n, exact = self.num_frames, self.length * self.fps
        if self.loop and abs(n - exact) > 1e-6:
            return frames * (self.length / n)
        return frames / self.fps

    # -- tracks ----------------------------------------------------------------------------------
    def points(self, name: str) -> _Points | None:
        """The keys that set `name` (a Key attribute) as a track; None if none does."""
        keys = [k for k in self.keys if getattr(k, name) is not None]
        if not keys:
            return None
        return _Points(np.array([k.time for k in keys]), [k.ease for k in keys], [getattr(k, name) for k in keys])

    def latent_points(self) -> _Points:
        keys = [k for k in self.keys if k.seed is not None or k.w is not None]
        return _Points(np.array([k.time for k in keys]), [k.ease for k in keys], keys)

    def _edit_points(self) -> _Points:
        """Edit amounts per direction (a term), as track points: every key that sets `edit`, plus the end
        of each sweep at the next key (or, in a loop, at the first key one period later)."""
        terms: dict[tuple, int] = {}
        for k in self.keys:
            for e in k.edit or ():
                terms.setdefault(_term(e), len(terms))
        self.edit_terms = [None] * len(terms)
        for k in self.keys:
            for e in k.edit or ():
                self.edit_terms[terms[_term(e)]] = e

        def amounts(key: Key, end: bool) -> np.ndarray:  # [T]
            out = np.zeros(len(terms))
            for e in key.edit:
                a = e.amount[1 if end else 0] if e.is_sweep else e.amount
                out[terms[_term(e)]] += a
            return out

        points: dict[int, tuple[np.ndarray, str]] = {}  # key index -> amounts at its time, ease
        for i, k in enumerate(self.keys):
            if k.edit is not None:
                points[i] = (amounts(k, end=False), k.ease)
        for i, k in enumerate(self.keys):
            if k.edit is None or not any(e.is_sweep for e in k.edit):
                continue
            if i + 1 == len(self.keys) and not self.loop:
                raise InputError(f"{k.where}: field 'edit': a sweep A..B runs over the segment to the next key, "
                                 "and this is the last key (add a key after it, or set loop = true)")
            j = (i + 1) % len(self.keys)
            end = amounts(k, end=True)
            nxt = self.keys[j]
            if nxt.edit is not None and j != i:
                if not np.allclose(points[j][0], end, rtol=0, atol=1e-9):
                    raise InputError(f"{nxt.where}: field 'edit': the sweep of {k.where} ends here, and this key "
                                     "sets other amounts (make them the sweep's end amounts, or drop one)")
            elif j == i:  # a loop with one key sweeping: there and back within the period is not a sweep's end
                raise InputError(f"{k.where}: field 'edit': a sweep needs a next key to end at")
            else:
                points[j] = (end, nxt.ease)
        order = sorted(points)
        return _Points(np.array([self.keys[i].time for i in order]), [points[i][1] for i in order],
                       [points[i][0] for i in order])

    # -- frames ----------------------------------------------------------------------------------
    def bind(self, runtime: Any, audio: Any = None, reaction: Any = None) -> "TimelineAnimation":
        """The frames of this timeline on a network: what `render()` takes, like an Animation; `audio`
        (AudioFeatures at this fps) and `reaction` (AudioReaction) make a sound track drive it."""
        return TimelineAnimation(self, runtime, audio, reaction)


def _term(edit: Edit) -> tuple:
    """An edit's direction and layers: amounts of the same term interpolate into each other."""
    return edit.direction.shape, edit.direction.tobytes(), edit.layers


def load_timeline(path: str | Path) -> KeyTimeline:
    """Read a timeline from .toml or .json; `w` and `edit` paths are relative to its folder."""
    path = Path(path)
    data = read_document(path, "timeline")
    try:
        return KeyTimeline.from_dict(data, path.parent, str(path))
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


# ------------------------------------------------------------------------------------------------
# Bound to a network: ws and transforms per frame (the interface of scene.Animation).


class TimelineAnimation:
    """A timeline on a runtime: inputs(frames) -> (ws [F, num_ws, w_dim], transforms [F, 3, 3] | None)."""

    grid = Grid(1, 1)  # one tile: render()'s batching reads grid.tiles

    def __init__(self, timeline: KeyTimeline, runtime: Any, audio: Any = None, reaction: Any = None):
        tl = self.timeline = timeline
        self.runtime, self.fps = runtime, tl.fps
        at = self._at
        self.size = canvas_size(tl.size, runtime)  # (W, H)
        self.period = tl.length
        if not runtime.is_stylegan3 and any(k.rotate is not None or k.translate is not None for k in tl.keys):
            k = next(k for k in tl.keys if k.rotate is not None or k.translate is not None)
            raise InputError(f"{at(k)}: {NO_TRANSFORM}: drop rotate/translate")
        num_ws, w_dim = runtime.num_ws, runtime.w_dim
        for k in tl.keys:
            if k.cutoff is not None and k.cutoff > num_ws:
                raise InputError(f"{at(k)}: field 'cutoff' must be at most num_ws = {num_ws}, got {k.cutoff}")
        self.latent = tl.latent_points()
        self.classes = self._class_points()  # values: one-hot labels [1, c_dim] | None
        self.mixes = tl.points("mix") or _Points(np.zeros(1), [DEFAULT_EASE], [()])
        self.psi = tl.points("psi")
        self.cutoff = tl.points("cutoff") or _Points(np.zeros(1), [DEFAULT_EASE], [num_ws])
        self.rotate, self.translate = tl.points("rotate"), tl.points("translate")
        device = runtime.w_avg.device
        # raw (psi 1) ws of every latent key and every mix seed under every class, float32 as mapped
        mix_seeds = sorted({m.seed for ms in self.mixes.values for m in ms})
        self.mix_index = {s: i for i, s in enumerate(mix_seeds)}
        seed_keys = [k.seed for k in self.latent.values if k.seed is not None]
        # one seed per mapping call, as `sg3rt image --seeds K`: a batched matmul may round differently
        mapped = [torch.cat([runtime.mapping(seed_z(s, runtime.z_dim)[None].astype(np.float32), c, 1.0)
                             for s in seed_keys + mix_seeds]) if seed_keys or mix_seeds else None
                  for c in self.classes.values]  # C x [S, num_ws, w_dim]
        keys_ws, s = [], 0
        for k in self.latent.values:
            if k.seed is not None:
                keys_ws.append(torch.stack([m[s] for m in mapped]))
                s += 1
            else:
                w = as_keyframes(k.w[None] if k.w.ndim == 2 else k.w, num_ws, w_dim, f"{at(k)}: w {k.w_label!r}")
                keys_ws.append(torch.from_numpy(w).to(device).expand(len(mapped), num_ws, w_dim))
        self.key_ws = torch.stack(keys_ws)  # [K, C, num_ws, w_dim] float32
        self.seeded = torch.tensor([k.seed is not None for k in self.latent.values], device=device)  # [K]
        self.mix_ws = torch.stack([torch.stack([m[len(seed_keys) + i] for m in mapped]) for i in range(len(mix_seeds))]) \
            if mix_seeds else torch.zeros((0, len(mapped), num_ws, w_dim), device=device)  # [S, C, num_ws, w_dim]
        # per mix point: each layer's source, -1 = the latent path, else a mix seed (later mixes win, as --mix)
        self.mix_sources = []
        mix_keys = [k for k in tl.keys if k.mix is not None]  # the keys of the mix points (none: the default point)
        for i, ms in enumerate(self.mixes.values):
            src = np.full(num_ws, -1)
            for m in ms:
                try:
                    start, stop = layer_range(m.layers, num_ws)
                except InputError as e:
                    raise InputError(f"{at(mix_keys[i])}: field 'mix': {e}") from None
                src[start:stop] = self.mix_index[m.seed]
            self.mix_sources.append(src)
        for k in tl.keys:  # an edit that does not fit the network (width, layers): named where the file sets it
            for e in k.edit or ():
                problem = e.problem(num_ws, w_dim)
                if problem is not None:
                    raise InputError(f"{at(k)}: field 'edit' {e.label!r}: {problem}")
        self.edit_offsets = [torch.from_numpy(e.offset(num_ws, w_dim)).to(device) for e in tl.edit_terms]
        self.w_avg = runtime.w_avg.to(torch.float32)
        self.reactive = None  # audio.ReactiveFrames | None
        self.times: np.ndarray | None = None  # [num_frames] audio-warped track times (seconds) | None = frame_times
        if reaction is not None and audio is None:
            raise InputError("an audio reaction needs the audio's features (audio=AudioFeatures.from_file(...))")
        if audio is not None:
            self._react(audio, reaction)

    def _react(self, audio: Any, reaction: Any) -> None:
        """A sound track drives the timeline: the walk speed warps the track time (same first and last time,
        every key still passed, but off its nominal frame when speed > 0), pulse / loudness / pitch scale the
        ws after the timeline's own, and beat rotation / translation gain compose with its transforms."""
        from .audio import AudioReaction, ReactiveFrames
        from .paths import Timeline

        tl, runtime = self.timeline, self.runtime
        reaction = reaction or AudioReaction()
        if audio.fps != tl.fps:
            raise InputError(f"the audio features were computed at {audio.fps:g} fps, the timeline runs at {tl.fps:g}")
        if reaction.loop_bars is not None:
            raise InputError("--loop-bars loops a seed path: a timeline's keys set its timing (drop --loop-bars)")
        if reaction.moves and not runtime.is_stylegan3:
            raise InputError(f"--react rotate/translate: {NO_TRANSFORM}")
        if reaction.translate != 0 and all(k.translate is None for k in tl.keys):  # else it would change nothing
            where = f"{tl.source}: " if tl.source else ""
            raise InputError(f"{where}--react translate scales the keys' translate, and no key sets 'translate' "
                             f"(add translate = [x, y] to a key)")
        n, keys = tl.num_frames, len(tl.keys)
        even = Timeline(n, max(1, keys if tl.loop else keys - 1), tl.loop)  # the pace the warp is measured against
        pitch_ws = None
        if reaction.pitch > 0:  # the 12 pitch seeds, mapped as a key (timeline psi, first key's class)
            first = next((k.seed for k in tl.keys if k.seed is not None), None)
            c = self.classes.values[0]
            pitch_ws = torch.cat([runtime.mapping(seed_z(s, runtime.z_dim)[None].astype(np.float32), c, tl.psi)
                                  for s in reaction.pitch_seed_list(first)])  # [12, num_ws, w_dim]
        self.reactive = ReactiveFrames(runtime, reaction, audio, even, pitch_ws)
        if reaction.speed > 0:  # speed 0: the plain frame times, bit for bit
            end = tl.length if tl.loop else float(tl.frame_times(np.array([n - 1]))[0])
            self.times = self.reactive.controls.phase * end  # [n] from 0 to the plain last time (loop: the period)

    def _at(self, key: Key) -> str:
        """Where a key is, for an error found only now the network is known: "show.toml: key 3 (time 4.0)",
        as load_timeline names the errors it finds."""
        return f"{self.timeline.source}: {key.where}" if self.timeline.source else key.where

    def frame_times(self, frames: np.ndarray) -> np.ndarray:  # [F] seconds on the timeline's track
        """Where each frame sits on the keys' time axis: the timeline's own times, or the audio-warped ones."""
        if self.times is None:
            return self.timeline.frame_times(frames)
        return self.times[np.asarray(frames, dtype=np.int64)]

    def _class_points(self) -> _Points:
        pts = self.timeline.points("class_idx")
        c_dim = self.runtime.c_dim
        if pts is None:
            if c_dim > 0:
                where = f"{self.timeline.source}: " if self.timeline.source else ""
                raise InputError(f"{where}this network is conditional ({c_dim} classes): "
                                 f"set 'class' (0..{c_dim - 1}) on a key")
            return _Points(np.zeros(1), [DEFAULT_EASE], [None])
        labels = []
        for k in (k for k in self.timeline.keys if k.class_idx is not None):
            if c_dim == 0:
                raise InputError(f"{self._at(k)}: field 'class' is set, but this network is unconditional "
                                 "(it has no classes): drop it")
            if not k.class_idx < c_dim:  # (>= 0: parsing checked)
                raise InputError(f"{self._at(k)}: field 'class' must be 0..{c_dim - 1} (this network has {c_dim} "
                                 f"classes), got {k.class_idx}")
            labels.append(class_labels(c_dim, k.class_idx, 1))
        return _Points(pts.times, pts.eases, labels)

    # -- the Animation interface -----------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self.timeline.num_frames

    @property
    def frame_size(self) -> tuple[int, int]:  # (H, W)
        return self.size[1], self.size[0]

    def compose(self, images: np.ndarray) -> np.ndarray:
        return images

    def _weights(self, pts: _Points, t: np.ndarray) -> np.ndarray:
        return pts.weights(t, self.timeline.loop, self.period)

    def ws(self, frames: np.ndarray) -> torch.Tensor:  # [F, num_ws, w_dim] float32 on the runtime's device
        """Per frame: each latent key's w (seeds truncated and mixed, as still_batches does), blended by the
        latent, class and mix tracks' weights, then the edits; a key's own frame is bit for bit its image's ws.
        With audio, the reaction's pitch blend and pulse / loudness scale come last (none when their amounts are 0)."""
        t = self.frame_times(frames)
        lat = self._weights(self.latent, t)  # [F, K]
        used = np.flatnonzero(np.any(lat != 0, axis=0))  # only the keys this batch touches
        device = self.key_ws.device
        lat = torch.from_numpy(lat[:, used]).to(device)  # [F, K'] float64
        cls = torch.from_numpy(self._weights(self.classes, t)).to(device)  # [F, C]
        mix_np = self._weights(self.mixes, t)  # [F, M]
        mix = torch.from_numpy(mix_np).to(device)
        truncate = self._truncation(t)
        keys = self.key_ws[used][None].expand(len(t), *self.key_ws[used].shape)  # [F, K', C, num_ws, w_dim]
        path = torch.where(self.seeded[used].reshape(1, -1, 1, 1, 1), truncate(keys), keys)  # a w key is used as it is
        path = torch.einsum("fk,fc,fkcld->fld", lat, cls, path.double())  # [F, num_ws, w_dim]
        touched = np.flatnonzero(np.any(mix_np != 0, axis=0))  # the mix points this batch touches
        seeds = sorted({int(i) for m in touched for i in self.mix_sources[m] if i >= 0})
        if seeds:  # the mix seeds' ws, truncated like the keys' (still_batches mixes truncated ws)
            mix_ws = truncate(self.mix_ws[seeds][None].expand(len(t), len(seeds), *self.mix_ws.shape[1:]))
            mix_ws = torch.einsum("fc,fscld->fsld", cls, mix_ws.double())  # [F, S', num_ws, w_dim]
        raw = torch.zeros_like(path)  # [F, num_ws, w_dim]
        for m in touched:
            src = self.mix_sources[m]
            mixed = path.clone() if np.any(src >= 0) else path
            for layer in np.flatnonzero(src >= 0):  # (exact on a key: its weights are exactly 1 and 0)
                mixed[:, layer] = mix_ws[:, seeds.index(src[layer]), layer]
            raw += mix[:, m, None, None] * mixed
        ws = raw.to(torch.float32)
        if self.edit_offsets:
            pts = self.timeline.edit_points
            amounts = self._weights(pts, t) @ np.stack(pts.values)  # [F, T]
            for e, offset in enumerate(self.edit_offsets):  # as edits.BoundEdits.apply, term by term
                shift = torch.from_numpy(amounts[:, e]).to(device, torch.float64)[:, None, None] * offset[None]
                ws = (ws.double() + shift).to(torch.float32)
        r = None if self.reactive is None else self.reactive.reaction
        if r is not None and (r.pulse or r.loudness or r.pitch):
            ws = self.reactive.ws(ws[:, None], np.asarray(frames, dtype=np.int64))[:, 0]
        return ws

    def _truncation(self, t: np.ndarray):
        """x [F, ..., num_ws, w_dim] -> truncated per frame: psi on the layers the (blended) cutoff covers, 1
        elsewhere, in float32 as networks.mapping.truncate (which also leaves psi 1 untouched)."""
        num_ws = self.runtime.num_ws
        psi = (np.full(len(t), self.timeline.psi) if self.psi is None
               else self._weights(self.psi, t) @ np.array(self.psi.values, dtype=np.float64))  # [F]
        covered = np.array([np.arange(num_ws) < c for c in self.cutoff.values])  # [P, num_ws]
        layer_psi = np.einsum("fp,fpl->fl", self._weights(self.cutoff, t),
                              np.where(covered[None], psi[:, None, None], 1.0))  # [F, num_ws]
        device = self.key_ws.device
        lp = torch.from_numpy(layer_psi.astype(np.float32)).to(device)
        keep = torch.from_numpy(psi == 1.0).to(device)
        w_avg = self.w_avg.to(device)

        def truncate(x: torch.Tensor) -> torch.Tensor:
            shape = (len(t),) + (1,) * (x.ndim - 3)
            out = w_avg + (x - w_avg) * lp.reshape(*shape, num_ws, 1)
            return torch.where(keep.reshape(*shape, 1, 1), x, out)

        return truncate

    def transforms(self, frames: np.ndarray) -> torch.Tensor | None:  # [F, 3, 3] float32 | None
        moves = self.reactive is not None and self.reactive.reaction.moves
        if self.rotate is None and self.translate is None and not moves:
            return None
        t = self.frame_times(frames)
        angles = (np.zeros(len(t)) if self.rotate is None
                  else self._weights(self.rotate, t) @ np.array(self.rotate.values, dtype=np.float64))
        shift = (np.zeros((len(t), 2)) if self.translate is None
                 else self._weights(self.translate, t) @ np.array(self.translate.values, dtype=np.float64))
        if moves:  # the beat's extra turn adds to the keys' angle; its gain scales the keys' translation
            idx = np.asarray(frames, dtype=np.int64)
            angles = angles + self.reactive.controls.rotation[idx]
            shift = shift * self.reactive.controls.translate_gain[idx, None]
        return input_transform(torch.from_numpy(angles), torch.from_numpy(shift)).reshape(-1, 3, 3)

    def inputs(self, frames: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """frames [F] -> ws [F, num_ws, w_dim] and transforms [F, 3, 3] or None (no key moves the picture)."""
        frames = np.asarray(frames, dtype=np.int64)
        return self.ws(frames), self.transforms(frames)
