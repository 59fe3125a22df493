"""MIDI control (mido): faders, knobs, pads and buttons drive a live session through the same validated path as OSC.

    sg3rt live --midi                              # the first MIDI input, the default map
    sg3rt live --midi-port nano --midi-map my.toml
    MidiControl(session).open_port("nano")         # library: a port (mido's callback thread) ...
    MidiControl(session).read(messages)            # ... or any iterable of mido messages (a thread of its own)

A map (TOML or JSON, `MidiMap.load`) binds CC numbers to controls, with a range and a curve, and notes or
CC buttons to triggers: an action (next/prev/random seed, record), a switch toggled, or controls set.
CC values 0..127 cover the range with 64 exactly in the middle (a centred knob gives 0 on -1..1). Every
value then goes through `LiveSession.update` / `LiveSession.action`: a map can set nothing the page could not.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import BackendUnavailableError, InputError, Sg3rtError
from .controls import (MOTION_KEYS, SCHEMA, TRANSLATE_ANIMS, WALKS, ControlError, NetworkLimits, field_kind,
                       numeric_range)
from .protocol import ACTIONS

INSTALL_HINT = 'pip install "sg3rt[midi]"'
CC_MAX = 127  # largest 7-bit CC value
CC_MIDDLE = 64  # the value of a centred knob: it lands exactly on the middle of a range
SWITCH_ON = 64  # a CC at or above this turns a switch on / presses a button (the MIDI convention for pedals)
CHANNELS = 16  # MIDI channels, numbered 1..16 in map files (mido counts 0..15)
EXP_K = 4.0  # steepness of the exp/log curves: exp's first step is ~1/13 of a linear step, log's last the same
ERRORS_KEPT = 20  # last refused messages kept for inspection
CURVES = ("linear", "exp", "log")  # or a positive number: a power curve t**p
TRIGGER_ACTIONS = ACTIONS + ("record_toggle",)  # random, next, prev, record, stop, record_toggle
SWITCHES = tuple(k for k in SCHEMA if field_kind(k) == "bool")  # paused, stabilize
CHOICES = {"walk": WALKS, "translate_anim": TRANSLATE_ANIMS}  # CC zones: 0..127 split evenly between the options
EDIT_PREFIX = "edits."  # "edits.K": the K-th --edit slider (from 0)
DEFAULT_SOURCE = "the default map"  # MidiMap.source of the built-in map (a file's is its path)


# ------------------------------------------------------------------------------------------------
# The map: what each CC and note does. Pure data, checked when loaded and again against a network.


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
    """A CC bound to a control: a fader or knob (absolute) or an endless encoder (relative)."""

    number: int  # CC number, 0..127
    control: str  # a control name, or "edits.K"
    channel: int | None = None  # 1..16; None: any channel
    range: tuple[float, float] | None = None  # (value at 0, value at 127); None: the control's whole range
    curve: str | float = "linear"  # linear | exp (fine at the start of the range) | log (fine at its end) | power p
    relative: bool = False  # an encoder sending steps: 1..63 up, 65..127 down (two's complement), 1/127 of the range
    #                         each (at least 1 for an integer control)
    where: str = ""  # "cc[2]": names the entry in errors

    @property
    def key(self) -> str:
        """The schema key this fader sets ("edits" for an edit slider)."""
        return "edits" if self.control.startswith(EDIT_PREFIX) else self.control


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


def cc_position(value: int) -> float:
    """0..127 -> 0..1 with 64 exactly at 0.5 (0..64 and 64..127 each linear)."""
    if value <= CC_MIDDLE:
        return value / (2 * CC_MIDDLE)
    return 0.5 + (value - CC_MIDDLE) / (2 * (CC_MAX - CC_MIDDLE))


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


def fader_value(fader: Fader, value: int, current: Any = None) -> Any:
    """A CC value (0..127) -> the control's value; `current` is the control's value now (relative encoders)."""
    kind = _kind(fader.control)
    if kind == "switch":
        return value >= SWITCH_ON
    if kind == "choice":
        options = CHOICES[fader.control]
        return options[min(value * len(options) // (CC_MAX + 1), len(options) - 1)]
    assert fader.range is not None, "bind the map to a network first (MidiMap.bind)"
    lo, hi = fader.range
    if fader.relative:
        start = lo if current is None else current  # an unset optional value (cutoff, mix_seed) starts at the range's start
        step = (hi - lo) / CC_MAX
        if kind == "int":  # a tick always moves an integer (cutoff 1..16 would round a 1/127 step away)
            step = math.copysign(max(abs(step), 1.0), step)
        x = start + relative_steps(value) * step
        x = min(max(x, min(lo, hi)), max(lo, hi))
    else:
        x = lo + (hi - lo) * shape(cc_position(value), fader.curve)
    return int(round(x)) if kind == "int" else float(x)


# -- reading a map file --------------------------------------------------------------------------

FADER_KEYS = ("number", "control", "channel", "range", "curve", "mode")
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


def _fader(e: _Entry, number: int, channel: int | None) -> Fader:
    control = e.data["control"]
    if not isinstance(control, str) or not (control in SCHEMA or _edit_index(control) is not None):
        raise e.fail("control", f"unknown control {_show(control)} (known: {', '.join(_fader_controls())})")
    kind = _kind(control)
    if kind == "list":
        raise e.fail("control", f"{control} takes a list: set it from a note with set = {{ {control} = [...] }}")
    numeric = kind in ("int", "float")
    for key in ("range", "curve", "mode"):
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
    return Fader(number, control, channel, rng, curve, mode == "relative", e.where)


def _edit_index(control: str) -> int | None:
    if control.startswith(EDIT_PREFIX) and control[len(EDIT_PREFIX):].isdigit():
        return int(control[len(EDIT_PREFIX):])
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
        unknown = sorted(k for k in data if k not in ("cc", "note", "defaults"))
        if unknown:
            raise InputError(f"{unknown[0]}: unknown key (known: cc, note, defaults)")
        keep_defaults = data.get("defaults", False)
        if not isinstance(keep_defaults, bool):
            raise InputError(f"defaults: must be true or false, got {_show(keep_defaults)}")
        faders: list[Fader] = []
        pads: list[Pad] = []
        for section in ("cc", "note"):
            entries = data.get(section, [])
            if not isinstance(entries, list):
                raise InputError(f"{section}: must be a list of tables ([[{section}]] in TOML), got {_show(entries)}")
            for i, item in enumerate(entries):
                where = f"{section}[{i}]"
                if section == "note":
                    e = _Entry(item, where, NOTE_KEYS)
                    pads.append(Pad("note", e.integer("number", 0, CC_MAX), e.trigger(), e.channel(), where))
                    continue
                e = _Entry(item, where, FADER_KEYS + TRIGGER_KEYS)
                number, channel = e.integer("number", 0, CC_MAX), e.channel()
                if "control" in e.data:
                    if any(k in e.data for k in TRIGGER_KEYS):
                        raise InputError(f"{where}: give either control (a fader) or action/toggle/set (a button)")
                    faders.append(_fader(e, number, channel))
                else:
                    if any(k in e.data for k in ("range", "curve", "mode")):
                        raise InputError(f"{where}: range, curve and mode belong to a fader (control = ...)")
                    pads.append(Pad("cc", number, e.trigger(), channel, where))
        if not faders and not pads:
            raise InputError("the map binds nothing: add [[cc]] or [[note]] entries")
        if keep_defaults:  # the file's entries replace the default ones on the same CC or note number
            base = cls.default()
            ccs = {f.number for f in faders} | {p.number for p in pads if p.source == "cc"}
            notes = {p.number for p in pads if p.source == "note"}
            faders = [f for f in base.faders if f.number not in ccs] + faders
            pads = [p for p in base.pads if p.number not in (ccs if p.source == "cc" else notes)] + pads
        return cls(tuple(faders), tuple(pads), source)

    @classmethod
    def load(cls, path: str | Path) -> "MidiMap":
        """Read a map from .toml or .json; a bad file is one InputError naming the file, the entry and the key."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".toml", ".json"):
            raise InputError(f"{path}: a MIDI map is a .toml or .json file, not {suffix or 'no suffix'!r}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: cannot read the MIDI map ({getattr(e, 'strerror', None) or e})") from None
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
                try:
                    import tomli as tomllib
                except ModuleNotFoundError:
                    raise InputError("TOML MIDI maps need Python 3.11+ or `pip install tomli` (JSON works everywhere)") from None
            parse, parse_error = tomllib.loads, tomllib.TOMLDecodeError
        else:
            parse, parse_error = json.loads, json.JSONDecodeError
        try:
            data = parse(text)
        except parse_error as e:
            raise InputError(f"{path}: not valid {suffix[1:].upper()}: {e}") from None
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
        parts = [f"CC {f.number} {f.control}" for f in self.faders]
        parts += [f"{p.source} {p.number} {p.trigger.describe()}" for p in self.pads]
        return f"{self.source}: " + ("; ".join(parts) if parts else "nothing applies to this network")


