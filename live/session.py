"""The live session: controls, a self-paced render loop on its own thread, and the frame stream.

Usable without any web part: `with LiveSession(runtime) as s: frame = s.stream.wait_next(0)`.
The render thread reads the latest immutable controls snapshot, renders one frame through the
runtime, encodes it and publishes it as the stream's latest frame. Consumers take the latest frame
whenever they are ready: a slow consumer skips frames, it never queues them, so latency stays bounded
and nothing a consumer does can slow the loop.
"""

from __future__ import annotations

import io
import queue
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..animate.edits import check_still
from ..animate.seeds import MAX_SEED
from ..animate.writers import open_writer
from ..errors import InputError, OutputError, Sg3rtError
from .audio import RECORD_SAMPLE_RATE, AudioSource, write_wav
from .controls import ControlError, Controls, NetworkLimits, apply, initial_controls
from .scene import Clocks, LiveScene

MAX_DT = 0.25  # seconds: the clocks advance at most this much per frame (a stall does not jump the walk)
STATS_WINDOW = 30  # frames averaged for frames/s and ms per frame
RECORD_QUEUE = 8  # frames waiting for the recording encoder; more are dropped (the loop never waits for ffmpeg)
MIN_SIZE, MAX_SIZE = 16, 4096
EARLY_FRACTION = 0.5  # a control change starts the next frame early, but not before this fraction of a period  # streamed frame size in pixels


@dataclass(frozen=True)
class Frame:
    """One published frame: sequence number, the controls version it shows, the encoded image and the pixels."""

    seq: int  # 1, 2, 3, ... in render order
    version: int  # controls version this frame was rendered from
    time: float  # time.monotonic() when published
    jpeg: bytes  # the encoded image sent to pages
    rgb: np.ndarray = field(repr=False)  # [H, W, 3] uint8, what was encoded (snapshots, recordings)
    render_ms: float = 0.0  # from the controls read to the frame published (render, conversion, encoding)


class FrameStream:
    """The latest frame and a way to wait for a newer one, from threads (wait_next) or an event loop (subscribe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._subscribers: list[Callable[[], None]] = []
        self.closed = False

    @property
    def latest(self) -> Frame | None:
        return self._latest

    def publish(self, frame: Frame) -> None:
        with self._cond:
            self._latest = frame
        self._wake()

    def close(self) -> None:
        with self._cond:
            self.closed = True
        self._wake()

    def _wake(self) -> None:
        """Waiters re-check their condition; subscribers are called outside the lock."""
        with self._cond:
            self._cond.notify_all()
            subscribers = list(self._subscribers)
        for notify in subscribers:
            notify()

    def wait_next(self, after_seq: int, timeout: float | None = None) -> Frame | None:
        """The latest frame once its seq is past `after_seq`; None on timeout or when the stream closed."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self.closed or (self._latest is not None and self._latest.seq > after_seq),
                                     timeout)
            return self._latest if ok and not self.closed else None

    def subscribe(self, notify: Callable[[], None]) -> Callable[[], None]:
        """Call `notify()` (from the render thread: keep it tiny) on every new frame; returns the unsubscribe."""
        with self._cond:
            self._subscribers.append(notify)

        def unsubscribe() -> None:
            with self._cond:
                if notify in self._subscribers:
                    self._subscribers.remove(notify)
        return unsubscribe


