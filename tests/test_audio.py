"""Audio-reactive video: features of synthetic signals with known structure, the reactions they drive, the
sound muxed into the video, and bad audio files refused in one line before any frame."""

from __future__ import annotations

import math
import subprocess
import sys
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from refdata import reference_file

pytest.importorskip("librosa", reason="the audio extra (librosa) is not installed")

from sg3rt import Animation, InputError, PathSpec  # noqa: E402
from sg3rt.animate import AudioFeatures, AudioReaction, Motion, Translation, open_writer, read_audio, render  # noqa: E402
from sg3rt.animate.audio import BEAT_RAMP_S, PITCH_CLASSES, SAMPLE_RATE, plot_reaction  # noqa: E402
from sg3rt.animate.seeds import seeds_to_z  # noqa: E402
from sg3rt.cli import app  # noqa: E402
from sg3rt.runtime import open_generator  # noqa: E402

runner = CliRunner()
SR = 44100  # Hz of the test files (read_audio resamples them to SAMPLE_RATE)
FPS = 30.0
BPM = 120.0
CLICK_START = 0.3  # seconds: the first click (not on a frame edge)


def write_wav(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    """Mono float samples in [-1, 1] -> 16-bit PCM WAV."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def click_track(seconds: float, bpm: float = BPM) -> tuple[np.ndarray, np.ndarray]:
    """(samples, click times): 10 ms noise bursts with a 2 ms decay, one per beat."""
    times = np.arange(CLICK_START, seconds - 0.05, 60.0 / bpm)
    y = np.zeros(int(seconds * SR))
    n = int(0.01 * SR)
    burst = np.exp(-np.arange(n) / (0.002 * SR)) * np.random.RandomState(0).uniform(-1, 1, n)
    for t in times:
        i = int(round(t * SR))
        y[i:i + n] += 0.8 * burst
    return y, times


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return 0.5 * np.sin(2 * np.pi * freq * t)


def pitch_class(freq: float) -> int:
    """0 = C .. 11 = B, A4 = 440 Hz."""
    return int(round(12 * np.log2(freq / 440.0) + 9)) % 12


@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    """(wav path, click times, features at FPS) of 8 s of clicks at 120 bpm."""
    y, times = click_track(8.0)
    path = write_wav(tmp_path_factory.mktemp("audio") / "clicks.wav", y)
    return path, times, AudioFeatures.from_file(path, FPS)


@pytest.fixture(scope="module")
def sg2():
    with open_generator(reference_file("sg2_64.pkl"), backend="torch", device="cpu") as runtime:
        yield runtime


# ------------------------------------------------------------------------------------------------
# Reading and features.


def test_read_audio_is_mono_float_at_the_fixed_rate(tmp_path):
    y = tone(440.0, 1.5)
    got = read_audio(write_wav(tmp_path / "a.wav", y))
    assert got.dtype == np.float32 and got.ndim == 1
    assert abs(len(got) - 1.5 * SAMPLE_RATE) <= 1  # resampled 44.1 -> 22.05 kHz
    assert abs(np.abs(got).max() - 0.5) < 0.02  # the level survives


def test_click_track_onsets_and_tempo(clicks):
    _, times, f = clicks
    assert f.num_frames == round(8.0 * FPS) and f.fps == FPS
    click_frames = np.floor(times * FPS)
    onset_frames = np.floor(f.onsets * FPS)
    assert len(onset_frames) == len(click_frames)  # one onset per click, no extras
    assert np.abs(onset_frames - click_frames).max() <= 1  # each within one frame of its click
    peaks = [i for i in range(1, f.num_frames - 1) if f.onset[i] > 0.5 and f.onset[i] >= f.onset[i - 1]
             and f.onset[i] > f.onset[i + 1]]  # the per-frame onset envelope peaks on the clicks too
    assert len(peaks) == len(click_frames) and np.abs(np.array(peaks) - click_frames).max() <= 1
    assert abs(f.tempo - BPM) < 1.0
    assert np.abs(np.diff(f.beats) - 0.5).max() < 0.03  # beats every half second
    for x in (f.loudness, f.onset, f.percussive, f.harmonic, f.chroma):
        assert x.min() >= 0 and x.max() <= 1 and len(x) == f.num_frames
    assert f.percussive.max() > 3 * f.harmonic.max()  # noise bursts are percussive


def test_silence_gives_no_features_and_no_pulse(tmp_path):
    f = AudioFeatures.from_file(write_wav(tmp_path / "silence.wav", np.zeros(2 * SR)), FPS)
    for x in (f.loudness, f.onset, f.percussive, f.harmonic, f.chroma):
        assert not x.any()
    assert f.tempo == 0 and len(f.beats) == 0 and len(f.onsets) == 0
    from sg3rt.animate.paths import Timeline

    timeline = Timeline.build(3, True, FPS, frames=f.num_frames)
    c = AudioReaction(pulse=1.0, loudness=1.0, pitch=1.0, rotate=30, translate=2).controls(f, timeline)
    assert np.all(c.scale == 1) and not c.pitch_mix.any() and not c.rotation.any() and np.all(c.translate_gain == 1)
    np.testing.assert_allclose(c.phase, timeline.phase(np.arange(f.num_frames)))  # even pace


@pytest.mark.parametrize("freq", [261.63, 440.0, 622.25])  # C4, A4, D#5
def test_pure_tone_chroma_picks_its_pitch_class(tmp_path, freq):
    f = AudioFeatures.from_file(write_wav(tmp_path / "tone.wav", tone(freq, 1.0)), FPS)
    inner = f.chroma[5:-5]  # [T, 12] away from the fade in and out
    assert np.all(inner.argmax(axis=1) == pitch_class(freq)), PITCH_CLASSES[pitch_class(freq)]
    assert np.all(inner.max(axis=1) == 1.0)
    assert f.harmonic[5:-5].min() > 0.9 > f.percussive[5:-5].max()  # a steady tone is harmonic


def test_sine_sweep_chroma_follows_the_pitch(tmp_path):
    seconds, f0, f1 = 4.0, 220.0, 880.0  # two octaves, exponential: a semitone every 1/6 s
    t = np.arange(int(seconds * SR)) / SR
    k = np.log(f1 / f0) / seconds
    y = 0.5 * np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)
    f = AudioFeatures.from_file(write_wav(tmp_path / "sweep.wav", y), FPS)
    frames = np.arange(10, f.num_frames - 10)
    want = np.array([pitch_class(f0 * np.exp(k * (i + 0.5) / FPS)) for i in frames])
    got = f.chroma[frames].argmax(axis=1)
    off = np.minimum((got - want) % 12, (want - got) % 12)
    assert np.all(off <= 1) and np.mean(off == 0) > 0.7  # the right class, or a neighbour during the glide
    assert f.loudness[frames].min() > 0.9  # a steady level


# ------------------------------------------------------------------------------------------------
# Reactions.


def steps(anim: Animation) -> np.ndarray:  # [T - 1] distance in W between consecutive frames
    ws, _ = anim.inputs(np.arange(anim.num_frames))
    return (ws[1:] - ws[:-1]).double().norm(dim=(1, 2)).numpy()


def test_latent_step_follows_onset_strength(sg2, clicks):
    _, _, f = clicks
    reactive = steps(Animation(sg2, [0, 1, 2], PathSpec("linear"), FPS, audio=f, reaction=AudioReaction(speed=1, pulse=0)))
    even = steps(Animation(sg2, [0, 1, 2], PathSpec("linear"), FPS, audio=f, reaction=AudioReaction(speed=0, pulse=0)))
    onset = f.onset[:-1]
    assert np.corrcoef(reactive, onset)[0, 1] > 0.8
    assert abs(np.corrcoef(even, onset)[0, 1]) < 0.3  # without the reaction the walk ignores the clicks
    assert len(reactive) == f.num_frames - 1  # the video lasts as long as the track


def test_pulse_pushes_w_away_from_the_mean_on_onsets(sg2, clicks):
    _, _, f = clicks
    spec = PathSpec("linear")
    plain = Animation(sg2, [0, 1], spec, FPS, frames=f.num_frames)
    pulsed = Animation(sg2, [0, 1], spec, FPS, audio=f, reaction=AudioReaction(speed=0, pulse=0.5))
    frames = np.arange(f.num_frames)
    w_avg = sg2.w_avg.double()
    d0 = (plain.inputs(frames)[0].double() - w_avg).norm(dim=(1, 2)).numpy()
    d1 = (pulsed.inputs(frames)[0].double() - w_avg).norm(dim=(1, 2)).numpy()
    np.testing.assert_allclose(d1 / d0, 1 + 0.5 * f.onset, rtol=1e-4)
    assert (d1 / d0).max() > 1.45 and np.isclose((d1 / d0).min(), 1.0)  # a full push on clicks, none between


def test_pitch_blends_the_pitch_class_seeds(sg2, tmp_path):
    f = AudioFeatures.from_file(write_wav(tmp_path / "a4.wav", tone(440.0, 1.0)), FPS)
    anim = Animation(sg2, [5, 6], PathSpec("linear"), FPS, audio=f, reaction=AudioReaction(pitch=1.0, pulse=0))
    c = anim.reactive.controls
    a = pitch_class(440.0)
    assert np.all(c.pitch_weights[5:-5].argmax(axis=1) == a) and c.pitch_weights[5:-5, a].min() > 0.8
    np.testing.assert_allclose(c.pitch_weights[5:-5].sum(axis=1), 1.0)
    ws = anim.inputs(np.arange(10, 20))[0]  # [10, num_ws, w_dim]
    pitch_ws = sg2.mapping(seeds_to_z(list(range(6, 18)), sg2.z_dim), None, 1.0, None)  # C = seed 6 .. B = seed 17
    dist = (ws[:, None] - pitch_ws[None]).norm(dim=(2, 3))  # [10, 12]
    assert torch.all(dist.argmin(dim=1) == a)  # each frame shows (mostly) the A seed
    want = torch.einsum("fk,kld->fld", torch.as_tensor(c.pitch_weights[10:20], dtype=torch.float32), pitch_ws)
    torch.testing.assert_close(ws, want, atol=1e-4, rtol=1e-4)  # the chroma-weighted blend, exactly


def test_motion_follows_the_beat(clicks):
    _, times, f = clicks
    with open_generator(reference_file("sg3r_64.pkl"), backend="torch", device="cpu") as sg3:
        anim = Animation(sg3, [0, 1], PathSpec("linear"), FPS, motion=Motion(translate=Translation("circle", 0.1)),
                         audio=f, reaction=AudioReaction(rotate=10.0, translate=1.0))
        c = anim.reactive.controls
        before_last = int(np.floor(f.beats[-1] * FPS))
        assert np.isclose(c.rotation[before_last], 10.0 * (len(f.beats) - 1))  # 10 degrees per beat
        turn = np.diff(c.rotation)  # [T - 1] degrees per frame: turning for BEAT_RAMP_S after each beat, still between
        t = np.arange(f.num_frames) / FPS
        after = t[:, None] - f.beats[None]  # [T, B] seconds since each beat
        turning = ((after[1:] > 0) & (after[:-1] < BEAT_RAMP_S)).any(axis=1)  # steps that overlap a beat's ramp
        assert np.all(turn[~turning] == 0) and np.all(turn[turning] > 0) and turning.mean() < 0.75
        beat_frames = np.floor(f.beats * FPS).astype(int)
        assert c.translate_gain.max() > 1.9 and np.isclose(c.translate_gain[: beat_frames[0]], 1).all()
        _, transforms = anim.inputs(np.arange(f.num_frames))  # [T, 3, 3]
        turned = np.unwrap(np.arctan2(transforms[:, 1, 0].double().numpy(), transforms[:, 0, 0].double().numpy()))
        np.testing.assert_allclose(np.abs(turned), np.radians(c.rotation), atol=1e-5)  # the frames turn as told
        shift = transforms[:, :2, 2].double().norm(dim=1).numpy()  # circle radius scaled by the beat
        np.testing.assert_allclose(shift, 0.1 * c.translate_gain, rtol=1e-4)


def test_motion_reactions_need_stylegan3(sg2, clicks):
    with pytest.raises(InputError, match="StyleGAN2"):
        Animation(sg2, [0, 1], PathSpec(), FPS, audio=clicks[2], reaction=AudioReaction(rotate=5))


def test_loops_close_on_the_bar(sg2, clicks):
    _, _, f = clicks
    anim = Animation(sg2, [0, 1, 2], PathSpec("cubic"), FPS, audio=f, reaction=AudioReaction(loop_bars=1, bpm=120))
    phase = anim.timeline.phase(np.arange(f.num_frames))
    assert np.all(np.diff(phase) > 0)  # always forward (the speed's floor is 1 - speed)
    bar = 4 * 60 / 120  # seconds
    start = f.beats[0]
    for k in range(1, 3):  # at each bar line the path is back at its first keyframe (whole loops walked)
        t = start + k * bar
        assert np.isclose(np.interp(t * FPS, np.arange(f.num_frames), phase) + np.floor(-start / bar), k, atol=0.02)
    with pytest.raises(InputError, match="looping path"):
        Animation(sg2, [0, 1], PathSpec("linear", loop=False), FPS, audio=f, reaction=AudioReaction(loop_bars=1))


def test_react_parse():
    r = AudioReaction.parse("speed=0.8, pulse=0.5,rotate=-10", bpm=90.0)
    assert (r.speed, r.pulse, r.rotate, r.bpm, r.pitch) == (0.8, 0.5, -10.0, 90.0, 0.0)
    for bad, match in (("speed=2", "between 0 and 1"), ("warp=1", "bad --react"), ("pulse=x", "number"),
                       ("pulse", "bad --react")):
        with pytest.raises(InputError, match=match):
            AudioReaction.parse(bad)


# ------------------------------------------------------------------------------------------------
# Video with sound.


def video_frames(path: Path) -> int:
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


@pytest.mark.parametrize("name", ["clip.mp4", "clip.webm"])
def test_render_muxes_the_track(sg2, tmp_path, name):
    seconds, fps = 1.6, 5.0
    track = write_wav(tmp_path / "track.wav", click_track(seconds)[0])
    f = AudioFeatures.from_file(track, fps)
    anim = Animation(sg2, [0, 1], PathSpec("linear"), fps, audio=f)
    with open_writer(tmp_path / name, fps, audio=track) as writer:
        for _ in render(sg2, anim, writer):
            pass
    assert video_frames(tmp_path / name) == round(seconds * fps) == anim.num_frames
    sound = read_audio(tmp_path / name)  # the muxed stream, decoded
    assert abs(len(sound) / SAMPLE_RATE - seconds) < 1 / fps  # as long as the track (within a frame)
    assert np.abs(sound).max() > 0.3  # the clicks, not silence
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_cli_render_with_audio_and_plot(tmp_path):
    track = write_wav(tmp_path / "track.wav", click_track(1.2)[0])
    out, plot = tmp_path / "clip.mp4", tmp_path / "react.png"
    result = runner.invoke(app, ["render", "-n", str(reference_file("sg2_64.pkl")), "--seeds", "0-1", "--fps", "5",
                                 "--audio", str(track), "--react", "pulse=0.5,speed=0.8", "--react-plot", str(plot),
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert video_frames(out) == 6 and abs(len(read_audio(out)) / SAMPLE_RATE - 1.2) < 0.2
    import imageio.v3 as iio

    image = iio.imread(plot)
    assert image.ndim == 3 and image.shape[1] > 1000 and (image < 250).any()


@pytest.mark.parametrize("network, args, match", [
    ("sg3r_64.pkl", ["--react", "translate=3"], "--react translate needs a --translate curve"),  # once: ignored
    ("sg3r_64.pkl", ["--react", "translate=3", "--translate", "0.1,0"], "not a fixed X,Y shift"),
    ("sg2_64.pkl", ["--react", "rotate=10"], "--react rotate/translate: StyleGAN2 has no input transform"),
])
def test_cli_motion_reactions_that_cannot_act_are_refused(tmp_path, network, args, match):
    """A reaction that would change nothing (translate without a curve to scale) or cannot run (StyleGAN2 has no
    input transform: the message named --rotate, which was not given) is one line before any frame."""
    track = write_wav(tmp_path / "track.wav", click_track(1.2)[0])
    result = runner.invoke(app, ["render", "-n", str(reference_file(network)), "--seeds", "0-1", "--fps", "5",
                                 "--audio", str(track), *args, "-o", str(tmp_path / "clip.mp4")])
    assert result.exit_code == 2, result.output
    assert match in result.output and "rendering" not in result.output, result.output
    assert "drop --rotate" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["track.wav"]


def test_cli_gif_gets_no_sound_and_says_so(tmp_path):
    track = write_wav(tmp_path / "track.wav", click_track(0.6)[0])
    out = tmp_path / "clip.gif"
    result = runner.invoke(app, ["render", "-n", str(reference_file("sg2_64.pkl")), "--seeds", "0-1", "--fps", "5",
                                 "--audio", str(track), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "no sound" in result.output and video_frames(out) == 3


def test_plot_reaction_draws_each_lane(tmp_path, clicks, sg2):
    anim = Animation(sg2, [0, 1], PathSpec(), FPS, audio=clicks[2])
    plot_reaction(tmp_path / "p.png", clicks[2], anim.reactive.controls)
    import imageio.v3 as iio

    image = iio.imread(tmp_path / "p.png")
    blue = (image[..., 2] > 150) & (image[..., 0] < 100)
    orange = (image[..., 0] > 150) & (image[..., 2] < 100)
    assert blue.sum() > 500 and orange.sum() > 500


# ------------------------------------------------------------------------------------------------
# Bad input: one line, exit 2, before any frame, nothing written.


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(np.random.RandomState(1).bytes(4000))
    text = tmp_path / "notes.flac"
    text.write_text("not audio\n")
    silent_video = tmp_path / "video.mp4"
    with open_writer(silent_video, 5) as w:
        w.write(np.zeros([2, 16, 16, 3], np.uint8))
    return {"missing": (tmp_path / "nope.wav", "not found"), "empty": (empty, "empty"),
            "corrupt": (corrupt, "cannot read audio"), "unsupported": (text, "cannot read audio"),
            "no audio stream": (silent_video, "no audio stream"), "folder": (tmp_path, "not a file")}


def test_bad_audio_files_are_one_line_errors(tmp_path):
    for name, (path, match) in bad_files(tmp_path).items():
        with pytest.raises(InputError, match=match):
            read_audio(path)
        out = tmp_path / f"out-{name.replace(' ', '-')}.mp4"
        result = runner.invoke(app, ["render", "--audio", str(path), "-o", str(out)])
        assert result.exit_code == 2, (name, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], (name, lines)
        assert not out.exists() and not list(tmp_path.glob(".out-*"))


def test_audio_options_need_audio_and_sound_formats(tmp_path):
    result = runner.invoke(app, ["render", "--react", "pulse=1", "-o", str(tmp_path / "a.mp4")])
    assert result.exit_code == 2 and "need --audio" in result.output
    track = write_wav(tmp_path / "t.wav", tone(440, 0.2))
    with pytest.raises(InputError, match="no audio track"):
        open_writer(tmp_path / "a.gif", 5, audio=track)
    assert list(tmp_path.iterdir()) == [track]


def test_missing_librosa_gives_an_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "librosa", None)
    with pytest.raises(InputError, match=r"pip install 'sg3rt\[audio\]'"):
        AudioFeatures.from_file(write_wav(tmp_path / "t.wav", tone(440, 0.2)), FPS)


def test_layering_allows_the_audio_module():
    """animate/audio.py imports only its own layer and below (checked by test_layering as well)."""
    out = subprocess.run([sys.executable, "-c", "import sg3rt.animate.audio, sys; print('librosa' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # librosa is imported lazily, only when features are computed


def test_animation_checks_its_audio(sg2, clicks):
    with pytest.raises(InputError, match="computed at 30 fps"):
        Animation(sg2, [0, 1], PathSpec(), 24.0, audio=clicks[2])
    with pytest.raises(InputError, match="needs the audio's features"):
        Animation(sg2, [0, 1], PathSpec(), FPS, reaction=AudioReaction())
    longer = Animation(sg2, [0, 1], PathSpec(), FPS, audio=clicks[2], duration=10.0)  # past the track: silence
    assert longer.num_frames == 300 and np.all(longer.reactive.controls.scale[240:] == 1)


# ------------------------------------------------------------------------------------------------
# QA fixes: damaged or degenerate audio, out-of-range options and reactions that would do nothing.


def cli_refuses(tmp_path: Path, args: list[str], match: str) -> None:
    """`sg3rt render ARGS` fails in one `error:` line naming `match`, exit 2, writing nothing."""
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["render", *args, "-o", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], lines
    assert not out.exists()


def test_nan_or_inf_samples_are_one_line_errors(tmp_path):
    import soundfile as sf

    for name, bad in (("nan.wav", np.nan), ("inf.wav", np.inf)):
        y = tone(440.0, 1.0).astype(np.float32)
        y[1000:2000] = bad
        path = tmp_path / name
        sf.write(path, y, SR, subtype="FLOAT")  # a float WAV stores them as they are
        with pytest.raises(InputError, match=f"{name}: the audio has NaN or infinite samples"):
            read_audio(path)
        cli_refuses(tmp_path, ["--audio", str(path)], f"{name}: the audio has NaN or infinite samples")
        with pytest.raises(InputError, match="NaN or infinite"):  # a library caller's own samples
            AudioFeatures.from_signal(y, SR, FPS)


def truncated(path: Path, keep: int) -> Path:
    """The first `keep` bytes of the file at `path`, written beside it (the header still promises the whole)."""
    cut = path.with_name(f"cut{keep}-{path.name}")
    cut.write_bytes(path.read_bytes()[:keep])
    return cut


def test_truncated_files_are_one_line_errors(tmp_path):
    import soundfile as sf

    y = tone(440.0, 2.0)
    wav = write_wav(tmp_path / "full.wav", y)  # 44-byte header, 2 bytes a sample
    size = wav.stat().st_size
    flac = tmp_path / "full.flac"
    sf.write(flac, y, SR)
    for cut, holds in ((truncated(wav, 60), "0.00 s"), (truncated(wav, size // 2 + 1), "1.00 s"),
                       (truncated(wav, 44 + 2 * 4096), "0.09 s"),  # on a packet boundary: ffmpeg says nothing
                       (truncated(flac, flac.stat().st_size // 2), "s")):
        with pytest.raises(InputError, match=f"{cut.name}: the file is truncated: its header promises 2.00 s of audio, "
                                             f"it holds .*{holds}"):
            read_audio(cut)
    cli_refuses(tmp_path, ["--audio", str(truncated(wav, 60))], "the file is truncated")
    assert abs(len(read_audio(truncated(wav, size - 2 * 100))) / SAMPLE_RATE - 2.0) < 0.01  # 100 samples short: used
    streamed = bytearray(wav.read_bytes())  # a streamed WAV leaves the sizes open (0xFFFFFFFF): read to its end
    streamed[4:8] = streamed[40:44] = b"\xff\xff\xff\xff"
    (tmp_path / "streamed.wav").write_bytes(bytes(streamed))
    assert abs(len(read_audio(tmp_path / "streamed.wav")) / SAMPLE_RATE - 2.0) < 0.01
    assert abs(len(read_audio(flac)) / SAMPLE_RATE - 2.0) < 0.01


def test_audio_too_short_to_analyse_is_a_one_line_error(tmp_path):
    tiny = write_wav(tmp_path / "tiny.wav", tone(440.0, 0.01))  # complete, but shorter than one STFT window
    with pytest.raises(InputError, match="tiny.wav: the audio is too short to analyse"):
        AudioFeatures.from_file(tiny, FPS)
    cli_refuses(tmp_path, ["--audio", str(tiny)], "too short to analyse")
    assert AudioFeatures.from_file(write_wav(tmp_path / "short.wav", tone(440.0, 0.1)), FPS).num_frames == 3


def test_bpm_is_bounded(clicks):
    for bpm in (1e300, 1000.5, math.inf):
        with pytest.raises(InputError, match="--bpm must be a positive number up to 1000"):
            AudioReaction.parse(None, bpm=bpm)
        with pytest.raises(InputError, match="up to 1000"):
            clicks[2].beat_grid(bpm)  # (np.arange of 1e300 beats: "Maximum allowed size exceeded")
    assert AudioReaction.parse(None, bpm=1000.0).bpm == 1000.0
    assert len(clicks[2].beat_grid(1000.0)) > 100


def test_react_parse_refuses_a_name_twice():
    with pytest.raises(InputError, match="--react names speed twice"):
        AudioReaction.parse("speed=0.5,speed=0.1")
    with pytest.raises(InputError, match="--react names pulse twice"):
        AudioReaction.parse("pulse=0.5, speed=1, pulse=0.5")


@pytest.fixture(scope="module")
def sg3():
    with open_generator(reference_file("sg3r_64.pkl"), backend="torch", device="cpu") as runtime:
        yield runtime


def test_react_translate_needs_a_translate_curve(sg3):
    """It scales the curve's amplitude: without a curve (none, or a fixed shift, which is never scaled) the frames
    would be bit-identical to translate=0."""
    from sg3rt.animate import check_motion

    for motion in (Motion(), Motion(rotate=30.0), Motion(translate=Translation.parse("0.1,0"))):
        with pytest.raises(InputError, match=r"--react translate needs a --translate curve, e\.g\. --translate circle"):
            check_motion(motion, sg3, AudioReaction(translate=3.0))
    check_motion(Motion(translate=Translation.parse("circle:0.1")), sg3, AudioReaction(translate=3.0))
    check_motion(Motion(), sg3, AudioReaction(translate=0.0, rotate=10.0))
    check_motion(Motion(), sg3, None)


def test_react_motion_on_stylegan2_names_the_reaction(sg2):
    from sg3rt.animate import check_motion

    for reaction in (AudioReaction(rotate=10.0), AudioReaction(translate=1.0)):
        with pytest.raises(InputError, match=r"^--react rotate/translate: StyleGAN2 has no input transform") as e:
            check_motion(Motion(), sg2, reaction)
        assert "drop --rotate" not in str(e.value)  # options the user never gave
    with pytest.raises(InputError, match="drop --rotate"):  # the user's own --rotate is named first
        check_motion(Motion(rotate=5.0), sg2, AudioReaction(rotate=10.0))
    check_motion(Motion(), sg2, AudioReaction(pulse=1.0, speed=1.0))
