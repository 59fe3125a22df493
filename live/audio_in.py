"""Live sound input (`sg3rt live --audio-in DEVICE`): a microphone, line-in or loopback drives the reactions.

Three parts, one thread each:
- the capture callback (PortAudio's thread, through `sounddevice`) only copies each block into a bounded
  RingBuffer (RING_S seconds; when the reader falls behind the oldest samples are dropped and counted);
- an analysis thread drains the ring every PUMP_S, feeds the mono mix to a StreamAnalyser (analyser.py)
  and, while a recording runs, appends the captured sound to a temporary file (the tape);
- the render loop asks `at(clock)` for the latest AudioState: the same reactions as a sound file's
  (live/audio.py `reaction_state`), from the analyser's latest reading; the clock is not used (the input is
  always now).
The page plays nothing (the room has the sound); a recording gets the captured sound, continuous from the
moment its first frame was rendered (a file's `soundtrack` instead cuts the track to each frame's clock).
"""

from __future__ import annotations

import math
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..animate.audio import AudioReaction, beat_envelope, beat_turns
from ..errors import InputError
from .analyser import StreamAnalyser
from .audio import RECORD_SAMPLE_RATE, AudioState, reaction_state, slot_sound

RING_S = 2.0  # seconds of captured sound the ring holds for the analysis thread (it drains every PUMP_S)
PUMP_S = 0.01  # seconds between drains of the ring (the analysis hop is 11.6 ms)
MAX_CHANNELS = 2  # channels captured (a mono mix is analysed; recordings are stereo)
SOUNDDEVICE_HINT = ("live sound input needs sounddevice and the PortAudio library: pip install 'sg3rt[audio]' "
                    "and apt-get install libportaudio2 (Debian/Ubuntu; brew install portaudio on macOS)")


# ------------------------------------------------------------------------------------------------
# Between the capture callback and the analysis: a bounded ring.


class RingBuffer:
    """A bounded FIFO of sample frames [capacity, channels] float32, safe between one writer thread and one
    reader thread. `write` copies (never allocates, never waits for the reader); when full, the oldest
    samples are dropped and counted in `dropped`."""

    def __init__(self, capacity: int, channels: int):
        assert capacity > 0 and channels > 0, (capacity, channels)
        self._data = np.zeros([capacity, channels], np.float32)
        self._lock = threading.Lock()
        self._start = 0  # index of the oldest frame held
        self._count = 0  # frames held
        self.dropped = 0  # frames lost to overflow so far
        self.written = 0  # frames written so far

    @property
    def capacity(self) -> int:
        return len(self._data)

    def __len__(self) -> int:
        return self._count

    def write(self, block: np.ndarray) -> None:
        """Append block [N, channels] (or [N] for one channel)."""
        block = np.asarray(block, dtype=np.float32).reshape(len(block), -1)
        assert block.shape[1] == self._data.shape[1], f"[N, {self._data.shape[1]}] expected, got {list(block.shape)}"
        cap, n = self.capacity, len(block)
        with self._lock:
            self.written += n
            if n >= cap:  # the block alone fills the ring: keep its newest frames
                self.dropped += self._count + n - cap
                self._data[:] = block[n - cap :]
                self._start, self._count = 0, cap
                return
            over = max(0, self._count + n - cap)
            self.dropped += over
            self._start, self._count = (self._start + over) % cap, self._count - over
            end = (self._start + self._count) % cap
            first = min(n, cap - end)
            self._data[end : end + first] = block[:first]
            self._data[: n - first] = block[first:]
            self._count += n

    def read(self) -> np.ndarray:  # [M, channels], oldest first; the ring is empty afterwards
        with self._lock:
            idx = (self._start + np.arange(self._count)) % self.capacity
            out = self._data[idx]
            self._start, self._count = 0, 0
        return out


# ------------------------------------------------------------------------------------------------
# Devices, through sounddevice (imported only here).


