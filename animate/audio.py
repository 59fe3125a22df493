"""Audio-reactive animation: a track -> per-frame features -> per-frame controls of the walk, pulse, pitch and motion.

Three steps, each computed once for the whole track (offline, so smoothing may look ahead):

1. `read_audio`: the ffmpeg sg3rt already ships decodes any file it can read to mono float32 PCM at
   SAMPLE_RATE. A missing, empty, corrupt, truncated (shorter than its WAV or FLAC header says), unsupported,
   too short or non-finite (NaN / inf samples) file is one InputError, before any frame renders.
2. `AudioFeatures.from_signal`: librosa features on one STFT (hop HOP), pooled into video frames
   (frame i covers [i / fps, (i + 1) / fps) seconds) and normalised to [0, 1]:
   - loudness: each frame's mean RMS in dBFS mapped linearly from (peak - RANGE_DB) .. peak to 0 .. 1, where
     peak is the loudest frame's (a whole track quieter than SILENCE_DB + RANGE_DB keeps its absolute
     level), then Gaussian-smoothed over SMOOTH_S;
   - percussive / harmonic: the same for the two parts of a median-filter HPSS (librosa.decompose.hpss) of
     the 128-band mel power spectrogram (8x cheaper than on the linear STFT), against the mix's mel level;
   - onset: spectral flux (librosa.onset.onset_strength) pooled by max, divided by its track maximum,
     gated off where the loudness is under ONSET_GATE, then an envelope: instant attack, exponential
     release over ONSET_RELEASE_S (the peak stays on the frame of the onset);
   - chroma: the 12 pitch classes (C, C#, .. B) of the mix (librosa.feature.chroma_stft,
     A4 = 440 Hz), each frame's strongest class = 1, zero in silence, smoothed over CHROMA_SMOOTH_S;
   - tempo and beats: librosa's dynamic-programming beat tracker; the tempo is then refined by a
     least-squares line through the beat times (the tracker's own estimate is quantised by the hop).
3. `AudioReaction.controls`: per-frame control values (walk phase, w scale, pitch blend, extra
   rotation, translation gain); `Animation(..., reaction=)` applies them to every frame.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .motion import Motion
from .paths import Timeline

SAMPLE_RATE = 22050  # Hz, mono: librosa's default rate; enough for onsets and chroma (pitch up to 11 kHz)
HOP = 256  # samples between feature frames (11.6 ms): several per video frame, fine tempo resolution
N_FFT = 2048  # STFT window (93 ms): 10.8 Hz bins, resolves pitch classes from about A3 up
HPSS_KERNEL = 31  # median filter length (mel bands / hops) of the harmonic-percussive split: 0.36 s of time
RANGE_DB = 40.0  # loudness dynamic range mapped to 0..1 below the track's peak
SILENCE_DB = -60.0  # dBFS treated as silence when the whole track is quiet
SMOOTH_S = 0.05  # Gaussian sigma (seconds) of loudness / percussive / harmonic
CHROMA_SMOOTH_S = 0.15  # Gaussian sigma (seconds) of the chroma
ONSET_RELEASE_S = 0.15  # time constant (seconds) of the onset envelope's decay
ONSET_GATE = 0.1  # loudness below which onsets fade out (noise in near-silence is no beat)
ONSET_FLOOR = 1.0  # flux (mean dB rise per band) under which a whole track counts as having no onsets
PITCH_SHARPNESS = 4.0  # pitch seed weights ~ chroma ** 4: the strongest class leads, neighbours' leakage fades
BEATS_PER_BAR = 4  # --loop-bars counts bars of 4 beats
MAX_BPM = 1000.0  # --bpm above this is no tempo (and its beat grid would not fit in memory)
TRUNCATED_S = 0.1  # seconds of audio missing from what a WAV / FLAC header promises that make the file truncated
BEAT_RAMP_S = 0.25  # seconds over which the extra rotation of one beat is turned (smoothstep)
BEAT_RELEASE_S = 0.2  # time constant (seconds) of the beat envelope that drives the translation gain
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
LIBROSA_HINT = "audio features need librosa: pip install 'sg3rt[audio]'"


def _librosa():
    try:
        import librosa
    except ImportError:
        raise InputError(LIBROSA_HINT) from None
    return librosa


# ------------------------------------------------------------------------------------------------
# Reading: any file ffmpeg decodes -> mono float32 PCM.


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, channels: int = 1) -> np.ndarray:
    """Decode the first audio stream of `path` with the shipped ffmpeg; one-line InputError if it cannot.
    -> float32 in [-1, 1]: [S] mono, or [S, channels] (ffmpeg mixes or duplicates channels as needed)."""
    import imageio_ffmpeg

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: audio file not found")
    if not path.is_file():
        raise InputError(f"{path}: is not a file (give an audio file: .wav, .mp3, .flac, ...)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: audio file is empty")
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(path),
           "-map", "0:a:0", "-vn", "-ac", str(channels), "-ar", str(sample_rate), "-f", "f32le", "pipe:1"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        reason = re.sub(r"^(\[[^\]]*\]\s*)+", "", lines[-1]) if lines else f"exit status {proc.returncode}"
        if any("matches no streams" in ln for ln in lines):
            reason = "it has no audio stream"
        raise InputError(f"{path}: cannot read audio ({reason})")
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    missing = _missing_seconds(path, len(samples) // channels / sample_rate)
    if missing is not None:
        raise InputError(f"{path}: the file is truncated: its header promises {missing[0]:.2f} s of audio, "
                         f"it holds {missing[1]:.2f} s")
    if len(samples) < channels:
        raise InputError(f"{path}: no audio samples (cannot read audio from this file)")
    if not np.isfinite(samples).all():
        raise InputError(f"{path}: the audio has NaN or infinite samples")
    return samples if channels == 1 else samples[: len(samples) // channels * channels].reshape(-1, channels)


def _missing_seconds(path: Path, decoded_s: float) -> tuple[float, float] | None:
    """(promised, held) seconds when a WAV or FLAC header promises more than TRUNCATED_S beyond what the file holds;
    None when complete, or when the format or header states no length. ffmpeg decodes a cut file without failing
    (it only warns "Packet corrupt", as it does for a valid streamed WAV whose header leaves the length open)."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":  # chunks up to "data"; held: the bytes actually there
            byte_rate = 0
            while len(chunk := fh.read(8)) == 8:
                kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
                if kind == b"data":
                    if not byte_rate or size in (0, 0xFFFFFFFF):  # a streamed WAV: the length is left open
                        return None
                    held = min(size, path.stat().st_size - fh.tell())
                    promised_s, held_s = size / byte_rate, held / byte_rate
                    return (promised_s, held_s) if promised_s - held_s > TRUNCATED_S else None
                body = fh.read(size + (size & 1))  # (chunks are padded to an even size)
                if kind == b"fmt " and len(body) >= 12:
                    byte_rate = int.from_bytes(body[8:12], "little")  # average bytes per second
            return None
        if head[:4] == b"fLaC" and head[4] & 0x7F == 0:  # STREAMINFO first: 20-bit rate, 36-bit total samples
            info = head[8:12] + fh.read(30)
            if len(info) < 18:
                return None
            bits = int.from_bytes(info[10:18], "big")
            rate, total = bits >> 44, bits & (2**36 - 1)
            if rate and total and total / rate - decoded_s > TRUNCATED_S:
                return total / rate, decoded_s
        return None


