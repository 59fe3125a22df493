"""MIDI control (mido): faders, knobs, pads and buttons drive a live session through the same validated path as OSC.

    sg3rt live --midi                              # the first MIDI input, the default map
    sg3rt live --midi-port nano --midi-map my.toml
    MidiControl(session).open_port("nano")         # library: a port (mido's callback thread) ...
    MidiControl(session).read(messages)            # ... or any iterable of mido messages (a thread of its own)

What each message does is the map's (midimap.py). Every value then goes through `LiveSession.update` /
`LiveSession.action`: a map can set nothing the page could not, and a refused message changes nothing.
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
from .midimap import SWITCH_ON, Fader, MidiMap, Pad, edit_index, fader_value

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
            index = edit_index(f.control)
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


__all__ = ["MidiControl", "MidiMap", "backend_errors", "find_input", "import_mido", "midi_input_names"]