@dataclass(frozen=True)
class Stats:
    """What the HUD shows."""

    fps: float  # frames published per second, over the last STATS_WINDOW frames
    ms_per_frame: float  # render + encode time per frame
    frames: int  # frames published so far
    backend: str
    device: str
    precision: str
    resolution: int  # the network's
    size: int  # the streamed frame's
    kind: str
    recording: str | None  # name of the recording in progress
    audio_time: float | None = None  # seconds into the sound track at the latest frame (pages follow it)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Recording:
    """An MP4 in real time, written through the animate writers on its own thread.

    The video has a fixed frame rate; each rendered frame fills the video slots up to its own time
    (repeated when the loop runs slower than the video, skipped when faster), so ten seconds of
    session make ten seconds of video. Frames the encoder cannot take in time are dropped.
    """

    def __init__(self, path: Path, fps: float, audio: AudioSource | None = None):
        """audio: the session's sound (a track, or an input device); the video gets the sound (see `add`)."""
        self.name = path.name
        self.fps = fps
        self.writer = open_writer(path, fps)
        self.audio = audio
        self.audio_clocks: list[float | None] = []  # per video frame: the audio clock it showed, None if paused
        self.queue: queue.Queue = queue.Queue(RECORD_QUEUE)
        self.start: float | None = None
        self.slots = 0  # video frames handed to the encoder so far
        self.dropped = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sg3rt-live-record", daemon=True)
        self.thread.start()
        if audio is not None:
            audio.begin_sound()

    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                rgb, repeat = item
                for _ in range(repeat):
                    self.writer.write(rgb[None])
        except BaseException as e:  # reported by stop()
            self.error = e

    def add(self, rgb: np.ndarray, t: float, audio_clock: float | None = None) -> None:
        """A frame published at time t (monotonic seconds), showing audio clock `audio_clock` (None: paused)."""
        if self.start is None:
            self.start = t
        due = int((t - self.start) * self.fps) + 1  # video frames that should exist once this one is in
        repeat = min(due - self.slots, int(self.fps) + 1)  # a stall longer than a second is not padded out
        if repeat <= 0:
            return  # the loop runs faster than the video: this frame falls between two video frames
        try:
            self.queue.put_nowait((rgb, repeat))
            self.slots = due
        except queue.Full:
            self.dropped += 1
            return
        # A repeated frame stands for the time until the next one: the sound runs on through its slots.
        self.audio_clocks += [None if audio_clock is None else audio_clock + i / self.fps for i in range(repeat)]

    def stop(self) -> Path | None:
        """Encode what is queued, finish the container and rename it into place; the path, or None if empty."""
        self.queue.put(None)
        self.thread.join()
        sound = None
        try:
            if self.error is None and self.audio is not None and any(c is not None for c in self.audio_clocks):
                sound = self.writer.path.with_name(f".{self.name}.sound.wav")  # hidden, removed below
                write_wav(sound, self.audio.soundtrack(self.audio_clocks, self.fps), RECORD_SAMPLE_RATE)
                self.writer.set_audio(sound)
        except (OSError, Sg3rtError) as e:
            self.error = e
        try:
            kept = self.writer.close(keep=self.error is None)
        except OSError as e:  # the rename into place, or the encoder's pipe
            raise OutputError(f"recording {self.name} failed: {e.strerror or e}") from None
        finally:
            if sound is not None:
                sound.unlink(missing_ok=True)
        if self.error is not None:
            raise Sg3rtError(f"recording {self.name} failed: {self.error}")
        return self.writer.path if kept else None