# ------------------------------------------------------------------------------------------------
# Features, one row per video frame.


def _frame_starts(num_hops: int, num_frames: int, fps: float, sr: int) -> np.ndarray:  # [T] first hop of each frame
    starts = np.ceil(np.arange(num_frames) / fps * sr / HOP).astype(np.int64)
    return np.clip(starts, 0, max(0, num_hops - 1))


def _pool(x: np.ndarray, starts: np.ndarray, how: str) -> np.ndarray:
    """Feature frames x [K, ...] -> video frames [T, ...] by mean or max over each frame's hops."""
    if how == "max":
        return np.maximum.reduceat(x, starts, axis=0)
    shape = (-1,) + (1,) * (x.ndim - 1)
    spans = np.diff(np.append(starts, len(x))).reshape(shape)  # hops per frame; 0: the frame takes its first hop
    return np.where(spans > 0, np.add.reduceat(x, starts, axis=0) / np.maximum(spans, 1), x[starts])


def _db_level(rms: np.ndarray, ref_db: float) -> np.ndarray:
    """RMS -> 0..1: linear in dB from ref_db - RANGE_DB (0) to ref_db (1)."""
    db = 20 * np.log10(np.maximum(rms, 1e-10))
    return np.clip((db - (ref_db - RANGE_DB)) / RANGE_DB, 0.0, 1.0)


