"""Causal audio features of a live stream: blocks of mono samples in, the latest loudness, onset, chroma and beats out.

The file path (animate/audio.py) sees a whole track and may look ahead; a live input only has the past. The
analyser keeps a short history and updates on every hop (HOP_S, as the file path's hop) of one window
(about WINDOW_S, a power of two at the stream's rate), with the file path's definitions made causal:
- loudness: the window's RMS in dBFS mapped linearly to 0..1 between a running floor and a running reference,
  so that a quiet room and a loud club both span the range: the reference is the loudest level heard, falling
  REF_RELEASE_DB_S dB per second but never below REF_FLOOR_DB (a room's hiss alone is not loud); the floor
  is the quietest, rising FLOOR_RISE_DB_S dB per second; the range is at most RANGE_DB (the file path's)
  and at least MIN_RANGE_DB; one-pole smoothed over SMOOTH_S;
- onset: spectral flux (mean rise in dB over the 128 mel bands, as librosa.onset.onset_strength) divided by
  its running maximum (released over FLUX_MAX_RELEASE_S, at least ONSET_FLOOR), gated in near-silence
  (ONSET_GATE), then the file path's envelope (instant attack, release over ONSET_RELEASE_S);
- chroma: the window's 12 pitch classes (librosa's chroma filters, A4 = 440 Hz), strongest = 1, zero under
  PITCH_GATE loudness (silence, hiss), one-pole smoothed over CHROMA_SMOOTH_S;
- tempo and beats: every TEMPO_UPDATE_S the autocorrelation of the last TEMPO_WINDOW_S of onset strength,
  weighted by a log-normal tempo prior (as librosa's tempo estimate), gives the beat period (refined between
  lags by a parabola); a comb over the same history gives the phase; the next beat is predicted from the
  latest one and each predicted beat is emitted once the stream reaches it.
Times are seconds of stream at the newest sample of a window: an onset shows within a hop (12 ms) of its
sound entering the window; loudness and chroma average the whole window (WINDOW_S); the capture adds its block.

No sound library here: `feed` takes numpy arrays, so tests drive it with synthetic signals block by block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..animate.audio import (CHROMA_SMOOTH_S, HOP, N_FFT, ONSET_FLOOR, ONSET_GATE, ONSET_RELEASE_S, RANGE_DB,
                             SAMPLE_RATE, SMOOTH_S, _librosa)

HOP_S = HOP / SAMPLE_RATE  # seconds between analysis frames (11.6 ms), as the file path's hop
WINDOW_S = N_FFT / SAMPLE_RATE  # seconds of one analysis window (93 ms), as the file path's STFT
REF_FLOOR_DB = -50.0  # dBFS: the loudness reference never falls below this (a room's hiss stays near 0)
REF_RELEASE_DB_S = 1.0  # dB per second the loudness reference falls after the loudest moment
FLOOR_RISE_DB_S = 0.5  # dB per second the loudness floor rises after the quietest moment
MIN_RANGE_DB = 20.0  # the loudness range never narrows below this (a steady tone does not flicker over 0..1)
PITCH_GATE = 0.1  # loudness under which a window has no pitch (silence, or noise near the floor)
FLUX_MAX_RELEASE_S = 10.0  # time constant of the running maximum that normalises the onset strength
CHROMA_FLOOR = 0.05  # smoothed chroma peak under which the window counts as having no pitch
TEMPO_WINDOW_S = 6.0  # seconds of onset strength the tempo and phase estimates look at
TEMPO_MIN_S = 2.0  # seconds of onset strength needed before a first tempo estimate
TEMPO_UPDATE_S = 0.25  # seconds between tempo / phase estimates
MIN_BPM, MAX_BPM = 50.0, 220.0  # tempo range searched
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 1.0  # log-normal tempo prior (librosa's start_bpm / std_bpm): settles octave doubt
MIN_PERIODICITY = 0.1  # the autocorrelation peak over the zero-lag energy under which no tempo is claimed
TEMPO_SMOOTH_S = 0.025  # Gaussian sigma (seconds) of the onset strength the autocorrelation sees: a peak
# between two lags still correlates (else sharp clicks favour the tempo whose period falls nearest a whole hop)
BEATS_KEPT = 16  # recent beat times kept in the features (older ones only count)
MEL_BANDS = 128  # as librosa.feature.melspectrogram's default
TOP_DB = 80.0  # log-mel floor below the window's peak (librosa.power_to_db's top_db)


@dataclass(frozen=True)
class StreamFeatures:
    """The analyser's latest reading (all in [0, 1] but tempo and times)."""

    time: float  # seconds of stream at the end of the latest window
    loudness: float
    onset: float  # onset envelope
    chroma: np.ndarray = field(repr=False)  # [12] C .. B, strongest = 1 (all 0: no pitch)
    tempo: float  # beats per minute (0 = none found yet)
    beats: np.ndarray = field(repr=False)  # [<= BEATS_KEPT] recent beat times, seconds of stream
    beat_count: int  # beats so far, those no longer in `beats` included

    @classmethod
    def silence(cls) -> "StreamFeatures":
        return cls(0.0, 0.0, 0.0, np.zeros(12), 0.0, np.zeros(0), 0)


