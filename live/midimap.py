"""MIDI maps: which CC moves which control (range, curve, encoder) and which note or button fires what.

Pure data, no mido: a map is read from TOML or JSON (`MidiMap.load`), checked entry by entry with one
line naming the file, the entry and the key, then bound to a network (`MidiMap.bind`), which fills in
each control's validated range and refuses what the network lacks. `fader_value` turns a CC value into
a control value: 0..127 cover the range with 64 exactly in the middle (a centred knob gives 0 on -1..1);
a 14-bit CC (MSB on CC n, LSB on CC n+32) or a pitch bend covers it with 0..16383, 8192 in the middle.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..fileio import read_document
from .controls import (MOTION_KEYS, SCHEMA, TRANSLATE_ANIMS, WALKS, ControlError, NetworkLimits, field_kind,
                       numeric_range)
from .protocol import ACTIONS

CC_MAX = 127  # largest 7-bit CC value
CC_MIDDLE = 64  # the value of a centred knob: it lands exactly on the middle of a range
FINE_MAX = 16383  # largest 14-bit value: a CC pair (MSB << 7 | LSB) or a pitch bend + 8192
LSB_OFFSET = 32  # MIDI 1.0: the fine half (LSB) of CC n (0..31) arrives on CC n + 32
PITCH_CENTRE = 8192  # mido's pitch (-8192..8191) + this = 0..16383, the wheel at rest on the middle
BITS = (7, 14)  # a CC fader's resolution: one CC, or an MSB/LSB pair
TAKEOVERS = ("pickup", "jump")  # pickup: a knob moves the value only once it reaches it; jump: at once
PICKUP_TOLERANCE = 3 / 128  # a knob this close to the value (fraction of the fader's range) picks it up
SWITCH_ON = 64  # a CC at or above this turns a switch on / presses a button (the MIDI convention for pedals)
CHANNELS = 16  # MIDI channels, numbered 1..16 in map files (mido counts 0..15)
EXP_K = 4.0  # steepness of the exp/log curves: exp's first step is ~1/13 of a linear step, log's last the same
CURVES = ("linear", "exp", "log")  # or a positive number: a power curve t**p
TRIGGER_ACTIONS = ACTIONS + ("record_toggle",)  # random, next, prev, record, stop, record_toggle
SWITCHES = tuple(k for k in SCHEMA if field_kind(k) == "bool")  # paused, stabilize
CHOICES = {"walk": WALKS, "translate_anim": TRANSLATE_ANIMS}  # CC zones: 0..127 split evenly between the options
EDIT_PREFIX = "edits."  # "edits.K": the K-th --edit slider (from 0)
DEFAULT_SOURCE = "the default map"  # MidiMap.source of the built-in map (a file's is its path)


# ------------------------------------------------------------------------------------------------
# Bindings and CC values.


@dataclass(frozen=True)
class Trigger:
    """What a pad or button does: exactly one of an action, a switch toggled, or controls set."""

    action: str | None = None  # random | next | prev | record | stop | record_toggle
    toggle: str | None = None  # a switch control: paused | stabilize
    set: dict[str, Any] = field(default_factory=dict)  # controls set at once, e.g. {"walk": "noise"}

    def describe(self) -> str:
        if self.action:
            return self.action
        if self.toggle:
            return f"toggle {self.toggle}"
        return ", ".join(f"{k} = {json.dumps(v)}" for k, v in self.set.items())


@dataclass(frozen=True)
class Fader:
    """A CC or a pitch bend bound to a control: a fader or knob (absolute) or an endless encoder (relative)."""

    number: int  # CC number, 0..127 (the MSB's, 0..31, for a 14-bit CC; 0 and unused for a pitch bend)
    control: str  # a control name, or "edits.K"
    channel: int | None = None  # 1..16; None: any channel
    range: tuple[float, float] | None = None  # (value at 0, value at 127 / 16383); None: the control's whole range
    curve: str | float = "linear"  # linear | exp (fine at the start of the range) | log (fine at its end) | power p
    relative: bool = False  # an encoder sending steps: 1..63 up, 65..127 down (two's complement), 1/127 of the range
    #                         each (at least 1 for an integer control)
    where: str = ""  # "cc[2]": names the entry in errors
    bits: int = 7  # 7: one CC; 14: MSB on CC number, LSB on CC number + 32 (a pitch bend is always 14)
    takeover: str = "pickup"  # pickup | jump: what an absolute fader does when the value moved elsewhere
    source: str = "cc"  # cc | pitchbend (one wheel per channel)

    @property
    def key(self) -> str:
        """The schema key this fader sets ("edits" for an edit slider)."""
        return "edits" if self.control.startswith(EDIT_PREFIX) else self.control

    @property
    def picks_up(self) -> bool:
        """Soft takeover applies: an absolute fader on a number (switches, choices and encoders never wait)."""
        return self.takeover == "pickup" and not self.relative and _kind(self.control) in ("int", "float")

    def describe(self) -> str:
        if self.source == "pitchbend":
            return f"pitch bend {self.control}"
        return f"CC {self.number}{'/' + str(self.number + LSB_OFFSET) if self.bits == 14 else ''} {self.control}"


@dataclass(frozen=True)
class Pad:
    """A note (any velocity above 0) or a CC button (its value reaching 64) that fires a trigger."""

    source: str  # note | cc
    number: int  # note or CC number, 0..127
    trigger: Trigger
    channel: int | None = None  # 1..16; None: any channel
    where: str = ""


def _kind(control: str) -> str:
    """switch | choice | int | float | list: how a CC value becomes this control's value."""
    if control.startswith(EDIT_PREFIX):
        return "float"
    kind = field_kind(control)
    if kind == "bool":
        return "switch"
    if control in CHOICES:
        return "choice"
    return {"int": "int", "int|none": "int", "float": "float"}.get(kind, "list")