class LiveSession:
    """Controls + render loop + frame stream over a runtime (the session never decides how the network runs)."""

    def __init__(self, runtime: Any, *, size: int | None = None, record_dir: str | Path | None = None,
                 controls: dict[str, Any] | None = None, edits: tuple[Any, ...] = (), audio: AudioSource | None = None):
        """edits: animate.edits.Edit directions, one amount slider each (their spec's amount is the start).
        audio: a sound track (LiveAudio.open; pages play it in sync) or an input device (LiveInput.open) that
        drives the reactions."""
        if size is not None and not MIN_SIZE <= size <= MAX_SIZE:
            raise InputError(f"--stream-size must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}")
        self.runtime = runtime
        check_still(edits, "live edits take one start AMOUNT (the slider moves it), not A..B")
        self.edits = tuple(edits)
        if audio is not None and audio.reaction.moves and not runtime.is_stylegan3:
            raise InputError("--react rotate/translate move the image: only StyleGAN3 networks take motion")
        self.audio = audio
        self.clocks = Clocks()  # the latest frame's (the render loop owns it; stats read it)
        self.limits = NetworkLimits.of(runtime, len(self.edits))
        self.size = size or runtime.width  # streamed frame width; the height keeps the runtime's aspect ratio
        self.height = max(1, round(self.size * runtime.height / runtime.width))
        self.record_dir = Path(record_dir) if record_dir is not None else None
        self.scene = LiveScene(runtime, self.edits, audio)
        self.stream = FrameStream()
        start = {"edits": [float(e.amount) for e in self.edits]} if self.edits else {}
        self._state = (initial_controls(self.limits, **start, **(controls or {})), 1)  # (snapshot, version), swapped whole
        self._lock = threading.Lock()  # serialises writers of the controls and the recording state
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by a control change or close(): the paced wait ends early
        self._thread: threading.Thread | None = None
        self._times: list[float] = []
        self._ms: list[float] = []
        self.recording: Recording | None = None
        self.recordings: dict[str, Path] = {}  # finished recordings by name (the only files a page may fetch)
        self.error: BaseException | None = None  # what stopped the render loop, if anything did

    # -- controls --------------------------------------------------------------------------------
    @property
    def controls(self) -> Controls:
        return self._state[0]

    @property
    def version(self) -> int:
        return self._state[1]

    def update(self, changes: dict[str, Any]) -> int:
        """Validate and apply {name: value}; the new controls version. ControlError leaves everything as it was."""
        with self._lock:
            controls, version = self._state
            self._state = (apply(controls, changes, self.limits), version + 1)  # one swap: readers see old or new
            self._wake.set()  # render the change now rather than at the next paced tick
            return version + 1

    def action(self, name: str, **args: Any) -> dict[str, Any]:
        """random | next | prev (seed), record | stop (recording); returns what changed, for the reply."""
        c = self.controls
        if name in ("random", "next", "prev"):
            if name == "random":
                seed = random.randrange(MAX_SEED + 1)
            else:
                seed = (c.seed + (1 if name == "next" else -1)) % (MAX_SEED + 1)
            return {"version": self.update({"seed": seed}), "seed": seed}
        if name == "record":
            return {"recording": self.start_recording()}
        if name == "stop":
            path = self.stop_recording()
            return {"recorded": path.name if path else None}
        raise ControlError(f"unknown action {name!r} (known: random, next, prev, record, stop)")

    # -- recording -------------------------------------------------------------------------------
    def start_recording(self) -> str:
        """Start an MP4 in record_dir (named by the server, never by a client); its name."""
        with self._lock:
            if self.recording is not None:
                raise ControlError(f"already recording {self.recording.name}")
            if self.record_dir is None:
                raise ControlError("recording is off: this session has no record_dir")
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path = self.record_dir / f"live-{stamp}-{secrets.token_hex(3)}.mp4"
            try:
                self.recording = Recording(path, self.controls.fps, self.audio)
            except OSError as e:  # a folder gone or unwritable since the start, a name too long, a full disk
                raise OutputError(f"cannot record into {self.record_dir}: {e.strerror or e}") from None
            return self.recording.name

    def stop_recording(self) -> Path | None:
        with self._lock:
            rec, self.recording = self.recording, None
        if rec is None:
            raise ControlError("not recording")
        path = rec.stop()
        if path is not None:
            self.recordings[path.name] = path
        return path

    # -- the render loop -------------------------------------------------------------------------
    def start(self) -> "LiveSession":
        """Render on a thread of the session's own; the caller goes on (embedding, tests). See also run()."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="sg3rt-live-render", daemon=True)
            self._thread.start()
        return self

    def run(self) -> None:
        """Render on the calling thread until stop() or close() from another thread, or an interrupt (raised
        here once the loop has stopped: encoder finished, stream closed). A failing runtime is kept in `error`
        (the pages show it) and run() returns.

        Why a caller's thread: the CPU thread pools (PyTorch's OpenMP and the numba kernels') belong to the
        thread that calls into them, and a second thread's calls wake theirs the slow way: on 2 cores, frames
        rendered on another thread than the one that opened the runtime took about 10 % longer. `sg3rt live`
        renders on its main thread and serves the pages from another."""
        if self._thread is not None:
            raise RuntimeError("this session already renders on its own thread (start())")
        self._loop()

    def stop(self) -> None:
        """End the render loop after the frame in hand (from any thread); run() then returns."""
        self._stop.set()
        self._wake.set()

    def render_frame(self, controls: Controls, clocks: Clocks) -> np.ndarray:  # [height, size, 3] uint8
        ws, transform = self.scene.inputs(controls, clocks)
        rgb = self.runtime.frames(ws, transform).numpy()[0]  # [H, W, C]
        if rgb.shape[2] == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        if rgb.shape[:2] != (self.height, self.size):
            from PIL import Image

            rgb = np.asarray(Image.fromarray(rgb[..., :3]).resize((self.size, self.height), Image.BILINEAR))
        return np.ascontiguousarray(rgb[..., :3])

    def _publish(self, rgb: np.ndarray, quality: int, seq: int, version: int, t0: float,
                 audio_clock: float | None = None) -> None:
        """On the encoder thread: JPEG, stats, recording, then the frame goes out."""
        jpeg = encode_jpeg(rgb, quality)
        now = time.monotonic()
        self._note(now, (now - t0) * 1000)
        rec = self.recording
        if rec is not None:
            rec.add(rgb, now, audio_clock)
        self.stream.publish(Frame(seq, version, now, jpeg, rgb, (now - t0) * 1000))

    def _loop(self) -> None:
        clocks, seq = Clocks(), 0
        last = next_due = time.monotonic()
        # Frame k is encoded (Pillow releases the GIL) while frame k + 1 renders: one encode in flight at most.
        encoder, encoding = ThreadPoolExecutor(1, thread_name_prefix="sg3rt-live-encode"), None
        try:
            while not self._stop.is_set():
                controls, version = self._state  # one read: the version is exactly that of these controls
                t0 = time.monotonic()
                clocks = self.clocks = clocks.advance(controls, min(t0 - last, MAX_DT), self.audio)
                last = t0
                rgb = self.render_frame(controls, clocks)
                seq += 1
                if encoding is not None:
                    encoding.result()  # (re-raises an encoder failure here)
                sound = None if self.audio is None else self.audio.sound_clock(clocks.audio, controls.paused)
                encoding = encoder.submit(self._publish, rgb, controls.quality, seq, version, t0, sound)
                now = time.monotonic()
                # Pace: aim at a fixed period; after a slow frame start again from now (never a burst to catch up).
                next_due = max(next_due + 1.0 / controls.fps, now)
                if self._wake.wait(max(0.0, next_due - time.monotonic())):
                    # A control changed: show it early, but never sooner than EARLY_FRACTION of a period after
                    # the last frame started (a dragged slider must not run the loop past its target rate).
                    self._wake.clear()
                    self._stop.wait(max(0.0, t0 + EARLY_FRACTION / controls.fps - time.monotonic()))
                    next_due = time.monotonic()
            if encoding is not None:
                encoding.result()
        except Exception as e:  # the loop's failure is kept for close() and the HUD; the server stays up
            self.error = e
        finally:  # an interrupt (run() on the main thread) goes on up from here, the stream closed
            encoder.shutdown(wait=True)
            self.stream.close()

    def _note(self, now: float, ms: float) -> None:
        self._times = (self._times + [now])[-STATS_WINDOW:]
        self._ms = (self._ms + [ms])[-STATS_WINDOW:]

    def stats(self) -> Stats:
        times, ms = self._times, self._ms
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        rt = self.runtime
        latest = self.stream.latest
        rec = self.recording
        return Stats(round(fps, 2), round(sum(ms) / len(ms), 2) if ms else 0.0, latest.seq if latest else 0,
                     rt.backend, str(rt.device), rt.precision, rt.img_resolution, self.size, rt.kind,
                     rec.name if rec else None,
                     round(self.audio.position(self.clocks.audio), 3) if self.audio is not None else None)

    def close(self) -> Path | None:
        """Stop the loop and finish a recording in progress (playable); that recording's path, if any."""
        self.stop()
        if self._thread is not None:
            self._thread.join()
        self.stream.close()
        path = None
        if self.recording is not None:
            path = self.stop_recording()
        return path

    def __enter__(self) -> "LiveSession":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """[H, W, 3] uint8 -> JPEG bytes (Pillow's libjpeg-turbo; a few ms at 512 px)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()
