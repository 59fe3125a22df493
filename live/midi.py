"""MIDI control (mido): faders, knobs, pads and buttons drive a live session through the same validated path as OSC.

    sg3rt live --midi                              # the first MIDI input, the default map
    sg3rt live --midi-port nano --midi-map my.toml
    MidiControl(session).open_port("nano")         # library: a port (mido's callback thread) ...
    MidiControl(session).read(messages)            # ... or any iterable of mido messages (a thread of its own)

What each message does is the map's (midimap.py). Every value then goes through `LiveSession.update` /
`LiveSession.action`: a map can set nothing the page could not, and a refused message changes nothing.
Soft takeover (a fader's `takeover = "pickup"`, the default): when a control's value moved elsewhere (the
page, OSC, a pad, another fader), an absolute knob at another position changes nothing until it reaches
the value (within PICKUP_TOLERANCE) or crosses it between two messages; the first message after start
counts as moved elsewhere (there is no previous position to cross from, so only a knob near the value
takes over).
mido and python-rtmidi are imported only here, with an install hint when they are missing.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import deque
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from ..errors import BackendUnavailableError, InputError, Sg3rtError
from .controls import SCHEMA
from .midimap import (CC_MAX, FINE_MAX, LSB_OFFSET, PICKUP_TOLERANCE, PITCH_CENTRE, SWITCH_ON, Fader, MidiMap, Pad,
                       edit_index, fader_value)

INSTALL_HINT = 'pip install "sg3rt[midi]"'
ERRORS_KEPT = 20  # last refused messages kept for inspection


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
        self._msb: dict[tuple[int, int], int] = {}  # (channel, CC) -> the last MSB of a 14-bit CC (its LSB refines it)
        self._knob: dict[int, Any] = {}  # fader index -> the value its knob stood for at its previous message
        self._sent: dict[int, Any] = {}  # fader index -> the value it last set: anything else means moved elsewhere

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
        """Handle `messages` (a list, a MidiFile's .play(), any generator) on a thread of its own."""
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
                elif msg.type == "pitchwheel":
                    self._move([(i, msg.pitch + PITCH_CENTRE, FINE_MAX) for i, f in enumerate(self.map.faders)
                                if f.source == "pitchbend" and f.channel in (None, msg.channel + 1)])
                elif msg.type == "note_on" and msg.velocity > 0:
                    self._fire([p for p in self.map.pads if p.source == "note" and _matches(p, msg.channel + 1, msg.note)])
            except Sg3rtError as e:
                self.errors.append(f"{_describe(msg)}: {e}")
            finally:
                self.received += 1

    def _control_change(self, channel: int, number: int, value: int) -> None:
        moves = []  # (fader index, value, its top: 127 or 16383)
        for i, f in enumerate(self.map.faders):
            if f.source != "cc" or f.channel not in (None, channel):
                continue
            if f.number == number:
                if f.bits == 14:
                    self._msb[(channel, number)] = value
                moves.append((i, value, CC_MAX))  # a 14-bit fader's MSB alone: 7-bit resolution, both ends reached
            elif f.bits == 14 and f.number + LSB_OFFSET == number:
                msb = self._msb.get((channel, f.number))
                if msb is not None:  # an LSB before any MSB refines nothing
                    moves.append((i, msb << 7 | value, FINE_MAX))
        self._move(moves)
        key = (channel, number)
        if value >= SWITCH_ON and key not in self._pressed:
            self._pressed.add(key)
            self._fire([p for p in self.map.pads if p.source == "cc" and _matches(p, channel, number)])
        elif value < SWITCH_ON:
            self._pressed.discard(key)

    def _move(self, moves: list[tuple[int, int, int]]) -> None:
        """Faders moved by one message -> one session update (all or nothing) of those that take over."""
        controls = self.session.controls  # the public snapshot: what the page, OSC and presets left
        changes: dict[str, Any] = {}
        sent = []
        for i, value, top in moves:
            f = self.map.faders[i]
            index = edit_index(f.control)
            if index is not None:
                current = controls.edits[index]
                target = fader_value(f, value, changes.get("edits", controls.edits)[index], top)
            else:
                current = getattr(controls, SCHEMA[f.key][0])
                target = fader_value(f, value, changes.get(f.key, current), top)
            if f.picks_up and not self._takes_over(i, f, current, target):
                continue
            if index is not None:
                changes.setdefault("edits", list(controls.edits))[index] = target
            else:
                changes[f.key] = target
            sent.append((i, target))
        if changes:
            self.session.update(changes)
            self._sent.update(sent)  # only once accepted: a refused update leaves the fader where it was

    def _takes_over(self, i: int, f: Fader, current: Any, target: Any) -> bool:
        """Soft takeover: does fader i, whose knob now stands for `target`, move a control now at `current`?

        Yes while it holds the value it last set; else once the knob is near the value, or crossed it since
        its previous message. An unset value (cutoff, mix_seed: None) has nothing to reach: taken at once."""
        previous, self._knob[i] = self._knob.get(i), target
        if current is None or (i in self._sent and self._sent[i] == current):
            return True
        assert f.range is not None
        near = abs(target - current) <= PICKUP_TOLERANCE * abs(f.range[1] - f.range[0]) or target == current
        crossed = previous is not None and (previous - current) * (target - current) <= 0
        return near or crossed

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


def _matches(binding: Pad, channel: int, number: int) -> bool:
    return binding.number == number and binding.channel in (None, channel)


def _describe(msg: Any) -> str:
    if msg.type == "control_change":
        return f"CC {msg.control} = {msg.value} (channel {msg.channel + 1})"
    if msg.type == "note_on":
        return f"note {msg.note} (channel {msg.channel + 1})"
    if msg.type == "pitchwheel":
        return f"pitch bend {msg.pitch} (channel {msg.channel + 1})"
    return str(msg.type)


__all__ = ["MidiControl", "MidiMap", "backend_errors", "find_input", "import_mido", "midi_input_names"]
