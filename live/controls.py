"""Controls of a live session: one immutable snapshot, replaced whole; every change validated against a schema.

A page, an OSC controller or a library caller sends a partial update ({"psi": 0.7}); `apply` checks
every key (known, right type, in range for this network) before anything changes, so a bad message
changes nothing and yields one line that names the problem.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..animate.motion import TRANSLATIONS
from ..animate.seeds import MAX_SEED
from ..errors import InputError

WALKS = ("off", "cubic", "noise")  # still image of `seed` | looping Catmull-Rom through `seeds` | noise loop of `seed`
TRANSLATE_ANIMS = ("off",) + TRANSLATIONS  # off | line | circle | figure8
MAX_WALK_SEEDS = 256  # seeds in one walk list
MAX_FPS = 240.0  # highest target frames/s of the render loop
EDIT_MAX = 20.0  # largest |amount| of an editing-direction slider (SeFa/PCA directions are unit vectors in W)


class ControlError(InputError):
    """A control update was refused (unknown key, wrong type, out of range); nothing changed."""


@dataclass(frozen=True)
class NetworkLimits:
    """What the network allows: layer count for cutoff/mixing, classes, and whether it can move (StyleGAN3)."""

    num_ws: int
    c_dim: int
    is_stylegan3: bool
    edits: int = 0  # editing directions loaded at start (sg3rt live --edit): one amount slider each

    @classmethod
    def of(cls, runtime: Any, edits: int = 0) -> "NetworkLimits":
        return cls(runtime.num_ws, runtime.c_dim, runtime.is_stylegan3, edits)


@dataclass(frozen=True)
class Controls:
    """Everything the page can set; the render loop reads one snapshot per frame."""

    seed: int = 0  # the still image (walk "off") and the noise loop's seed
    walk: str = "cubic"  # off | cubic | noise
    seeds: tuple[int, ...] = tuple(range(8))  # keyframes of the cubic walk (looping)
    speed: float = 0.5  # walk speed: seed-to-seed transitions per second (a noise loop lasts NOISE_LOOP_TRANSITIONS)
    paused: bool = False  # stops the walk and the motion clocks
    psi: float = 1.0  # truncation psi
    cutoff: int | None = None  # truncate only the first `cutoff` layers (None: all)
    class_idx: int | None = None  # class of a conditional network
    rotate: float = 0.0  # rotation angle, degrees (StyleGAN3)
    rotate_speed: float = 0.0  # degrees per second (StyleGAN3)
    tx: float = 0.0  # translation x, image widths (StyleGAN3)
    ty: float = 0.0  # translation y, image widths (StyleGAN3)
    translate_anim: str = "off"  # off | line | circle | figure8
    translate_amplitude: float = 0.1  # radius / half-width of the animation, image widths
    translate_speed: float = 0.25  # animation cycles per second
    stabilize: bool = False  # freeze the input layer's affine at w_avg: latent walks stop wobbling the picture
    mix_seed: int | None = None  # style mixing: layers mix_from..mix_to come from this seed (None: no mixing)
    mix_from: int = 0  # first mixed layer (inclusive)
    mix_to: int = 3  # last mixed layer (inclusive)
    edits: tuple[float, ...] = ()  # amount along each loaded editing direction (w += amount * direction)
    fps: float = 30.0  # target frames/s of the render loop
    quality: int = 85  # JPEG quality of the stream

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["seeds"] = list(self.seeds)
        d["edits"] = list(self.edits)
        d["class"] = d.pop("class_idx")
        return d


# ------------------------------------------------------------------------------------------------
# The schema: one checker per key. A checker gets the value and the limits and returns the clean value.

_INT_RE = re.compile(r"^\d+$")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer beyond float's range (JSON allows any number of digits)
        return False


def _int(lo: int, hi: int | str, nullable: bool = False):
    def check(name: str, v: Any, lim: NetworkLimits) -> int | None:
        top = _limit(hi, lim)
        if v is None and nullable:
            return None
        if not _is_int(v):
            raise ControlError(f"{name} must be an integer{' or null' if nullable else ''}, got {_show(v)}")
        if not lo <= v <= top:
            raise ControlError(f"{name} must be between {lo} and {top}, got {v}")
        return v
    check.bounds = (lo, hi)  # read by numeric_range (MIDI maps a fader onto it)
    return check


def _float(lo: float, hi: float):
    def check(name: str, v: Any, lim: NetworkLimits) -> float:
        if not _is_number(v):
            raise ControlError(f"{name} must be a finite number, got {_show(v)}")
        if not lo <= v <= hi:
            raise ControlError(f"{name} must be between {lo:g} and {hi:g}, got {v:g}")
        return float(v)
    check.bounds = (lo, hi)
    return check


def _bool(name: str, v: Any, lim: NetworkLimits) -> bool:
    if not isinstance(v, bool):
        raise ControlError(f"{name} must be true or false, got {_show(v)}")
    return v


def _choice(options: tuple[str, ...]):
    def check(name: str, v: Any, lim: NetworkLimits) -> str:
        if v not in options or not isinstance(v, str):
            raise ControlError(f"{name} must be one of {', '.join(options)}, got {_show(v)}")
        return v
    return check


def _seed_list(name: str, v: Any, lim: NetworkLimits) -> tuple[int, ...]:
    if not isinstance(v, list) or not 1 <= len(v) <= MAX_WALK_SEEDS:
        raise ControlError(f"{name} must be a list of 1 to {MAX_WALK_SEEDS} seeds, got {_show(v)}")
    for s in v:
        if not _is_int(s) or not 0 <= s <= MAX_SEED:
            raise ControlError(f"{name}: every seed must be an integer between 0 and {MAX_SEED}, got {_show(s)}")
    return tuple(v)


def _class(name: str, v: Any, lim: NetworkLimits) -> int | None:
    if lim.c_dim == 0:
        if v is not None:
            raise ControlError(f"{name}: this network is unconditional (it has no classes)")
        return None
    if not _is_int(v) or not 0 <= v < lim.c_dim:
        raise ControlError(f"{name} must be an integer between 0 and {lim.c_dim - 1}, got {_show(v)}")
    return v


def _edit_amounts(name: str, v: Any, lim: NetworkLimits) -> tuple[float, ...]:
    """One amount per loaded direction, each within +-EDIT_MAX."""
    if not isinstance(v, list) or len(v) != lim.edits:
        raise ControlError(f"{name} takes a list of {lim.edits} amounts (one per --edit direction), got {_show(v)}")
    for a in v:
        if not _is_number(a) or not -EDIT_MAX <= a <= EDIT_MAX:
            raise ControlError(f"{name}: each amount must be a number between {-EDIT_MAX:g} and {EDIT_MAX:g}, got {_show(a)}")
    return tuple(float(a) for a in v)


def _limit(hi: int | str, lim: NetworkLimits) -> int:
    return {"num_ws": lim.num_ws, "last_ws": lim.num_ws - 1}[hi] if isinstance(hi, str) else hi


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


SCHEMA = {  # wire name -> (field name, checker)
    "seed": ("seed", _int(0, MAX_SEED)),
    "walk": ("walk", _choice(WALKS)),
    "seeds": ("seeds", _seed_list),
    "speed": ("speed", _float(0.0, 10.0)),
    "paused": ("paused", _bool),
    "psi": ("psi", _float(-2.0, 2.0)),
    "cutoff": ("cutoff", _int(1, "num_ws", nullable=True)),
    "class": ("class_idx", _class),
    "rotate": ("rotate", _float(-360.0, 360.0)),
    "rotate_speed": ("rotate_speed", _float(-720.0, 720.0)),
    "tx": ("tx", _float(-1.0, 1.0)),
    "ty": ("ty", _float(-1.0, 1.0)),
    "translate_anim": ("translate_anim", _choice(TRANSLATE_ANIMS)),
    "translate_amplitude": ("translate_amplitude", _float(0.0, 1.0)),
    "translate_speed": ("translate_speed", _float(0.0, 10.0)),
    "stabilize": ("stabilize", _bool),
    "mix_seed": ("mix_seed", _int(0, MAX_SEED, nullable=True)),
    "mix_from": ("mix_from", _int(0, "last_ws")),
    "mix_to": ("mix_to", _int(0, "last_ws")),
    "edits": ("edits", _edit_amounts),
    "fps": ("fps", _float(1.0, MAX_FPS)),
    "quality": ("quality", _int(10, 100)),
}
MOTION_KEYS = ("rotate", "rotate_speed", "tx", "ty", "translate_anim", "stabilize")  # StyleGAN3 only
assert {f for f, _ in SCHEMA.values()} == {f.name for f in fields(Controls)}


def apply(controls: Controls, update: Any, limits: NetworkLimits) -> Controls:
    """A new snapshot with `update` ({wire name: value}) applied, or ControlError and nothing changed."""
    if not isinstance(update, dict) or not update:
        raise ControlError(f"a control update must be a non-empty object of name: value, got {_show(update)}")
    unknown = sorted(str(k) for k in update if k not in SCHEMA)
    if unknown:
        raise ControlError(f"unknown control {unknown[0]!r} (known: {', '.join(SCHEMA)})")
    changes = {}
    for key, value in update.items():
        name, check = SCHEMA[key]
        if key in MOTION_KEYS and not limits.is_stylegan3 and value not in (0, 0.0, "off", False):
            raise ControlError(f"{key} needs a StyleGAN3 network (this one is StyleGAN2, which has no input transform)")
        changes[name] = check(key, value, limits)
    new = replace(controls, **changes)
    if new.mix_from > new.mix_to:
        raise ControlError(f"mix_from ({new.mix_from}) must not be after mix_to ({new.mix_to})")
    return new


def numeric_range(key: str, limits: NetworkLimits) -> tuple[float, float] | None:
    """(lo, hi) that `apply` accepts for a numeric control on this network; None for a switch, choice or list.

    "edits" gives the range of each amount; "class" is None on an unconditional network."""
    if key == "edits":
        return (-EDIT_MAX, EDIT_MAX)
    if key == "class":
        return (0, limits.c_dim - 1) if limits.c_dim > 0 else None
    bounds = getattr(SCHEMA[key][1], "bounds", None)
    return None if bounds is None else (bounds[0], _limit(bounds[1], limits))


def initial_controls(limits: NetworkLimits, **overrides: Any) -> Controls:
    """The defaults, valid for this network (a conditional one starts on class 0), with `overrides` applied."""
    base = Controls(class_idx=0 if limits.c_dim > 0 else None, mix_to=min(3, limits.num_ws - 1),
                    edits=(0.0,) * limits.edits)
    return apply(base, overrides, limits) if overrides else base


def _field_kinds() -> dict[str, str]:
    """Controls field -> bool | int | int|none | float | other, from its annotation."""
    names = {"bool": "bool", "int": "int", "int | None": "int|none", "float": "float"}
    return {f.name: names.get(str(f.type), "other") for f in fields(Controls)}


_FIELD_KINDS = _field_kinds()


def field_kind(key: str) -> str:
    """A control's value kind: bool | int | int|none | float | other (lists and choices)."""
    return _FIELD_KINDS.get(SCHEMA[key][0], "other")