class StreamAnalyser:
    """Mono blocks at `sample_rate` -> StreamFeatures (`latest`), one analysis frame per hop. Not thread-safe:
    one thread feeds it; others read `latest`, an immutable snapshot swapped whole."""

    def __init__(self, sample_rate: int):
        librosa = _librosa()
        if not sample_rate >= 4000:
            raise ValueError(f"sample rate {sample_rate} Hz is too low for the analysis")
        self.sr = int(sample_rate)
        self.n_fft = 2 ** round(math.log2(WINDOW_S * self.sr))  # the window at this rate (2048 at 22.05 kHz)
        self.hop = max(1, round(HOP_S * self.sr))
        self.hop_s = self.hop / self.sr
        self.window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa's STFT
        self.mel = librosa.filters.mel(sr=self.sr, n_fft=self.n_fft, n_mels=MEL_BANDS)  # [128, bins]
        self.chroma_fb = librosa.filters.chroma(sr=self.sr, n_fft=self.n_fft, tuning=0.0)  # [12, bins]
        self._buf = np.zeros(0, np.float32)  # samples not yet past (the first window is the first n_fft samples)
        self._frames = 0  # analysis frames so far
        self._ref_db = REF_FLOOR_DB
        self._floor_db = 0.0  # falls to the first level heard
        self._loud = 0.0
        self._flux_max = ONSET_FLOOR
        self._env = 0.0
        self._prev_logmel: np.ndarray | None = None
        self._chroma = np.zeros(12)
        self._history: list[float] = []  # onset strength per frame, the last TEMPO_WINDOW_S
        self._period = 0.0  # seconds per beat (0: no tempo)
        self._next_beat: float | None = None  # predicted time of the next beat
        self._beats: list[float] = []
        self._beat_count = 0
        self.latest = StreamFeatures.silence()

    # -- per frame -------------------------------------------------------------------------------
    def feed(self, block: np.ndarray) -> StreamFeatures:
        """Analyse the mono samples block [N] (any N); the latest features."""
        block = np.asarray(block, dtype=np.float32)
        assert block.ndim == 1, f"mono samples [N] expected, got {list(block.shape)}"
        buf = np.concatenate([self._buf, block])
        pos = 0
        while len(buf) - pos >= self.n_fft:
            self._frame(buf[pos : pos + self.n_fft])
            pos += self.hop
        self._buf = buf[pos:]
        return self.latest

    def _frame(self, x: np.ndarray) -> None:  # x [n_fft]
        self._frames += 1
        now = (self.n_fft + (self._frames - 1) * self.hop) / self.sr  # the window's end (newest sample), s of stream
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        power = np.abs(np.fft.rfft(x * self.window)) ** 2  # [bins]

        db = 20 * math.log10(max(rms, 1e-10))
        self._ref_db = max(db, self._ref_db - REF_RELEASE_DB_S * self.hop_s, REF_FLOOR_DB)
        self._floor_db = min(db, self._floor_db + FLOOR_RISE_DB_S * self.hop_s)
        bottom = min(max(self._floor_db, self._ref_db - RANGE_DB), self._ref_db - MIN_RANGE_DB)
        level = min(max((db - bottom) / (self._ref_db - bottom), 0.0), 1.0)
        self._loud += (level - self._loud) * (1 - math.exp(-self.hop_s / SMOOTH_S))

        logmel = 10 * np.log10(np.maximum(self.mel @ power, 1e-10))  # [128]
        logmel = np.maximum(logmel, logmel.max() - TOP_DB)
        flux = 0.0 if self._prev_logmel is None else float(np.mean(np.maximum(logmel - self._prev_logmel, 0.0)))
        self._prev_logmel = logmel
        self._flux_max = max(flux, self._flux_max * math.exp(-self.hop_s / FLUX_MAX_RELEASE_S), ONSET_FLOOR)
        onset = flux / self._flux_max * min(level / ONSET_GATE, 1.0)
        self._env = max(onset, self._env * math.exp(-self.hop_s / ONSET_RELEASE_S))

        chroma = self.chroma_fb @ power  # [12]
        chroma = np.zeros(12) if level < PITCH_GATE or chroma.max() <= 0 else chroma / chroma.max()
        self._chroma += (chroma - self._chroma) * (1 - math.exp(-self.hop_s / CHROMA_SMOOTH_S))
        peak = float(self._chroma.max())
        shown = self._chroma / peak if peak > CHROMA_FLOOR else np.zeros(12)

        self._history.append(onset)
        del self._history[: -round(TEMPO_WINDOW_S / self.hop_s)]
        if self._frames % max(1, round(TEMPO_UPDATE_S / self.hop_s)) == 0:
            self._estimate_beat(now)
        if self._next_beat is not None and now >= self._next_beat:  # a predicted beat reached
            self._emit(self._next_beat)
            self._next_beat += self._period
        self.latest = StreamFeatures(now, self._loud, self._env, shown, 60.0 / self._period if self._period else 0.0,
                                     np.array(self._beats), self._beat_count)

    # -- tempo and phase -------------------------------------------------------------------------
    def _estimate_beat(self, now: float) -> None:
        """Period from the history's autocorrelation, phase from a comb over it; predicts the next beat."""
        env = np.asarray(self._history)
        lags = np.arange(max(1, math.floor(60.0 / MAX_BPM / self.hop_s)), math.ceil(60.0 / MIN_BPM / self.hop_s) + 2)
        if len(env) * self.hop_s < TEMPO_MIN_S or len(env) < 2 * lags[-1]:
            return
        e = _gaussian(env, TEMPO_SMOOTH_S / self.hop_s)
        e = e - e.mean()
        energy = float(e @ e) / len(e)
        if energy <= 0:
            self._period, self._next_beat = 0.0, None
            return
        ac = np.array([e[lag:] @ e[:-lag] / (len(e) - lag) for lag in lags]) / energy  # [L] 1 = perfectly periodic
        bpm = 60.0 / (lags * self.hop_s)
        score = ac * np.exp(-0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
        k = int(np.argmax(score[1:-1])) + 1  # a peak with neighbours on both sides
        if ac[k] < MIN_PERIODICITY:
            self._period, self._next_beat = 0.0, None
            return
        a, b, c = ac[k - 1], ac[k], ac[k + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0  # the parabola's vertex
        period = (lags[k] + float(np.clip(shift, -0.5, 0.5))) * self.hop_s
        # Phase: the offset back from now whose comb of beats (one per period) collects the most onset strength.
        n, hops = len(env), period / self.hop_s
        offsets = np.arange(math.ceil(hops))
        back = offsets[:, None] + np.arange(int((n - 1) / hops) + 1)[None, :] * hops  # [P, K] hops back from the newest
        valid = back <= n - 1
        comb = np.where(valid, env[n - 1 - np.minimum(np.round(back), n - 1).astype(int)], 0.0).sum(axis=1)
        last = now - float(offsets[int(np.argmax(comb))]) * self.hop_s  # the latest beat
        if now - last < 0.5 * period and not self._near_emitted(last, period):
            self._emit(last)  # detected before its prediction came due (a first beat, or the phase moved)
        nxt = last + period * math.ceil((now - last) / period + 1e-9)
        if self._near_emitted(nxt, period):
            nxt += period  # the beat just emitted: no double beat when the phase estimate moves a little
        self._period, self._next_beat = period, nxt

    def _near_emitted(self, t: float, period: float) -> bool:
        return bool(self._beats) and abs(t - self._beats[-1]) < 0.5 * period

    def _emit(self, t: float) -> None:
        self._beats = (self._beats + [t])[-BEATS_KEPT:]
        self._beat_count += 1


def _gaussian(x: np.ndarray, sigma: float) -> np.ndarray:  # [N] -> [N]
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x.astype(np.float64), sigma, mode="nearest") if sigma > 0.3 else x.astype(np.float64)