def _smooth(x: np.ndarray, sigma_s: float, fps: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x, sigma_s * fps, axis=0, mode="nearest") if sigma_s * fps > 0.3 else x


def envelope(x: np.ndarray, release_s: float, fps: float) -> np.ndarray:  # [T] -> [T]
    """Instant attack, exponential release: e[i] = max(x[i], e[i - 1] * exp(-1 / (release_s * fps)))."""
    decay = math.exp(-1.0 / max(release_s * fps, 1e-9))
    out = np.empty_like(x, dtype=np.float64)
    level = 0.0
    for i, v in enumerate(x):
        level = max(float(v), level * decay)
        out[i] = level
    return out


def refine_tempo(beats: np.ndarray) -> float:
    """Beats per minute from a least-squares line through the beat times (0 with fewer than 2 beats)."""
    if len(beats) < 2:
        return 0.0
    period = np.polyfit(np.arange(len(beats)), beats, 1)[0]
    return 60.0 / period if period > 0 else 0.0


def _check_signal(y: np.ndarray, sr: int, where: str = "") -> None:
    """Samples the features can be computed from: finite, and at least one STFT window (N_FFT) long."""
    if not np.isfinite(y).all():
        raise InputError(f"{where}the audio has NaN or infinite samples")
    if len(y) < N_FFT:
        raise InputError(f"{where}the audio is too short to analyse: {len(y) / sr:.3f} s "
                         f"(at least {N_FFT / sr:.2f} s, one analysis window)")


