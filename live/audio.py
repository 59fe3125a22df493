"""A sound track played in sync with a live session: features computed once, looked up at the audio clock.

The offline reactions (animate/audio.py) see the whole track; live, each frame only asks "what does the
music do at t seconds?". `LiveAudio` answers from features computed once at start at a fixed control
rate, so a frame's reaction depends only on the audio clock (deterministic, testable without timing).
The track loops: the audio clock counts seconds since playback start and the track position is that
clock modulo the track's duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..animate.audio import AudioFeatures, AudioReaction, beat_envelope, beat_turns, pitch_blend, walk_speed

AUDIO_CONTROL_FPS = 100.0  # feature frames per second of audio: 10 ms steps, finer than any live frame rate


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


class LiveAudio:
    """A track's features at AUDIO_CONTROL_FPS plus the reaction amounts; `at(clock)` -> AudioState."""

    def __init__(self, path: str | Path, features: AudioFeatures, reaction: AudioReaction):
        self.path = Path(path)
        self.features = features
        self.reaction = reaction
        self.duration = max(features.duration, 1.0 / features.fps)  # seconds of one loop (never 0)
        self.beats = features.beat_grid(reaction.bpm)  # [B] seconds
        self.beats = self.beats[self.beats < self.duration]

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

    def at(self, clock: float) -> AudioState:
        f, r, i = self.features, self.reaction, self.frame(clock)
        pos = self.position(clock)
        weights, has_pitch = pitch_blend(f.chroma[i])  # [12], []
        rotation = 0.0
        if r.rotate:
            loops = math.floor(clock / self.duration)  # whole loops of the track: every beat of each turned
            rotation = r.rotate * (loops * len(self.beats) + float(beat_turns(pos, self.beats)))
        gain = 1.0 + r.translate * float(beat_envelope(pos, self.beats)) if r.translate else 1.0
        return AudioState(pos, self.walk_rate(clock), float(r.w_scale(float(f.onset[i]), float(f.loudness[i]))),
                          r.pitch if has_pitch else 0.0, weights, rotation, gain)