def coerce_osc(key: str, args: tuple) -> Any:
    """OSC arguments -> the JSON-like value the schema expects (controllers send 0.0/1.0 for toggles, floats for ints).

    The result still goes through `apply`: coercion only translates, it never makes a bad value valid.
    """
    if key == "seeds":
        return [_coerce_one("int", a) for a in args]
    if key == "edits":
        return list(args)
    kind = _FIELD_KINDS.get(SCHEMA[key][0]) if key in SCHEMA else None
    values = [_coerce_one(kind, a) for a in args]
    return values[0] if len(values) == 1 else values


def _coerce_one(kind: str | None, v: Any) -> Any:
    if kind == "bool" and _is_number(v) and v in (0, 1):
        return bool(v)
    if kind in ("int", "int|none") and isinstance(v, float) and v.is_integer():
        v = int(v)
    if kind == "int" and isinstance(v, str) and _INT_RE.match(v):
        return int(v)
    if kind == "int|none" and _is_int(v) and v < 0:
        return None  # a controller cannot send null: a negative number clears the value
    return v


__all__ = ["Controls", "ControlError", "NetworkLimits", "SCHEMA", "WALKS", "TRANSLATE_ANIMS", "apply",
           "coerce_osc", "field_kind", "initial_controls", "numeric_range"]