@dataclass(frozen=True)
class AudioFeatures:
    """Per-video-frame features of one track, each in [0, 1] (see the module docstring for definitions)."""

    fps: float
    duration: float  # seconds of audio
    loudness: np.ndarray = field(repr=False)  # [T]
    onset: np.ndarray = field(repr=False)  # [T] onset envelope
    percussive: np.ndarray = field(repr=False)  # [T]
    harmonic: np.ndarray = field(repr=False)  # [T]
    chroma: np.ndarray = field(repr=False)  # [T, 12] C .. B
    tempo: float  # beats per minute (0 = no beat found)
    beats: np.ndarray = field(repr=False)  # [B] beat times, seconds
    onsets: np.ndarray = field(repr=False)  # [O] detected onset times, seconds

    @property
    def num_frames(self) -> int:
        return len(self.loudness)

    @classmethod
    def from_file(cls, path: str | Path, fps: float) -> "AudioFeatures":
        _librosa()  # the install hint before the decode
        y = read_audio(path)
        _check_signal(y, SAMPLE_RATE, f"{path}: ")
        return cls.from_signal(y, SAMPLE_RATE, fps)

    @classmethod
    def from_signal(cls, y: np.ndarray, sr: int, fps: float) -> "AudioFeatures":
        """Mono samples y [S] at `sr` Hz -> features of round(S / sr * fps) video frames."""
        librosa = _librosa()
        y = np.asarray(y, dtype=np.float32)
        assert y.ndim == 1, f"mono samples [S] expected, got {list(y.shape)}"
        if not fps > 0:
            raise InputError(f"--fps must be positive, got {fps}")
        _check_signal(y, sr)
        duration = len(y) / sr
        num_frames = max(1, round(duration * fps))
        mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))  # [bins, K]
        rms = librosa.feature.rms(S=mag, frame_length=N_FFT)[0]  # [K]
        starts = _frame_starts(mag.shape[1], num_frames, fps, sr)
        rms_f = _pool(rms, starts, "mean")  # [T]
        ref_db = max(20 * math.log10(max(float(rms_f.max()), 1e-10)), SILENCE_DB + RANGE_DB)  # the loudest frame
        mel = librosa.feature.melspectrogram(S=mag**2, sr=sr)  # [128, K] power
        flux = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr)  # [K]
        harm, perc = librosa.decompose.hpss(mel, kernel_size=HPSS_KERNEL)  # [128, K] each, soft (Wiener) masks
        chroma = librosa.feature.chroma_stft(S=mag**2, sr=sr, n_fft=N_FFT, tuning=0.0)  # [12, K], max 1 per frame
        chroma = chroma * (rms > 10 ** ((ref_db - RANGE_DB) / 20))  # no pitch in (relative) silence

        loud = _smooth(_db_level(rms_f, ref_db), SMOOTH_S, fps)
        # The parts' reference: the mix's loudest frame in the mel domain, raised as ref_db is for a quiet track.
        mel_peak = _pool(np.sqrt(mel.mean(axis=0)), starts, "mean").max()
        mel_ref = 20 * math.log10(max(float(mel_peak), 1e-10)) + ref_db - 20 * math.log10(max(float(rms_f.max()), 1e-10))
        level = {name: _db_level(_pool(np.sqrt(part.mean(axis=0)), starts, "mean"), mel_ref)
                 for name, part in (("percussive", perc), ("harmonic", harm))}
        gate = np.clip(_db_level(_pool(rms, starts, "max"), ref_db) / ONSET_GATE, 0.0, 1.0)
        onset = _pool(flux, starts, "max") / max(float(flux.max()), ONSET_FLOOR) * gate
        chroma_f = _smooth(_pool(chroma.T, starts, "mean"), CHROMA_SMOOTH_S, fps)  # [T, 12]
        chroma_f = chroma_f / np.maximum(chroma_f.max(axis=1, keepdims=True), 1e-6)

        if float(flux.max()) >= ONSET_FLOOR:
            tempo, beat_idx = librosa.beat.beat_track(onset_envelope=flux, sr=sr, hop_length=HOP)
            beats = librosa.frames_to_time(beat_idx, sr=sr, hop_length=HOP)
            onset_idx = librosa.onset.onset_detect(onset_envelope=flux, sr=sr, hop_length=HOP)
            onsets = librosa.frames_to_time(onset_idx, sr=sr, hop_length=HOP)
            tempo = refine_tempo(beats) or float(np.atleast_1d(tempo)[0])
        else:
            tempo, beats, onsets = 0.0, np.zeros(0), np.zeros(0)
        return cls(fps, duration, loud, envelope(onset, ONSET_RELEASE_S, fps),
                   _smooth(level["percussive"], SMOOTH_S, fps), _smooth(level["harmonic"], SMOOTH_S, fps),
                   np.clip(chroma_f, 0.0, 1.0), float(tempo), np.asarray(beats, dtype=np.float64),
                   np.asarray(onsets, dtype=np.float64))

    def fit(self, num_frames: int) -> "AudioFeatures":
        """The same features over exactly `num_frames` frames: cut, or padded with silence (zeros)."""
        def fit1(x: np.ndarray) -> np.ndarray:
            if len(x) >= num_frames:
                return x[:num_frames]
            return np.concatenate([x, np.zeros((num_frames - len(x),) + x.shape[1:], dtype=x.dtype)])

        return replace(self, **{f.name: fit1(getattr(self, f.name)) for f in fields(self)
                                if f.name in ("loudness", "onset", "percussive", "harmonic", "chroma")})

    def beat_grid(self, bpm: float | None = None) -> np.ndarray:  # [B] seconds
        """Beat times: the detected beats, or a grid at `bpm` from the first detected beat (else from 0)."""
        if bpm is None:
            return self.beats
        check_bpm(bpm)
        start = float(self.beats[0]) if len(self.beats) else 0.0
        length = max(self.duration, self.num_frames / self.fps)
        return start + np.arange(0, math.ceil((length - start) * bpm / 60) + 1) * 60.0 / bpm