def cc_position(value: int, top: int = CC_MAX) -> float:
    """0..top -> 0..1 with (top + 1) / 2 exactly at 0.5 (each half linear): 64 of 0..127, 8192 of 0..16383.

    A 14-bit value lies within half a step (3e-5) of (MSB << 7 | LSB) / 16383, and its centre is exact."""
    middle = (top + 1) // 2
    if value <= middle:
        return value / (2 * middle)
    return 0.5 + (value - middle) / (2 * (top - middle))


def shape(t: float, curve: str | float) -> float:
    """A curve on 0..1 that keeps both ends: linear, exp (slow start), log (its inverse) or t**power."""
    if curve == "linear":
        return t
    if curve == "exp":
        return math.expm1(EXP_K * t) / math.expm1(EXP_K)
    if curve == "log":
        return math.log1p(t * math.expm1(EXP_K)) / EXP_K
    return t ** float(curve)


def relative_steps(value: int) -> int:
    """An endless encoder's CC value -> signed steps (two's complement: 1 = +1, 127 = -1, 64 = -64)."""
    return value if value < CC_MIDDLE else value - (CC_MAX + 1)


def fader_value(fader: Fader, value: int, current: Any = None, top: int = CC_MAX) -> Any:
    """A CC value (0..top: 127, or 16383 for a 14-bit pair or a pitch bend) -> the control's value;
    `current` is the control's value now (relative encoders)."""
    assert top in (CC_MAX, FINE_MAX) and 0 <= value <= top, (value, top)
    kind = _kind(fader.control)
    if kind == "switch":
        return value >= (top + 1) // 2  # 64 of 127 (SWITCH_ON), 8192 of 16383
    if kind == "choice":
        options = CHOICES[fader.control]
        return options[min(value * len(options) // (top + 1), len(options) - 1)]
    assert fader.range is not None, "bind the map to a network first (MidiMap.bind)"
    lo, hi = fader.range
    if fader.relative:
        assert top == CC_MAX, "a relative encoder sends 7-bit steps"
        start = lo if current is None else current  # an unset optional value (cutoff, mix_seed) starts at the range's start
        step = (hi - lo) / CC_MAX
        if kind == "int":  # a tick always moves an integer (cutoff 1..16 would round a 1/127 step away)
            step = math.copysign(max(abs(step), 1.0), step)
        x = start + relative_steps(value) * step
        x = min(max(x, min(lo, hi)), max(lo, hi))
    else:
        x = lo + (hi - lo) * shape(cc_position(value, top), fader.curve)
    return int(round(x)) if kind == "int" else float(x)


# -- reading a map file --------------------------------------------------------------------------

FADER_KEYS = ("number", "control", "channel", "range", "curve", "mode", "bits", "takeover")
FADER_ONLY = ("range", "curve", "mode", "bits", "takeover")  # keys a button entry must not have
PITCHBEND_KEYS = ("control", "channel", "range", "curve", "takeover")
TRIGGER_KEYS = ("action", "toggle", "set")
NOTE_KEYS = ("number", "channel") + TRIGGER_KEYS


class _Entry:
    """One [[cc]] or [[note]] table being read: every problem names the entry and the key."""

    def __init__(self, data: Any, where: str, allowed: tuple[str, ...]):
        if not isinstance(data, dict):
            raise InputError(f"{where}: must be a table of key = value, got {_show(data)}")
        self.data, self.where = data, where
        unknown = sorted(k for k in data if k not in allowed)
        if unknown:
            raise InputError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(allowed)})")

    def fail(self, key: str, problem: str) -> InputError:
        return InputError(f"{self.where}.{key}: {problem}")

    def integer(self, key: str, lo: int, hi: int, required: bool = True) -> int | None:
        v = self.data.get(key)
        if v is None and not required:
            return None
        if not (isinstance(v, int) and not isinstance(v, bool)) or not lo <= v <= hi:
            raise self.fail(key, f"must be an integer {lo}..{hi}, got {_show(v)}")
        return v

    def channel(self) -> int | None:
        return self.integer("channel", 1, CHANNELS, required=False)

    def trigger(self) -> Trigger:
        given = [k for k in TRIGGER_KEYS if k in self.data]
        if len(given) != 1:
            raise InputError(f"{self.where}: give exactly one of action, toggle or set"
                             + (f" (got {', '.join(given)})" if given else ""))
        (key,), v = given, self.data[given[0]]
        if key == "action":
            if v not in TRIGGER_ACTIONS:
                raise self.fail(key, f"must be one of {', '.join(TRIGGER_ACTIONS)}, got {_show(v)}")
            return Trigger(action=v)
        if key == "toggle":
            if v not in SWITCHES:
                raise self.fail(key, f"toggles a switch: {', '.join(SWITCHES)}, got {_show(v)}")
            return Trigger(toggle=v)
        if not isinstance(v, dict) or not v:
            raise self.fail(key, f"must be a table of control = value, got {_show(v)}")
        unknown = sorted(str(k) for k in v if k not in SCHEMA)
        if unknown:
            raise self.fail(f"{key}.{unknown[0]}", "unknown control")
        return Trigger(set=dict(v))