def _sounddevice() -> Any:
    try:
        import sounddevice
    except (ImportError, OSError):  # no package, or no PortAudio library (OSError from its loader)
        raise InputError(SOUNDDEVICE_HINT) from None
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    index: int  # PortAudio's device index
    name: str
    channels: int  # input channels
    sample_rate: float  # the device's default rate, Hz
    default: bool  # the system's default input

    def describe(self) -> str:
        return (f"{self.index}: {self.name} ({self.channels} ch, {self.sample_rate:g} Hz)"
                + ("  [default]" if self.default else ""))


def input_devices() -> list[InputDevice]:
    """The sound input devices PortAudio sees (an empty list where there are none)."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default = sd.default.device[0]
    except sd.PortAudioError as e:
        raise InputError(f"cannot list sound devices: {e}") from None
    return [InputDevice(i, d["name"], int(d["max_input_channels"]), float(d["default_samplerate"]), i == default)
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def find_input_device(spec: str) -> InputDevice:
    """'default', a device index, or part of a device's name (case-insensitive; it must name one) -> the device."""
    devices = input_devices()
    listing = "sg3rt live --audio-devices lists them"
    if not devices:
        raise InputError(f"--audio-in {spec}: no sound input devices on this machine")
    text = str(spec).strip()
    if text.lower() == "default":
        found = [d for d in devices if d.default]
        if not found:
            raise InputError(f"--audio-in default: there is no default input device ({listing})")
        return found[0]
    if text.isdigit():
        found = [d for d in devices if d.index == int(text)]
        if not found:
            raise InputError(f"--audio-in {text}: no input device with that index ({listing})")
        return found[0]
    found = [d for d in devices if text.lower() in d.name.lower()]
    if not found:
        raise InputError(f"--audio-in {text!r}: no input device's name contains it ({listing})")
    if len(found) > 1:
        names = ", ".join(f"{d.index}: {d.name}" for d in found)
        raise InputError(f"--audio-in {text!r} names {len(found)} input devices ({names}): give an index")
    return found[0]


# ------------------------------------------------------------------------------------------------
# The session's sound source.


