"""A sound track played in sync with a live session: features computed once, looked up at the audio clock.

The offline reactions (animate/audio.py) see the whole track; live, each frame only asks "what does the
music do at t seconds?". `LiveAudio` answers from features computed once at start at a fixed control
rate, so a frame's reaction depends only on the audio clock (deterministic, testable without timing).
The track loops: the audio clock counts seconds since playback start and the track position is that
clock modulo the track's duration.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from ..animate.audio import (AudioFeatures, AudioReaction, beat_envelope, beat_turns, pitch_blend, read_audio,
                             walk_speed)

AUDIO_CONTROL_FPS = 100.0  # feature frames per second of audio: 10 ms steps, finer than any live frame rate
RECORD_SAMPLE_RATE = 48000  # Hz, stereo: the sound of live recordings (the analysis runs on a mono 22.05 kHz copy)


@dataclass(frozen=True)
class AudioState:
    """What the music does at one audio clock reading (the reactions' inputs, already scaled by their amounts)."""

    position: float  # seconds into the track (the clock modulo the duration)
    walk_rate: float  # multiplies the walk speed: (1 - speed) + speed * (loudness + onset) / 2
    scale: float  # w = w_avg + scale * (w - w_avg): 1 + pulse * onset + loudness * loudness
    pitch_mix: float  # 0..1 share of w from the pitch seeds' blend (0 in silence)
    pitch_weights: np.ndarray  # [12] blend weights of the 12 pitch seeds (sum 1, or all 0)
    rotation: float  # extra degrees (StyleGAN3), cumulative over beats and loops of the track
    translate_gain: float  # multiplies the translation curve's offsets


def reaction_state(r: AudioReaction, position: float, loudness: float, onset: float, chroma: np.ndarray,
                   turns: float, beat_env: float) -> AudioState:
    """The reactions at one instant from its features (chroma [12]), beats turned through and beat envelope:
    one formula for a file's features (LiveAudio) and a live input's (audio_in.LiveInput)."""
    weights, has_pitch = pitch_blend(chroma)  # [12], []
    return AudioState(position, float(walk_speed(r.speed, loudness, onset)), float(r.w_scale(onset, loudness)),
                      r.pitch if has_pitch else 0.0, weights, r.rotate * turns if r.rotate else 0.0,
                      1.0 + r.translate * beat_env if r.translate else 1.0)


class AudioSource(Protocol):
    """What a live session asks of its sound, a file (LiveAudio) or an input device (audio_in.LiveInput)."""

    reaction: AudioReaction
    page_track: Path | None  # a file the page plays in sync (None: nothing to play)

    def position(self, clock: float) -> float: ...  # seconds into the sound at the session's audio clock

    def walk_rate(self, clock: float) -> float: ...

    def at(self, clock: float) -> AudioState: ...

    def sound_clock(self, clock: float, paused: bool) -> float | None: ...  # what a recorded frame sounds from

    def begin_sound(self) -> None: ...  # a recording starts

    def soundtrack(self, clocks: Sequence[float | None], fps: float) -> np.ndarray: ...  # [S, 2] at RECORD_SAMPLE_RATE


class LiveAudio:
    """A track's features at AUDIO_CONTROL_FPS plus the reaction amounts; `at(clock)` -> AudioState."""

    def __init__(self, path: str | Path, features: AudioFeatures, reaction: AudioReaction):
        self.path = Path(path)
        self.features = features
        self.reaction = reaction
        self.duration = max(features.duration, 1.0 / features.fps)  # seconds of one loop (never 0)
        self.beats = features.beat_grid(reaction.bpm)  # [B] seconds
        self.beats = self.beats[self.beats < self.duration]
        self._pcm: np.ndarray | None = None  # [S, 2] the track at RECORD_SAMPLE_RATE, decoded on first recording

    @classmethod
    def open(cls, path: str | Path, react: str | None = None) -> "LiveAudio":
        """Read and analyse the file now (a bad file or --react fails here, in one line, before the network loads)."""
        reaction = AudioReaction.parse(react)
        return cls(path, AudioFeatures.from_file(path, AUDIO_CONTROL_FPS), reaction)

    def position(self, clock: float) -> float:
        return clock % self.duration

    def frame(self, clock: float) -> int:
        """The feature frame covering the track position (frame i covers [i / fps, (i + 1) / fps))."""
        return min(int(self.position(clock) * self.features.fps), self.features.num_frames - 1)

    def walk_rate(self, clock: float) -> float:
        f, i = self.features, self.frame(clock)
        return float(walk_speed(self.reaction.speed, f.loudness[i], f.onset[i]))

    @property
    def page_track(self) -> Path:
        return self.path

    def at(self, clock: float) -> AudioState:
        f, r, i = self.features, self.reaction, self.frame(clock)
        pos = self.position(clock)
        turns = 0.0
        if r.rotate:
            loops = math.floor(clock / self.duration)  # whole loops of the track: every beat of each turned
            turns = loops * len(self.beats) + float(beat_turns(pos, self.beats))
        env = float(beat_envelope(pos, self.beats)) if r.translate else 0.0
        return reaction_state(r, pos, float(f.loudness[i]), float(f.onset[i]), f.chroma[i], turns, env)

    def sound_clock(self, clock: float, paused: bool) -> float | None:
        """The page plays the track at the audio clock, and nothing while paused."""
        return None if paused else clock

    def begin_sound(self) -> None:
        """Nothing to do: the track is on disk."""

    def soundtrack(self, clocks: Sequence[float | None], fps: float) -> np.ndarray:  # [S, 2] float32
        """The sound of a recording whose video frame k showed audio clock clocks[k] (None: paused)."""
        if self._pcm is None:
            self._pcm = read_audio(self.path, RECORD_SAMPLE_RATE, channels=2)
        return slot_sound(self._pcm, RECORD_SAMPLE_RATE, clocks, fps)


def slot_sound(pcm: np.ndarray, sample_rate: int, clocks: Sequence[float | None], fps: float) -> np.ndarray:
    """Sound for video slots of 1/fps s: slot k plays the (looping) track pcm [N, C] from clocks[k] seconds, or
    silence where clocks[k] is None. A slot whose clock follows the previous one's by about a frame continues
    exactly where that one stopped (no clicks from rounding or render jitter); any other clock is a jump.
    -> [S, C] with S = round(len(clocks) * sample_rate / fps), the video's length."""
    assert pcm.ndim == 2 and len(pcm) > 0, pcm.shape
    bounds = np.round(np.arange(len(clocks) + 1) * sample_rate / fps).astype(np.int64)  # slot k: bounds[k]..bounds[k+1]
    out = np.zeros([int(bounds[-1]), pcm.shape[1]], dtype=np.float32)
    cursor, previous = 0, None  # next source sample (unwrapped), the previous slot's clock
    for k, clock in enumerate(clocks):
        if clock is None:
            previous = None
            continue
        if previous is None or abs(clock - previous - 1.0 / fps) > 0.5 / fps:
            cursor = int(round(clock * sample_rate))  # a jump (start, seek, resume after pause, slow frame)
        n = int(bounds[k + 1] - bounds[k])
        out[bounds[k] : bounds[k + 1]] = np.take(pcm, np.arange(cursor, cursor + n), axis=0, mode="wrap")
        cursor, previous = cursor + n, clock
    return out


def write_wav(path: str | Path, pcm: np.ndarray, sample_rate: int) -> None:
    """[S, C] float32 in [-1, 1] -> a 16-bit PCM WAV (the stdlib writer; an OSError propagates)."""
    data = (np.clip(pcm, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(pcm.shape[1])
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(data.tobytes())