def _fader(e: _Entry, number: int, channel: int | None, source: str = "cc") -> Fader:
    if "control" not in e.data:
        raise e.fail("control", "missing: the control this fader moves")
    control = e.data["control"]
    if not isinstance(control, str) or not (control in SCHEMA or edit_index(control) is not None):
        raise e.fail("control", f"unknown control {_show(control)} (known: {', '.join(_fader_controls())})")
    kind = _kind(control)
    if kind == "list":
        raise e.fail("control", f"{control} takes a list: set it from a note with set = {{ {control} = [...] }}")
    numeric = kind in ("int", "float")
    for key in FADER_ONLY:
        if key in e.data and not numeric:
            raise e.fail(key, f"{control} is a {kind}: it takes no {key} (CC values split between its values)")
    rng = e.data.get("range")
    if rng is not None:
        if (not isinstance(rng, list) or len(rng) != 2
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in rng)
                or rng[0] == rng[1]):
            raise e.fail("range", f"must be [value at 0, value at 127], two different numbers, got {_show(rng)}")
        rng = (rng[0], rng[1])
    curve = e.data.get("curve", "linear")
    if not (curve in CURVES or (isinstance(curve, (int, float)) and not isinstance(curve, bool)
                                and math.isfinite(curve) and curve > 0)):
        raise e.fail("curve", f"must be one of {', '.join(CURVES)} or a positive power, got {_show(curve)}")
    mode = e.data.get("mode", "absolute")
    if mode not in ("absolute", "relative"):
        raise e.fail("mode", f"must be absolute or relative, got {_show(mode)}")
    if mode == "relative" and curve != "linear":
        raise e.fail("curve", "a relative encoder moves in even steps: it takes no curve")
    bits = e.data.get("bits", 7)
    if not (isinstance(bits, int) and not isinstance(bits, bool)) or bits not in BITS:
        raise e.fail("bits", f"must be 7 or 14, got {_show(bits)}")
    if bits == 14 and mode == "relative":
        raise e.fail("bits", "a relative encoder sends 7-bit steps: it takes no bits = 14")
    if bits == 14 and number >= LSB_OFFSET:
        raise e.fail("bits", f"a 14-bit CC is CC 0..{LSB_OFFSET - 1} (its LSB on CC n+{LSB_OFFSET}), got CC {number}")
    takeover = e.data.get("takeover", "pickup")
    if takeover not in TAKEOVERS:
        raise e.fail("takeover", f"must be one of {', '.join(TAKEOVERS)}, got {_show(takeover)}")
    if "takeover" in e.data and mode == "relative":
        raise e.fail("takeover", "a relative encoder steps from the value as it is: it takes no takeover")
    if source == "pitchbend":
        bits = 14
    return Fader(number, control, channel, rng, curve, mode == "relative", e.where, bits, takeover, source)