class LiveInput:
    """Sound from an input device analysed as it comes; the AudioSource of `sg3rt live --audio-in`.

    Without a device (`LiveInput(reaction, sample_rate, channels)`), anything may write blocks to `ring` and
    call `pump()`; `LiveInput.open(device)` connects a device's capture stream and starts the analysis thread."""

    page_track = None  # nothing for the page to play: the sound is in the room

    def __init__(self, reaction: AudioReaction, sample_rate: int, channels: int = 1, name: str = "input"):
        if reaction.bpm is not None or reaction.loop_bars is not None:
            raise InputError("a live input follows its own tempo: --bpm and --loop-bars need --audio FILE")
        self.reaction = reaction
        self.name = name
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.ring = RingBuffer(int(RING_S * self.sample_rate), self.channels)
        self.analyser = StreamAnalyser(self.sample_rate)
        self.captured = 0  # frames drained from the ring so far (the tape's clock)
        self._tape_lock = threading.Lock()
        self._tape: Any = None  # a temporary file of int16 frames while a recording runs
        self._tape_start = 0.0  # stream seconds where the tape begins
        self._pump_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: Any = None  # the sounddevice InputStream, if a device is connected
        self.overflows = 0  # blocks PortAudio reported as overflowed (the callback was late)

    # -- opening a device --------------------------------------------------------------------------
    @classmethod
    def open(cls, device: str, react: str | None = None) -> "LiveInput":
        """Find the device, open its capture stream and start analysing (errors are one InputError line,
        raised before a network loads)."""
        reaction = AudioReaction.parse(react)
        dev = find_input_device(device)
        sd = _sounddevice()
        source = cls(reaction, round(dev.sample_rate), min(dev.channels, MAX_CHANNELS), dev.name)

        def callback(indata: np.ndarray, frames: int, time: Any, status: Any) -> None:  # PortAudio's thread
            if status.input_overflow:
                source.overflows += 1
            source.ring.write(indata)  # a copy; nothing else happens here

        try:
            source._stream = sd.InputStream(device=dev.index, channels=source.channels, samplerate=source.sample_rate,
                                            dtype="float32", callback=callback)
            source._stream.start()
        except (sd.PortAudioError, ValueError) as e:
            source.close()
            raise InputError(f"--audio-in {device}: cannot open {dev.name!r}: {e}") from None
        return source.start()

    def start(self) -> "LiveInput":
        """Run `pump` every PUMP_S on an analysis thread until close()."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sg3rt-live-audio-in", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(PUMP_S):
            self.pump()

    def close(self) -> None:
        self._stop.set()
        if self._stream is not None:
            self._stream.close()  # stop() then close(): no more callbacks
            self._stream = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._tape_lock:
            if self._tape is not None:
                self._tape.close()
                self._tape = None

    def __enter__(self) -> "LiveInput":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- analysis ------------------------------------------------------------------------------------
    def pump(self) -> int:
        """Drain the ring: tape what a recording needs, analyse the mono mix; the frames drained."""
        with self._pump_lock:
            block = self.ring.read()  # [N, channels]
            if len(block) == 0:
                return 0
            with self._tape_lock:
                if self._tape is not None:
                    self._tape.write((np.clip(block, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes())
            self.captured += len(block)
            self.analyser.feed(block.mean(axis=1))
            return len(block)

    # -- the AudioSource interface ---------------------------------------------------------------------
    def position(self, clock: float) -> float:
        """Seconds of sound analysed (the input is always now: the session's clock does not move it)."""
        return self.analyser.latest.time

    def walk_rate(self, clock: float) -> float:
        return self.at(clock).walk_rate

    def at(self, clock: float) -> AudioState:
        f, r = self.analyser.latest, self.reaction
        turns = 0.0
        if r.rotate:  # beats no longer kept are fully turned
            turns = (f.beat_count - len(f.beats)) + float(beat_turns(f.time, f.beats))
        env = float(beat_envelope(f.time, f.beats)) if r.translate else 0.0
        return reaction_state(r, f.time, f.loudness, f.onset, f.chroma, turns, env)

    def sound_clock(self, clock: float, paused: bool) -> float:
        """A recorded frame sounds from the capture's position when it was rendered (also while paused:
        the room does not pause)."""
        return self.captured / self.sample_rate

    def begin_sound(self) -> None:
        """Start taping the captured sound (a new tape each time)."""
        with self._pump_lock, self._tape_lock:  # no drain between the clock and the tape's first sample
            if self._tape is not None:
                self._tape.close()
            self._tape = tempfile.TemporaryFile(prefix="sg3rt-audio-in-")
            self._tape_start = self.captured / self.sample_rate

    def soundtrack(self, clocks: Sequence[float | None], fps: float) -> np.ndarray:  # [S, 2] float32
        """The tape cut to a recording's frames: from the capture time its first frame was rendered at, continuous
        (the room's sound has no jumps: a slow frame repeats its picture, never a stretch of sound); the tape
        ends here."""
        with self._tape_lock:
            tape, self._tape = self._tape, None
        if tape is None:
            raise InputError("no sound was taped for this recording")
        try:
            tape.seek(0)
            pcm = np.frombuffer(tape.read(), dtype="<i2").reshape(-1, self.channels).astype(np.float32) / 32767.0
        finally:
            tape.close()
        pcm = pcm[:, [0, 0]] if self.channels == 1 else pcm[:, :2]  # [N, 2]
        if self.sample_rate != RECORD_SAMPLE_RATE and len(pcm):
            from scipy.signal import resample_poly

            g = math.gcd(self.sample_rate, RECORD_SAMPLE_RATE)
            pcm = resample_poly(pcm, RECORD_SAMPLE_RATE // g, self.sample_rate // g, axis=0).astype(np.float32)
        # Silence after the tape, longer than the video: a frame past its end (or rendered a moment before the
        # tape began, a negative offset that wraps) sounds silent, never from the tape's other end.
        pad = np.zeros([int((len(clocks) / fps + 1.0) * RECORD_SAMPLE_RATE), 2], np.float32)
        first = next((c for c in clocks if c is not None), self._tape_start)
        rel = [first - self._tape_start + k / fps for k in range(len(clocks))]
        return slot_sound(np.concatenate([pcm, pad]), RECORD_SAMPLE_RATE, rel, fps)
