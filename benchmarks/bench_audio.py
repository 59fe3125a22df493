"""What does audio reactivity cost? Feature extraction per minute of audio, and a render with --audio vs the same
render without it.

    python benchmarks/bench_audio.py [--network NET] [--minutes 1,3] [--seconds 8] [--fps 15] [--repeats 3]

1. Features: a synthetic track (clicks at 120 bpm over a chord that changes every bar, a little noise),
   written as WAV; timed: decoding through the shipped ffmpeg (read_audio) and AudioFeatures.from_signal
   (STFT, HPSS, onsets, chroma, beats), each the median of --repeats after one warm-up (the first call
   compiles librosa's numba kernels: reported apart, as `first_call_s`).
2. Render: the same frames (--seconds of a --seconds track at --fps) rendered to MP4 without audio, and
   with the track (features computed once beforehand and reported apart, reactions applied per frame,
   the sound muxed in at close). Plain and audio runs alternate; the ratio is the median of paired ratios.
The audio's own parts are also timed apart (the network's noise left out): the reactions (Animation.inputs
of every frame with vs without audio) and adding the sound at close (writing the same still frames with vs
without the track). Prints a table and writes benchmarks/results/audio_<device>.json, with the machine's load average before and
after (the machine may be shared).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from refdata import reference_file  # noqa: E402

from sg3rt import __version__  # noqa: E402
from sg3rt.animate import Animation, AudioFeatures, AudioReaction, PathSpec, open_writer, read_audio, render  # noqa: E402
from sg3rt.animate.audio import SAMPLE_RATE  # noqa: E402
from sg3rt.fileio import write_json  # noqa: E402
from sg3rt.runtime import open_generator  # noqa: E402

SR = 44100  # Hz of the synthetic track (CD rate: read_audio resamples it, as it would a real file)
CHORDS = ((261.63, 329.63, 392.0), (220.0, 261.63, 329.63), (174.61, 220.0, 261.63), (196.0, 246.94, 293.66))  # C Am F G


def synthetic_track(seconds: float, bpm: float = 120.0) -> np.ndarray:  # [S] float in [-1, 1]
    """Clicks on every beat over a chord that changes every bar (4 beats), plus quiet noise."""
    rng = np.random.RandomState(0)
    t = np.arange(int(seconds * SR)) / SR
    bar = 4 * 60.0 / bpm
    y = 0.01 * rng.randn(len(t))
    for k, chord in enumerate(CHORDS * int(np.ceil(seconds / bar / len(CHORDS)) + 1)):
        a, b = int(k * bar * SR), min(len(t), int((k + 1) * bar * SR))
        if a >= len(t):
            break
        y[a:b] += sum(0.15 * np.sin(2 * np.pi * f * t[a:b]) for f in chord)
    n = int(0.01 * SR)
    burst = np.exp(-np.arange(n) / (0.002 * SR)) * rng.uniform(-1, 1, n)
    for beat in np.arange(0.0, seconds - 0.02, 60.0 / bpm):
        i = int(beat * SR)
        y[i:i + n] += 0.6 * burst[: len(y) - i]
    return np.clip(y, -1, 1)


def write_wav(path: Path, y: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((y * 32767).astype("<i2").tobytes())
    return path


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default=str(reference_file("sg2_64.pkl")),
                    help="network file (default: tests/data/sg2_64.pkl; 'default' = the embedded network)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--minutes", default="1,3", help="track lengths for the feature timing, minutes")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of the rendered clip")
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/audio_<device>.json)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="sg3rt-bench-audio-"))
    feature_rows, render_row = [], {}
    try:
        # 1. Features per minute of audio.
        first_call = None
        for minutes in (float(m) for m in args.minutes.split(",")):
            track = write_wav(tmp / f"track_{minutes:g}.wav", synthetic_track(60 * minutes))
            if first_call is None:
                first_call, _ = timed(lambda: AudioFeatures.from_signal(read_audio(track)[: SAMPLE_RATE * 5],
                                                                        SAMPLE_RATE, args.fps))
            t_read, t_feat = [], []
            for _ in range(args.repeats):
                dt, y = timed(lambda: read_audio(track))
                t_read.append(dt)
                dt, f = timed(lambda: AudioFeatures.from_signal(y, SAMPLE_RATE, args.fps))
                t_feat.append(dt)
            r, e = statistics.median(t_read), statistics.median(t_feat)
            feature_rows.append({"minutes": minutes, "decode_s": r, "features_s": e, "per_minute_s": (r + e) / minutes,
                                 "realtime_factor": 60 * minutes / (r + e), "tempo_bpm": f.tempo,
                                 "runs": {"decode_s": t_read, "features_s": t_feat}})

        # 2. Render overhead.
        runtime = open_generator(None if args.network == "default" else args.network, device=args.device)
        track = write_wav(tmp / "clip.wav", synthetic_track(args.seconds))
        t_features, features = timed(lambda: AudioFeatures.from_file(track, args.fps))
        frames = features.num_frames
        spec = PathSpec("cubic", psi=0.7)
        plain = Animation(runtime, [0, 1, 2, 3], spec, args.fps, frames=frames)
        reactive = Animation(runtime, [0, 1, 2, 3], spec, args.fps, audio=features,
                             reaction=AudioReaction(pulse=0.5, pitch=0.3))
        out = tmp / "out.mp4"

        def run(anim: Animation, audio: Path | None) -> None:
            out.unlink(missing_ok=True)
            with open_writer(out, args.fps, audio=audio) as writer, \
                    contextlib.closing(render(runtime, anim, writer, args.batch)) as events:
                for _ in events:
                    pass

        def encode(audio: Path | None) -> None:  # the same still frames, with or without the sound
            with open_writer(tmp / "mux.mp4", args.fps, audio=audio) as writer:
                writer.write(np.zeros([frames, h, w, 3], np.uint8))

        h, w = plain.frame_size
        run(plain, None)  # warm-up
        t_plain, t_audio, t_in_plain, t_in_audio, t_mux = [], [], [], [], []
        every = np.arange(frames)
        for _ in range(args.repeats):
            t_plain.append(timed(lambda: run(plain, None))[0])
            t_audio.append(timed(lambda: run(reactive, track))[0])
            t_in_plain.append(timed(lambda: plain.inputs(every))[0])  # the network's inputs only: the reactions'
            t_in_audio.append(timed(lambda: reactive.inputs(every))[0])  # own cost, without the network's noise
            t_mux.append(timed(lambda: encode(track))[0] - timed(lambda: encode(None))[0])  # adding the sound at close
        p, a = statistics.median(t_plain), statistics.median(t_audio)
        render_row = {"network": args.network, "kind": runtime.kind, "frame_size": [h, w], "frames": frames,
                      "fps": args.fps, "features_s": t_features, "plain_s": p, "audio_s": a,
                      "ratio": statistics.median(y / x for x, y in zip(t_plain, t_audio)),
                      "overhead_per_frame_ms": 1000 * (a - p) / frames,
                      "inputs_plain_s": statistics.median(t_in_plain), "inputs_audio_s": statistics.median(t_in_audio),
                      "reaction_ms_per_frame": 1000 * (statistics.median(t_in_audio) - statistics.median(t_in_plain)) / frames,
                      "mux_s": statistics.median(t_mux),
                      "runs": {"plain_s": t_plain, "audio_s": t_audio, "mux_s": t_mux}}
        device = runtime.device.type
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()

    print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          f"(1 min); torch threads {torch.get_num_threads()}; medians of {args.repeats}")
    print(f"feature extraction (first call compiles numba kernels: {first_call:.2f} s for 5 s of audio)")
    print(f"{'minutes':>7} {'decode s':>9} {'features s':>11} {'s per minute':>13} {'x realtime':>11} {'tempo':>7}")
    for r in feature_rows:
        print(f"{r['minutes']:>7g} {r['decode_s']:>9.3f} {r['features_s']:>11.3f} {r['per_minute_s']:>13.3f} "
              f"{r['realtime_factor']:>11.1f} {r['tempo_bpm']:>7.2f}")
    rr = render_row
    print(f"render {rr['frames']} frames {rr['frame_size'][1]}x{rr['frame_size'][0]} at {rr['fps']:g} fps "
          f"({rr['kind']}, {rr['network']}); features computed once beforehand: {rr['features_s']:.3f} s")
    print(f"{'plain s':>8} {'audio s':>8} {'ratio':>6} {'overhead ms/frame':>18}")
    print(f"{rr['plain_s']:>8.3f} {rr['audio_s']:>8.3f} {rr['ratio']:>6.3f} {rr['overhead_per_frame_ms']:>18.2f}")
    print(f"audio's own parts: reactions {rr['reaction_ms_per_frame']:.3f} ms/frame (network inputs "
          f"{rr['inputs_plain_s']:.3f} s plain vs {rr['inputs_audio_s']:.3f} s reactive), adding the sound at close "
          f"{rr['mux_s']:.3f} s")
    result = {
        "benchmark": "audio", "sg3rt": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after,
        "threads": torch.get_num_threads(), "repeats": args.repeats, "first_call_s": first_call,
        "features": feature_rows, "render": render_row,
    }
    path = Path(args.out) if args.out else HERE / "results" / f"audio_{device}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