def _cc_numbers(f: Fader) -> tuple[int, ...]:
    """The CC numbers a CC fader listens to: its own, and its LSB's for a 14-bit one."""
    return (f.number, f.number + LSB_OFFSET) if f.bits == 14 else (f.number,)


def _check_fine_halves(faders: list[Fader], pads: list[Pad]) -> None:
    """No entry may bind the CC that carries a 14-bit fader's LSB (it would move on every fine step)."""
    for f in faders:
        if f.source != "cc" or f.bits != 14:
            continue
        lsb = f.number + LSB_OFFSET
        for other in [g for g in faders if g.source == "cc"] + [p for p in pads if p.source == "cc"]:
            if other.number == lsb and (None in (other.channel, f.channel) or other.channel == f.channel):
                raise InputError(f"{other.where}.number: CC {lsb} is the LSB of {f.where}'s 14-bit CC {f.number}")


def edit_index(control: str) -> int | None:
    """K of "edits.K" (the K-th --edit slider), else None."""
    k = control[len(EDIT_PREFIX):]
    if control.startswith(EDIT_PREFIX) and k.isascii() and k.isdigit():
        return int(k)
    return None


def _fader_controls() -> list[str]:
    return [k for k in SCHEMA if _kind(k) != "list"] + ["edits.K"]


def _show(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, (str, int, float, list, dict, bool, type(None))) else repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