def check_bpm(bpm: float) -> None:
    if not 0 < bpm <= MAX_BPM:  # (NaN fails too)
        raise InputError(f"--bpm must be a positive number up to {MAX_BPM:g}, got {bpm:g}")


# ------------------------------------------------------------------------------------------------
# Reactions: features -> per-frame controls.


@dataclass(frozen=True)
class Controls:
    """Per-frame control values [T] (pitch_weights [T, 12]) that an Animation applies."""

    speed: np.ndarray  # relative walk speed (1 = the path's own pace)
    phase: np.ndarray  # where each frame sits on the path (replaces the timeline's even phase)
    scale: np.ndarray  # w = w_avg + scale * (w - w_avg): the pulse (1 = unchanged)
    pitch_mix: np.ndarray  # 0..1: how much of w comes from the pitch seeds' blend
    pitch_weights: np.ndarray  # [T, 12] blend weights of the 12 pitch seeds: chroma ** PITCH_SHARPNESS, sum 1 (0 in silence)
    rotation: np.ndarray  # extra degrees of rotation (StyleGAN3), cumulative
    translate_gain: np.ndarray  # multiplies the translation curve's offsets


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


# The reactions' formulas, one place for the offline controls (arrays over frames) and live (one instant).

def walk_speed(amount: float, loudness: Any, onset: Any) -> Any:
    """Relative walk speed: (1 - amount) + amount * (loudness + onset) / 2 (loud or percussive: faster)."""
    return (1 - amount) + amount * (0.5 * (loudness + onset))