def _bind_fader(f: Fader, limits: NetworkLimits) -> tuple[str | None, Fader]:
    """(problem or None, the fader with its range resolved): problems read as "KEY: what is wrong"."""
    if f.key in MOTION_KEYS and not limits.is_stylegan3:
        return f"control: {f.control} needs a StyleGAN3 network (this one has no input transform)", f
    index = _edit_index(f.control)
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


# ------------------------------------------------------------------------------------------------
# The backend: mido over python-rtmidi, imported only here.


def import_mido():
    try:
        import mido
    except ImportError:
        raise BackendUnavailableError(f"MIDI control needs mido and python-rtmidi: {INSTALL_HINT}") from None
    return mido


def _backend(name: str | None):
    """mido's backend: its default (MIDO_BACKEND, else python-rtmidi) or a named module."""
    mido = import_mido()
    with backend_errors():
        return mido.Backend(name, load=True) if name else mido.backend


@contextmanager
def backend_errors() -> Iterator[None]:
    """A native MIDI failure -> one BackendUnavailableError line with the hint (and libasound's own stderr
    complaint, printed before rtmidi raises, held back so the error stays one line)."""
    failures: tuple[type[BaseException], ...] = (OSError, RuntimeError, ValueError)
    try:
        import rtmidi

        failures += (rtmidi.RtMidiError,)
    except ImportError:
        pass
    try:
        with _native_stderr_held():
            yield
    except ImportError as e:
        raise BackendUnavailableError(f"MIDI control needs mido and python-rtmidi ({e.name or e} is missing): "
                                      f"{INSTALL_HINT}") from None
    except failures as e:
        reason = " ".join(str(e).split()).rstrip(".") or type(e).__name__
        raise BackendUnavailableError(f"the MIDI system cannot be opened ({reason}); python-rtmidi on Linux needs "
                                      "the ALSA sequencer /dev/snd/seq (in a container: --device /dev/snd)") from None