# -- the map --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MidiMap:
    """Faders (CC -> control) and pads (note or CC button -> trigger); `bind` checks them against a network."""

    faders: tuple[Fader, ...]
    pads: tuple[Pad, ...]
    source: str = DEFAULT_SOURCE  # the file it came from, named in every error

    @classmethod
    def default(cls) -> "MidiMap":
        """A generic controller: CC 1-8 faders/knobs, CC 9-16 --edit sliders, notes 36-43 pads (README table)."""
        faders = tuple(Fader(n, control, range=rng, curve=curve, where=f"cc {n}") for n, control, rng, curve in DEFAULT_FADERS)
        pads = tuple(Pad("note", n, trigger, where=f"note {n}") for n, trigger in DEFAULT_PADS)
        return cls(faders, pads)

    @classmethod
    def from_dict(cls, data: Any, source: str) -> "MidiMap":
        """A parsed map file: {"cc": [{...}], "note": [{...}], "defaults": false}; InputError names source and key."""
        try:
            return cls._from_dict(data, source)
        except InputError as e:
            raise InputError(f"{source}: {e}") from None

    @classmethod
    def _from_dict(cls, data: Any, source: str) -> "MidiMap":
        if not isinstance(data, dict):
            raise InputError("a MIDI map is a table with [[cc]] and [[note]] entries")
        unknown = sorted(k for k in data if k not in ("cc", "note", "pitchbend", "defaults"))
        if unknown:
            raise InputError(f"{unknown[0]}: unknown key (known: cc, note, pitchbend, defaults)")
        keep_defaults = data.get("defaults", False)
        if not isinstance(keep_defaults, bool):
            raise InputError(f"defaults: must be true or false, got {_show(keep_defaults)}")
        faders: list[Fader] = []
        pads: list[Pad] = []
        for section in ("cc", "note", "pitchbend"):
            entries = data.get(section, [])
            if not isinstance(entries, list):
                raise InputError(f"{section}: must be a list of tables ([[{section}]] in TOML), got {_show(entries)}")
            for i, item in enumerate(entries):
                where = f"{section}[{i}]"
                if section == "note":
                    e = _Entry(item, where, NOTE_KEYS)
                    pads.append(Pad("note", e.integer("number", 0, CC_MAX), e.trigger(), e.channel(), where))
                    continue
                if section == "pitchbend":
                    if isinstance(item, dict) and "number" in item:
                        raise InputError(f"{where}.number: a pitch bend has no number (one wheel per channel: "
                                         "give channel, or none for any)")
                    e = _Entry(item, where, PITCHBEND_KEYS)
                    faders.append(_fader(e, 0, e.channel(), source="pitchbend"))
                    continue
                e = _Entry(item, where, FADER_KEYS + TRIGGER_KEYS)
                number, channel = e.integer("number", 0, CC_MAX), e.channel()
                if "control" in e.data:
                    if any(k in e.data for k in TRIGGER_KEYS):
                        raise InputError(f"{where}: give either control (a fader) or action/toggle/set (a button)")
                    faders.append(_fader(e, number, channel))
                else:
                    if any(k in e.data for k in FADER_ONLY):
                        raise InputError(f"{where}: {', '.join(FADER_ONLY[:-1])} and {FADER_ONLY[-1]} belong to "
                                         "a fader (control = ...)")
                    pads.append(Pad("cc", number, e.trigger(), channel, where))
        if not faders and not pads:
            raise InputError("the map binds nothing: add [[cc]], [[note]] or [[pitchbend]] entries")
        if keep_defaults:  # the file's entries replace the default ones on the same CC or note number
            base = cls.default()
            ccs = {n for f in faders if f.source == "cc" for n in _cc_numbers(f)}
            ccs |= {p.number for p in pads if p.source == "cc"}
            notes = {p.number for p in pads if p.source == "note"}
            faders = [f for f in base.faders if f.number not in ccs] + faders
            pads = [p for p in base.pads if p.number not in (ccs if p.source == "cc" else notes)] + pads
        _check_fine_halves(faders, pads)
        return cls(tuple(faders), tuple(pads), source)

    @classmethod
    def load(cls, path: str | Path) -> "MidiMap":
        """Read a map from .toml or .json; a bad file is one InputError naming the file, the entry and the key."""
        path = Path(path)
        data = read_document(path, "MIDI map")
        return cls.from_dict(data, str(path))

    def bind(self, limits: NetworkLimits) -> "MidiMap":
        """This map for one network: default ranges filled in, every range and value checked against it.

        A map file that asks for what the network lacks (motion on StyleGAN2, a class on an unconditional
        network, an --edit slider not loaded) is refused; the default map just leaves those entries out."""
        defaults = MidiMap.default()  # its entries are optional: left out where they do not apply
        faders, pads = [], []
        for f in self.faders:
            problem, bound = _bind_fader(f, limits)
            if problem is None:
                faders.append(bound)
            elif f not in defaults.faders:
                raise InputError(f"{self.source}: {f.where}.{problem}")
        for p in self.pads:
            problem = _check_trigger(p.trigger, limits)
            if problem is None:
                pads.append(p)
            elif p not in defaults.pads:
                raise InputError(f"{self.source}: {p.where}.{problem}")
        return replace(self, faders=tuple(faders), pads=tuple(pads))

    def describe(self) -> str:
        """One line: what is bound (for the startup message)."""
        parts = [f.describe() for f in self.faders]
        parts += [f"{p.source} {p.number} {p.trigger.describe()}" for p in self.pads]
        return f"{self.source}: " + ("; ".join(parts) if parts else "nothing applies to this network")