def pitch_blend(chroma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """chroma [..., 12] -> (weights [..., 12]: chroma ** PITCH_SHARPNESS summing to 1, has_pitch [...]: not silent)."""
    sharp = chroma ** PITCH_SHARPNESS
    total = sharp.sum(axis=-1, keepdims=True)
    weights = np.where(total > 0, sharp / np.where(total > 0, total, 1), 0.0)
    return weights, total[..., 0] > 0


def beat_turns(t: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Beats turned through by times t (each eased in over BEAT_RAMP_S): rotation = rotate * turns. O(T) memory."""
    turns = np.zeros(np.shape(t))
    for beat in beats:
        turns += _smoothstep((t - beat) / BEAT_RAMP_S)
    return turns


def beat_envelope(t: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """1 on a beat, decaying over BEAT_RELEASE_S; 0 before the first beat (t and the result: same shape)."""
    t = np.asarray(t, dtype=np.float64)
    last = np.searchsorted(beats, t, side="right") - 1  # the latest beat at or before each time
    since = t - beats[np.maximum(last, 0)] if len(beats) else np.full(t.shape, np.inf)
    return np.where(last >= 0, np.exp(-since / BEAT_RELEASE_S), 0.0)


def _warp(speed: np.ndarray, timeline: Timeline) -> np.ndarray:  # [T] phase, same ends as the timeline's
    """Phase advancing by `speed` per frame, scaled so that the path ends where the timeline's would."""
    cum = np.concatenate([[0.0], np.cumsum(speed)])  # cum[i] = distance before frame i
    end = cum[-1] if timeline.loop else cum[-2]
    if end <= 0:
        return timeline.phase(np.arange(timeline.num_frames))
    return cum[:-1] / end


def _bar_loops(speed: np.ndarray, fps: float, start: float, loop_s: float) -> np.ndarray:  # [T] phase
    """Phase that grows by exactly 1 per loop of loop_s seconds from `start` (a beat), however the speed varies
    inside each loop: every loop closes on its beat."""
    t = np.arange(len(speed) + 1) / fps  # frame edges
    dist = np.concatenate([[0.0], np.cumsum(speed)])  # walked distance at each edge

    def walked(at: np.ndarray) -> np.ndarray:  # distance at any time, continued at the edge speeds outside
        lo, hi = speed[0] * fps, speed[-1] * fps
        return np.where(at < 0, at * lo, np.where(at > t[-1], dist[-1] + (at - t[-1]) * hi, np.interp(at, t, dist)))

    frame_t = t[:-1]
    k = np.floor((frame_t - start) / loop_s)
    a, b = start + k * loop_s, start + (k + 1) * loop_s
    span = walked(b) - walked(a)
    frac = np.where(span > 0, (walked(frame_t) - walked(a)) / np.where(span > 0, span, 1), (frame_t - a) / loop_s)
    return k + frac - np.floor((0 - start) / loop_s)  # the first frame's loop counts as loop 0


@dataclass(frozen=True)
class AudioReaction:
    """How much each feature moves the video: 0 turns a reaction off. Defaults: a walk that speeds up
    with the music and pulses on onsets; pitch and motion reactions are opt-in."""

    speed: float = 0.5  # walk speed: 0 = even pace; 1 = the path stands still in silence, runs on loud/percussive frames
    pulse: float = 0.3  # w pushed away from w_avg by this fraction at a full onset
    loudness: float = 0.0  # w pushed away from w_avg by this fraction at full loudness (psi rising with it)
    pitch: float = 0.0  # 0..1: share of w taken from the chroma-weighted blend of 12 pitch seeds
    pitch_seeds: tuple[int, ...] | None = None  # 12 seeds for C .. B; None = 12 seeds after the first keyframe
    rotate: float = 0.0  # degrees turned on each beat (StyleGAN3), smoothstep over BEAT_RAMP_S
    translate: float = 0.0  # translation curve amplitude gain on a beat: amplitude * (1 + translate * beat envelope)
    bpm: float | None = None  # beat grid tempo; None = the detected beats
    loop_bars: int | None = None  # the path loops once every N bars (4 beats each), closing on a beat

    KEYS = ("speed", "pulse", "loudness", "pitch", "rotate", "translate", "bpm", "loop_bars", "pitch_seeds")

    def __post_init__(self) -> None:
        for name in ("speed", "pitch"):
            v = getattr(self, name)
            if not (0.0 <= v <= 1.0):
                raise InputError(f"--react {name}={v}: must be between 0 and 1")
        for name in ("pulse", "loudness", "rotate", "translate"):
            v = getattr(self, name)
            if not math.isfinite(v) or (name != "rotate" and v < 0):
                raise InputError(f"--react {name}={v}: must be a finite number" + ("" if name == "rotate" else " >= 0"))
        if self.bpm is not None:
            check_bpm(self.bpm)
        if self.loop_bars is not None and self.loop_bars < 1:
            raise InputError(f"--loop-bars must be at least 1, got {self.loop_bars}")
        if self.pitch_seeds is not None and len(self.pitch_seeds) != 12:
            raise InputError(f"pitch_seeds needs 12 seeds (C .. B), got {len(self.pitch_seeds)}")

    @classmethod
    def parse(cls, text: str | None, **extra: Any) -> "AudioReaction":
        """'speed=0.8,pulse=0.5,pitch=0.4,rotate=10' (unnamed keys keep their defaults) -> AudioReaction."""
        values: dict[str, Any] = dict(extra)
        given: set[str] = set()
        for item in (text or "").split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in cls.KEYS or key in ("bpm", "loop_bars", "pitch_seeds"):
                raise InputError(f"bad --react {item.strip()!r}: use NAME=AMOUNT with NAME one of "
                                 "speed, pulse, loudness, pitch, rotate, translate (e.g. speed=0.8,pulse=0.5)")
            try:
                values[key] = float(value)
            except ValueError:
                raise InputError(f"bad --react {item.strip()!r}: the amount must be a number") from None
            if key in given:
                raise InputError(f"--react names {key} twice: give each reaction once")
            given.add(key)
        return cls(**values)

    @property
    def moves(self) -> bool:
        """Whether the reaction adds motion (which only StyleGAN3 has)."""
        return self.rotate != 0 or self.translate != 0

    def controls(self, features: AudioFeatures, timeline: Timeline) -> Controls:
        """Per-frame controls for the timeline's frames (features cut or padded with silence to fit)."""
        f = features.fit(timeline.num_frames)
        fps, n = f.fps, timeline.num_frames
        speed = walk_speed(self.speed, f.loudness, f.onset)
        if self.loop_bars is not None:
            if not timeline.loop:
                raise InputError("--loop-bars needs a looping path: drop --no-loop")
            bpm = self.bpm or f.tempo
            if not bpm > 0:
                raise InputError("no beat found in the audio: give --bpm for --loop-bars")
            beats = f.beat_grid(self.bpm)
            start = float(beats[0]) if len(beats) else 0.0
            phase = _bar_loops(speed, fps, start, self.loop_bars * BEATS_PER_BAR * 60.0 / bpm)
        else:
            phase = _warp(speed, timeline)
        weights, has_pitch = pitch_blend(f.chroma)  # [T, 12], [T]
        t = np.arange(n) / fps
        beats = f.beat_grid(self.bpm)
        return Controls(speed, phase, self.w_scale(f.onset, f.loudness), self.pitch * has_pitch, weights,
                        self.rotate * beat_turns(t, beats), 1.0 + self.translate * beat_envelope(t, beats))

    def w_scale(self, onset: Any, loudness: Any) -> Any:
        """w = w_avg + scale * (w - w_avg): the pulse on onsets and the push with loudness (1 = unchanged)."""
        return 1.0 + self.pulse * onset + self.loudness * loudness

    def pitch_seed_list(self, first_seed: int | None) -> list[int]:
        if self.pitch_seeds is not None:
            return list(self.pitch_seeds)
        base = 0 if first_seed is None else first_seed
        return [base + 1 + k for k in range(12)]


@dataclass(frozen=True)
class WarpedTimeline(Timeline):
    """A timeline whose frames sit at given phases (an audio-driven walk) instead of evenly spaced ones."""

    phases: np.ndarray = field(default=None, compare=False, repr=False)  # [num_frames]

    def phase(self, frames: np.ndarray) -> np.ndarray:
        return self.phases[np.asarray(frames, dtype=np.int64)]


class ReactiveFrames:
    """Applies an AudioReaction's controls to the path's ws and the motion's transforms of any frames."""

    def __init__(self, runtime: Any, reaction: AudioReaction, features: AudioFeatures, timeline: Timeline,
                 pitch_ws: torch.Tensor | None):
        self.reaction, self.features = reaction, features.fit(timeline.num_frames)
        self.controls = reaction.controls(features, timeline)
        self.timeline = WarpedTimeline(timeline.num_frames, timeline.transitions, timeline.loop, self.controls.phase)
        self.w_avg = runtime.w_avg  # [w_dim]
        self.pitch_ws = pitch_ws  # [12, num_ws, w_dim] | None

    def ws(self, ws: torch.Tensor, frames: np.ndarray) -> torch.Tensor:
        """ws [F, tiles, num_ws, w_dim] of the path -> with pitch blend and pulse applied."""
        assert ws.ndim == 4 and ws.shape[0] == len(frames), f"ws [F, tiles, num_ws, w_dim], got {list(ws.shape)}"
        c, idx = self.controls, np.asarray(frames, dtype=np.int64)

        def per_frame(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x, dtype=ws.dtype, device=ws.device)

        if self.pitch_ws is not None and self.reaction.pitch > 0:
            blend = torch.einsum("fk,kld->fld", per_frame(c.pitch_weights[idx]), self.pitch_ws.to(ws))  # [F, num_ws, w_dim]
            mix = per_frame(c.pitch_mix[idx]).reshape(-1, 1, 1, 1)
            ws = ws * (1 - mix) + blend[:, None] * mix
        scale = per_frame(c.scale[idx]).reshape(-1, 1, 1, 1)
        w_avg = self.w_avg.to(ws)
        return w_avg + scale * (ws - w_avg)

    def transforms(self, motion: Motion, frames: np.ndarray, fps: float) -> torch.Tensor:  # [F, 3, 3] float32
        """The motion's transforms with the beat's extra rotation and translation gain."""
        from ..networks import input_transform

        idx = np.asarray(frames, dtype=np.int64)
        phase = self.timeline.phase(idx)
        angles = motion.angles(idx, phase, fps) + self.controls.rotation[idx]
        shift = np.zeros([len(idx), 2])
        if motion.translate is not None:
            shift = motion.translate.offsets(phase)
            if not motion.translate.fixed:
                shift = shift * self.controls.translate_gain[idx, None]
        return input_transform(torch.from_numpy(angles), torch.from_numpy(shift)).reshape(-1, 3, 3)


# ------------------------------------------------------------------------------------------------
# What drives what: features and controls over time, as one PNG.

PLOT_WIDTH = 1200  # pixels of the time axis
PLOT_LANE = 56  # pixels per curve
PLOT_LABEL = 110  # pixels left of the curves for their names
PLOT_COLOURS = {"features": (40, 110, 200), "controls": (210, 90, 30), "beat": (150, 150, 150)}


def plot_reaction(path: str | Path, features: AudioFeatures, controls: Controls) -> None:
    """A PNG with one lane per feature (blue), the chroma as a 12-row heat map, and one lane per control
    (orange) over the video's frames; grey ticks mark the beats. Drawn with Pillow: no plotting library."""
    from PIL import Image, ImageDraw

    from ..fileio import write_png

    n = len(controls.phase)
    f = features.fit(n)
    phase_step = np.diff(controls.phase, prepend=controls.phase[:1])  # how far the path moves into each frame
    lanes: list[tuple[str, np.ndarray | None, str]] = [
        ("loudness", f.loudness, "features"), ("onset", f.onset, "features"), ("percussive", f.percussive, "features"),
        ("harmonic", f.harmonic, "features"), ("chroma", None, "features"),
        ("walk speed", controls.speed, "controls"), ("path step", phase_step, "controls"),
        ("pulse scale", controls.scale, "controls"), ("pitch mix", controls.pitch_mix, "controls"),
        ("rotation", controls.rotation, "controls"), ("translate gain", controls.translate_gain, "controls")]
    chroma_h = 12 * 6
    height = sum(chroma_h if values is None else PLOT_LANE for _, values, _ in lanes) + 30
    image = Image.new("RGB", (PLOT_LABEL + PLOT_WIDTH + 10, height), "white")
    draw = ImageDraw.Draw(image)
    x = PLOT_LABEL + np.arange(n) * (PLOT_WIDTH - 1) / max(n - 1, 1)
    y0 = 5
    for name, values, kind in lanes:
        h = chroma_h if values is None else PLOT_LANE
        draw.rectangle([PLOT_LABEL, y0, PLOT_LABEL + PLOT_WIDTH, y0 + h - 4], outline=(220, 220, 220))
        for beat in features.beat_grid(None):
            bx = PLOT_LABEL + beat * features.fps * (PLOT_WIDTH - 1) / max(n - 1, 1)
            if bx <= PLOT_LABEL + PLOT_WIDTH:
                draw.line([bx, y0, bx, y0 + h - 4], fill=PLOT_COLOURS["beat"])
        if values is None:
            heat = (255 * (1 - f.chroma.T[::-1])).astype(np.uint8)  # [12, T]: B at the top, C at the bottom
            strip = Image.fromarray(heat, "L").resize((PLOT_WIDTH, chroma_h - 4), Image.NEAREST)
            image.paste(strip.convert("RGB"), (PLOT_LABEL, y0))
            draw.text((4, y0 + 2), "chroma B..C", fill="black")
        else:
            lo, hi = float(np.min(values)), float(np.max(values))
            span = hi - lo if hi > lo else 1.0
            ys = y0 + (h - 6) - (values - lo) / span * (h - 10)
            draw.line(list(zip(x.tolist(), ys.tolist())), fill=PLOT_COLOURS[kind], width=1)
            draw.text((4, y0 + 2), name, fill="black")
            draw.text((4, y0 + 16), f"{lo:.3g}..{hi:.3g}", fill=(100, 100, 100))
        y0 += h
    draw.text((PLOT_LABEL, y0 + 4), f"{n} frames, {n / features.fps:.2f} s, tempo {features.tempo:.1f} bpm; "
              "blue: features, orange: controls, grey: beats", fill="black")
    write_png(path, np.asarray(image))
