"""A sound track driving a keyframe timeline: with every reaction at 0 the frames are the plain timeline's bit
for bit; the walk speed warps the track time (faster on clicks, same ends, keys still passed); the pulse pushes
w away from w_avg on onsets; beat motion composes with the keys' own; the CLI muxes the sound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from refdata import reference_file

pytest.importorskip("librosa", reason="the audio extra (librosa) is not installed")

from sg3rt import InputError  # noqa: E402
from sg3rt.animate import AudioFeatures, AudioReaction, read_audio  # noqa: E402
from sg3rt.animate.audio import SAMPLE_RATE  # noqa: E402
from sg3rt.animate.timeline import KeyTimeline  # noqa: E402
from sg3rt.cli import app  # noqa: E402
from sg3rt.runtime import open_generator  # noqa: E402
from test_audio import click_track, video_frames, write_wav  # noqa: E402

runner = CliRunner()
FPS = 30.0
SECONDS = 6.0  # of clicks at 120 bpm


def show(loop: bool = False, **extra) -> KeyTimeline:
    """Three seed keys over SECONDS at FPS (one-way: the last key at SECONDS)."""
    keys = [{"time": 0, "seed": 1}, {"time": SECONDS / 2, "seed": 2}, {"time": SECONDS, "seed": 3}]
    if loop:
        keys = keys[:2] + [{"time": 4.0, "seed": 3}]
    for k, v in extra.items():
        keys[1][k] = v
    return KeyTimeline.from_dict({"fps": FPS, "loop": loop, "key": keys})


@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    path = write_wav(tmp_path_factory.mktemp("tl_audio") / "clicks.wav", click_track(SECONDS)[0])
    return path, AudioFeatures.from_file(path, FPS)


@pytest.fixture(scope="module")
def sg2():
    with open_generator(reference_file("sg2_64.pkl"), backend="torch", device="cpu") as runtime:
        yield runtime


@pytest.fixture(scope="module")
def sg3():
    with open_generator(reference_file("sg3r_64.pkl"), backend="torch", device="cpu") as runtime:
        yield runtime


OFF = AudioReaction(speed=0, pulse=0, loudness=0, pitch=0, rotate=0, translate=0)


@pytest.mark.parametrize("loop", [False, True])
def test_reactions_at_zero_give_the_plain_timeline(sg3, clicks, loop):
    _, f = clicks
    tl = show(loop, rotate=20)
    plain, heard = tl.bind(sg3), tl.bind(sg3, f, OFF)
    frames = np.arange(plain.num_frames)
    assert heard.num_frames == plain.num_frames  # the timeline's length, not the track's
    (ws0, tr0), (ws1, tr1) = plain.inputs(frames), heard.inputs(frames)
    assert torch.equal(ws0, ws1) and torch.equal(tr0, tr1)


def steps(ws: torch.Tensor) -> np.ndarray:  # [T - 1] distance in W between consecutive frames
    return (ws[1:] - ws[:-1]).double().norm(dim=(1, 2)).numpy()


def test_walk_speed_follows_onset_strength(sg2, clicks):
    _, f = clicks
    tl = show()
    n = tl.num_frames
    frames = np.arange(n)
    heard = tl.bind(sg2, f, AudioReaction(speed=1, pulse=0))
    even = steps(tl.bind(sg2).ws(frames))
    reactive = steps(heard.ws(frames))
    onset = f.fit(n).onset[:-1]
    assert np.corrcoef(reactive, onset)[0, 1] > 0.8
    assert abs(np.corrcoef(even, onset)[0, 1]) < 0.3  # the plain timeline ignores the clicks
    times = heard.frame_times(frames)
    assert times[0] == 0 and np.isclose(times[-1], SECONDS) and np.all(np.diff(times) >= 0)  # same ends, forwards
    # every key is still passed: its w is approached within one frame's step
    ws = heard.ws(frames).double()
    keys = tl.bind(sg2).ws(np.array([0, n // 2, n - 1])).double()
    for key in keys:
        assert (ws - key).norm(dim=(1, 2)).min() <= reactive.max()


def test_pulse_pushes_w_away_from_the_mean_on_onsets(sg2, clicks):
    _, f = clicks
    tl = show()
    frames = np.arange(tl.num_frames)
    w_avg = sg2.w_avg.double()
    d0 = (tl.bind(sg2).ws(frames).double() - w_avg).norm(dim=(1, 2)).numpy()
    d1 = (tl.bind(sg2, f, AudioReaction(speed=0, pulse=0.5)).ws(frames).double() - w_avg).norm(dim=(1, 2)).numpy()
    np.testing.assert_allclose(d1 / d0, 1 + 0.5 * f.fit(len(frames)).onset, rtol=1e-4)
    assert (d1 / d0).max() > 1.45 and np.isclose((d1 / d0).min(), 1.0)


def test_pitch_blends_the_seeds_after_the_first_key(sg2, tmp_path):
    from sg3rt.animate.seeds import seeds_to_z
    from test_audio import pitch_class, tone

    f = AudioFeatures.from_file(write_wav(tmp_path / "a4.wav", tone(440.0, 1.0)), FPS)
    tl = KeyTimeline.from_dict({"fps": FPS, "psi": 0.7, "key": [{"time": 0, "seed": 5}, {"time": 1.0, "seed": 40}]})
    anim = tl.bind(sg2, f, AudioReaction(speed=0, pulse=0, pitch=1.0))
    c = anim.reactive.controls
    ws = anim.ws(np.arange(10, 20))  # [10, num_ws, w_dim]
    pitch_ws = sg2.mapping(seeds_to_z(list(range(6, 18)), sg2.z_dim), None, 0.7, None)  # C = seed 6 .. B = seed 17
    assert torch.all((ws[:, None] - pitch_ws[None]).norm(dim=(2, 3)).argmin(dim=1) == pitch_class(440.0))
    want = torch.einsum("fk,kld->fld", torch.as_tensor(c.pitch_weights[10:20], dtype=torch.float32), pitch_ws)
    torch.testing.assert_close(ws, want, atol=1e-4, rtol=1e-4)  # the chroma-weighted blend at the timeline's psi


def test_beat_rotation_adds_to_the_keys_rotation(sg3, clicks):
    _, f = clicks
    tl = show(rotate=20)
    frames = np.arange(tl.num_frames)
    plain = tl.bind(sg3).transforms(frames)  # [F, 3, 3]
    turned = tl.bind(sg3, f, AudioReaction(speed=0, pulse=0, rotate=10)).transforms(frames)
    angle = lambda m: np.degrees(np.arctan2(m[:, 0, 1].double().numpy(), m[:, 0, 0].double().numpy()))  # noqa: E731
    extra = np.abs(np.degrees(np.unwrap(np.radians(angle(turned) - angle(plain)))))  # [F] degrees the beats added
    beats = f.beat_grid(None)
    assert len(beats) >= 10 and np.abs(extra[frames / FPS < beats[0]]).max() < 1e-3  # none before the first beat
    for k in range(len(beats) - 1):  # between beats, once the turn has eased in: 10 degrees per beat so far
        settled = (frames / FPS > beats[k] + 0.3) & (frames / FPS < beats[k + 1])
        np.testing.assert_allclose(extra[settled], 10 * (k + 1), atol=1e-3)


def test_checks_are_one_line_errors(sg2, sg3, clicks):
    _, f = clicks
    with pytest.raises(InputError, match="fps"):
        show().bind(sg2, AudioFeatures.from_file(clicks[0], 10.0))
    with pytest.raises(InputError, match="StyleGAN2"):
        show().bind(sg2, f, AudioReaction(rotate=10))
    with pytest.raises(InputError, match="loop-bars"):
        show(loop=True).bind(sg3, f, AudioReaction(loop_bars=1))
    with pytest.raises(InputError, match="features"):
        show().bind(sg2, None, AudioReaction())
    with pytest.raises(InputError, match="--react translate scales the keys' translate, and no key sets"):
        show().bind(sg3, f, AudioReaction(translate=2))  # once: accepted, and changed nothing
    show(translate=[0.1, 0.0]).bind(sg3, f, AudioReaction(translate=2))  # a key's translate: scaled on the beat


def test_cli_renders_a_timeline_with_sound(tmp_path):
    track = write_wav(tmp_path / "clicks.wav", click_track(2.0)[0])
    toml = tmp_path / "t.toml"
    toml.write_text('fps = 5\n[[key]]\ntime = 0\nseed = 1\n[[key]]\ntime = 1.2\nseed = 2\n')  # 7 frames; 2 s of sound
    out = tmp_path / "show.mp4"
    result = runner.invoke(app, ["render", "-n", str(reference_file("sg2_64.pkl")), "--timeline", str(toml),
                                 "--audio", str(track), "--react", "speed=0.8,pulse=0.5", "--react-plot", str(tmp_path / "r.png"),
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert video_frames(out) == 7 and (tmp_path / "r.png").stat().st_size > 0  # the timeline's frame count
    assert np.abs(read_audio(out)).max() > 0.3 and len(read_audio(out)) / SAMPLE_RATE > 1.0  # the clicks are muxed
    bad = runner.invoke(app, ["render", "-n", str(reference_file("sg2_64.pkl")), "--timeline", str(toml),
                              "--audio", str(track), "--loop-bars", "2", "-o", str(tmp_path / "x.mp4")])
    assert bad.exit_code == 2 and "loop-bars" in bad.output and "Traceback" not in bad.output