@contextmanager
def _native_stderr_held() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the call; pass what was written on only if it worked."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hold
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if ok:
                held.seek(0)
                text = held.read()
                if text:
                    os.write(2, text)


def midi_input_names(backend: str | None = None) -> list[str]:
    """The MIDI input ports of this machine (`sg3rt live --midi-ports`)."""
    b = _backend(backend)
    with backend_errors():
        return list(b.get_input_names())


def find_input(pattern: str | None = None, backend: str | None = None) -> str:
    """The first input port whose name contains `pattern` (any case); None: the first port."""
    names = midi_input_names(backend)
    if not names:
        raise InputError("no MIDI input port found: connect a controller (`sg3rt live --midi-ports` lists them)")
    if not pattern:
        return names[0]
    for name in names:
        if pattern.lower() in name.lower():
            return name
    raise InputError(f"no MIDI input port matches {pattern!r} (ports: {'; '.join(names)})")


# ------------------------------------------------------------------------------------------------
# The binding: messages -> session updates and actions.


class MidiControl:
    """Binds MIDI input (a port, or any iterable of mido messages) to a LiveSession through a map.

    Every message goes through `handle`: one update per CC message (all the faders it moves, all or
    nothing), the triggers of a note or a pressed button. A refused one changes nothing and is kept in
    `errors` (the last few), as OSC's are.
    """

    def __init__(self, session: Any, midi_map: MidiMap | None = None):
        self.session = session
        self.map = (midi_map or MidiMap.default()).bind(session.limits)
        self.errors: deque[str] = deque(maxlen=ERRORS_KEPT)
        self.received = 0  # messages handled (applied, refused or not mapped)
        self.port: Any = None
        self.port_name: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one message at a time, whichever thread delivers it
        self._pressed: set[tuple[int, int]] = set()  # (channel, CC) of buttons held down: a press fires once

    # -- sources -----------------------------------------------------------------------------------
    def open_port(self, name: str | None = None, backend: str | None = None) -> "MidiControl":
        """Listen to the first input whose name contains `name` (None: the first input); messages arrive on
        mido's callback thread. backend: a mido backend module (default: mido's, python-rtmidi)."""
        port_name = find_input(name, backend)
        b = _backend(backend)
        with backend_errors():
            self.port = b.open_input(port_name, callback=self.handle)
        self.port_name = port_name
        return self

    def read(self, messages: Iterable[Any]) -> "MidiControl":
        """Handle `messages` (a list, a MidiFile's .play(), a port opened without a callback) on a thread of its own."""
        self._thread = threading.Thread(target=self._read, args=(messages,), name="sg3rt-live-midi", daemon=True)
        self._thread.start()
        return self

    def _read(self, messages: Iterable[Any]) -> None:
        for msg in messages:
            if self._stop.is_set():
                return
            self.handle(msg)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until `read`'s messages are all handled; False on timeout."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def close(self, timeout: float = 1.0) -> None:
        """Stop listening: the port is closed (its callback deregistered), a reader stops at its next message."""
        self._stop.set()
        if self.port is not None:
            with backend_errors():
                self.port.close()
        if self._thread is not None:
            self._thread.join(timeout)  # a blocking iterator may never yield again: its daemon thread is left

    def __enter__(self) -> "MidiControl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- messages ----------------------------------------------------------------------------------
    def handle(self, msg: Any) -> None:
        """One mido message -> a session update or triggers; other messages (clock, sysex, ...) are ignored."""
        with self._lock:
            try:
                if msg.type == "control_change":
                    self._control_change(msg.channel + 1, msg.control, msg.value)
                elif msg.type == "note_on" and msg.velocity > 0:
                    self._fire([p for p in self.map.pads if p.source == "note" and _matches(p, msg.channel + 1, msg.note)])
            except Sg3rtError as e:
                self.errors.append(f"{_describe(msg)}: {e}")
            finally:
                self.received += 1

    def _control_change(self, channel: int, number: int, value: int) -> None:
        faders = [f for f in self.map.faders if _matches(f, channel, number)]
        if faders:
            self.session.update(self._changes(faders, value))
        key = (channel, number)
        if value >= SWITCH_ON and key not in self._pressed:
            self._pressed.add(key)
            self._fire([p for p in self.map.pads if p.source == "cc" and _matches(p, channel, number)])
        elif value < SWITCH_ON:
            self._pressed.discard(key)

    def _changes(self, faders: list[Fader], value: int) -> dict[str, Any]:
        controls = self.session.controls
        changes: dict[str, Any] = {}
        for f in faders:
            index = _edit_index(f.control)
            if index is not None:
                amounts = changes.setdefault("edits", list(controls.edits))
                amounts[index] = fader_value(f, value, amounts[index])
            else:
                current = getattr(controls, SCHEMA[f.key][0])
                changes[f.key] = fader_value(f, value, current)
        return changes

    def _fire(self, pads: list[Pad]) -> None:
        for p in pads:
            t = p.trigger
            if t.action == "record_toggle":
                self.session.action("record" if self.session.recording is None else "stop")
            elif t.action is not None:
                self.session.action(t.action)
            elif t.toggle is not None:
                self.session.update({t.toggle: not getattr(self.session.controls, t.toggle)})
            else:
                self.session.update(dict(t.set))


def _matches(binding: Fader | Pad, channel: int, number: int) -> bool:
    return binding.number == number and binding.channel in (None, channel)


def _describe(msg: Any) -> str:
    if msg.type == "control_change":
        return f"CC {msg.control} = {msg.value} (channel {msg.channel + 1})"
    if msg.type == "note_on":
        return f"note {msg.note} (channel {msg.channel + 1})"
    return str(msg.type)


__all__ = ["Fader", "MidiControl", "MidiMap", "Pad", "Trigger", "backend_errors", "cc_position", "fader_value",
           "find_input", "import_mido", "midi_input_names", "relative_steps", "shape"]