def _bind_fader(f: Fader, limits: NetworkLimits) -> tuple[str | None, Fader]:
    """(problem or None, the fader with its range resolved): problems read as "KEY: what is wrong"."""
    if f.key in MOTION_KEYS and not limits.is_stylegan3:
        return f"control: {f.control} needs a StyleGAN3 network (this one has no input transform)", f
    index = edit_index(f.control)
    if index is not None and index >= limits.edits:
        return f"control: {f.control} needs at least {index + 1} --edit directions ({limits.edits} loaded)", f
    if _kind(f.control) not in ("int", "float"):
        return None, f
    full = numeric_range(f.key, limits)
    if full is None:
        return f"control: {f.control}: this network is unconditional (it has no classes)", f
    if f.range is None:
        return None, replace(f, range=full)
    lo, hi = full
    if not all(lo <= x <= hi for x in f.range):
        return f"range: {_show(list(f.range))} is outside {f.control}'s {lo:g}..{hi:g}", f
    return None, f


def _check_trigger(t: Trigger, limits: NetworkLimits) -> str | None:
    """A trigger's problem on this network ("KEY: what is wrong"), or None."""
    if t.toggle in MOTION_KEYS and not limits.is_stylegan3:
        return f"toggle: {t.toggle} needs a StyleGAN3 network"
    for key, value in t.set.items():
        if key in MOTION_KEYS and not limits.is_stylegan3:
            return f"set.{key}: {key} needs a StyleGAN3 network"
        try:
            SCHEMA[key][1](key, value, limits)
        except ControlError as e:
            return f"set.{key}: {e}"
    return None


DEFAULT_FADERS = (  # CC, control, (value at 0, value at 127), curve: the README's table
    (1, "psi", (0.0, 2.0), "linear"),  # 64 = 1: no truncation; 0 = the average image
    (2, "speed", (0.0, 10.0), "exp"),  # walk speed, fine at slow speeds
    (3, "rotate_speed", (-90.0, 90.0), "linear"),  # degrees/s; 64 = still
    (4, "rotate", (-180.0, 180.0), "linear"),  # degrees; 64 = upright
    (5, "translate_amplitude", (0.0, 1.0), "linear"),
    (6, "translate_speed", (0.0, 10.0), "exp"),
    (7, "tx", (-1.0, 1.0), "linear"),
    (8, "ty", (-1.0, 1.0), "linear"),
) + tuple((9 + k, f"{EDIT_PREFIX}{k}", (-20.0, 20.0), "linear") for k in range(8))  # --edit sliders 0..7
DEFAULT_PADS = (  # note (36 = C1, the first pad of most pad controllers), trigger
    (36, Trigger(action="prev")),
    (37, Trigger(action="next")),
    (38, Trigger(action="random")),
    (39, Trigger(action="record_toggle")),
    (40, Trigger(toggle="paused")),
    (41, Trigger(toggle="stabilize")),
    (42, Trigger(set={"walk": "cubic"})),
    (43, Trigger(set={"walk": "noise"})),
)


__all__ = ["CC_MAX", "DEFAULT_FADERS", "DEFAULT_PADS", "FINE_MAX", "LSB_OFFSET", "PICKUP_TOLERANCE", "PITCH_CENTRE",
           "Fader", "MidiMap", "Pad", "SWITCH_ON", "Trigger", "cc_position",
           "edit_index", "fader_value", "relative_steps", "shape"]
