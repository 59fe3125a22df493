"""`sg3rt live --audio`: the audio clock and the per-frame reactions, driven by hand with given clock values on
synthetic tracks (no timing), the sound track served to pages (token-checked), and bad input refused in one line."""

from __future__ import annotations

import dataclasses
import time
import urllib.error
import urllib.request

import imageio_ffmpeg
import numpy as np
import pytest
import torch

pytest.importorskip("librosa", reason="the audio extra (librosa) is not installed")
pytest.importorskip("starlette", reason="the live extra is not installed: pip install 'sg3rt[live]'")
pytest.importorskip("uvicorn", reason="the live extra is not installed: pip install 'sg3rt[live]'")

from sg3rt.animate.audio import BEAT_RAMP_S, AudioReaction  # noqa: E402
from sg3rt.errors import InputError  # noqa: E402
from sg3rt.live import Clocks, LiveSession  # noqa: E402
from sg3rt.live.audio import AUDIO_CONTROL_FPS, LiveAudio, slot_sound  # noqa: E402
from sg3rt.live.server import LiveServer  # noqa: E402
from sg3rt.runtime.torch_backend import TorchRuntime  # noqa: E402
from test_audio import click_track, tone, write_wav  # noqa: E402
from test_live import Page, ws_url  # noqa: E402

CLICK_WINDOW_S = 0.03  # the onset envelope peaks within this of a click (the STFT window is centred)


@pytest.fixture(scope="module")
def sg3r(load_reference):
    return TorchRuntime(load_reference("sg3r_64"))


@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    """(wav path, click times): 4 s of clicks at 120 bpm."""
    y, times = click_track(4.0)
    return write_wav(tmp_path_factory.mktemp("live_audio") / "clicks.wav", y), times


@pytest.fixture(scope="module")
def quiet_then_loud(tmp_path_factory):
    """2 s of a near-silent tone, then 2 s of a loud one."""
    y = np.concatenate([0.002 * tone(220.0, 2.0) / 0.5, tone(220.0, 2.0)])
    return write_wav(tmp_path_factory.mktemp("live_audio") / "quiet_loud.wav", y)


def track(path, **amounts) -> LiveAudio:
    a = LiveAudio.open(path)
    return LiveAudio(path, a.features, AudioReaction(**amounts))


def test_audio_clock_loops_and_stops_on_pause(clicks, sg3r):
    a = track(clicks[0])
    assert a.features.fps == AUDIO_CONTROL_FPS and a.duration == pytest.approx(4.0)
    assert a.position(5.5) == pytest.approx(1.5) and a.frame(5.5) == a.frame(1.5) == int(1.5 * AUDIO_CONTROL_FPS)
    s = LiveSession(sg3r, audio=a)  # not started: clocks advanced by hand
    c = Clocks(1.0, 2.0, 3.0)
    assert c.advance(s.controls, 0.1, a).audio == pytest.approx(3.1)
    s.update({"paused": True})
    assert c.advance(s.controls, 0.1, a) == c


def test_pulse_pushes_w_away_from_w_avg_at_clicks_only(clicks, sg3r):
    path, times = clicks
    audio = track(path, speed=0.0, pulse=1.0)
    with_audio, plain = LiveSession(sg3r, audio=audio), LiveSession(sg3r)
    for s in (with_audio, plain):
        s.update({"walk": "off", "seed": 3})
    w_avg = sg3r.w_avg
    base = plain.scene.ws(plain.controls, Clocks())
    for t in times[:-1]:
        near = (np.arange(round((t - CLICK_WINDOW_S) * AUDIO_CONTROL_FPS), round((t + CLICK_WINDOW_S) * AUDIO_CONTROL_FPS))
                + 0.5) / AUDIO_CONTROL_FPS  # the middles of the feature frames around the click
        peak = max(near, key=lambda x: audio.at(x).scale)
        scale = audio.at(peak).scale
        assert scale > 1.5, f"no pulse at the click at {t} s"
        ws = with_audio.scene.ws(with_audio.controls, Clocks(audio=peak + 4.0))  # one loop later: the same
        torch.testing.assert_close(ws, w_avg + scale * (base - w_avg))
        between = t + 0.45  # 50 ms before the next click
        assert audio.at(between).scale < 1.1, f"pulse between clicks at {between} s"
        assert torch.linalg.vector_norm(with_audio.scene.ws(with_audio.controls, Clocks(audio=between)) - w_avg) < \
            1.1 * torch.linalg.vector_norm(base - w_avg)


def test_all_amounts_zero_equal_the_session_without_audio(clicks, sg3r):
    zero = track(clicks[0], speed=0.0, pulse=0.0, loudness=0.0, pitch=0.0, rotate=0.0, translate=0.0)
    with_audio, plain = LiveSession(sg3r, audio=zero), LiveSession(sg3r)
    changes = {"seeds": [1, 2, 3], "walk": "cubic", "speed": 0.7, "rotate_speed": 15, "translate_anim": "circle"}
    for s in (with_audio, plain):
        s.update(changes)
    clocks_a = clocks_p = Clocks()
    for dt in (0.04, 0.1, 0.2, 0.05):
        clocks_a, clocks_p = clocks_a.advance(with_audio.controls, dt, zero), clocks_p.advance(plain.controls, dt)
        assert (clocks_a.walk, clocks_a.motion) == (clocks_p.walk, clocks_p.motion)
        np.testing.assert_array_equal(with_audio.render_frame(with_audio.controls, clocks_a),
                                      plain.render_frame(plain.controls, clocks_p))


def test_walk_runs_faster_on_loud_passages(quiet_then_loud, sg3r):
    a = track(quiet_then_loud, speed=1.0, pulse=0.0)
    controls = LiveSession(sg3r, audio=a).controls
    quiet = Clocks(audio=1.0).advance(controls, 0.1, a).walk
    loud = Clocks(audio=3.0).advance(controls, 0.1, a).walk
    assert loud > 0.05 * controls.speed and quiet < 0.2 * loud
    even = track(quiet_then_loud, speed=0.0)
    assert Clocks(audio=1.0).advance(controls, 0.1, even).walk == pytest.approx(0.1 * controls.speed)


def test_beats_turn_and_push_the_image(clicks, sg3r):
    a = track(clicks[0], speed=0.0, pulse=0.0, rotate=10.0, translate=2.0)
    beats = a.beats
    assert len(beats) >= 4
    after = beats[2] + BEAT_RAMP_S + 0.01  # three beats fully turned
    assert a.at(after).rotation == pytest.approx(30.0)
    assert a.at(beats[2] + 0.001).translate_gain == pytest.approx(3.0, abs=0.05)  # 1 + translate on the beat
    assert a.at(after + a.duration).rotation == pytest.approx(30.0 + 10.0 * len(beats))  # keeps turning over loops
    s = LiveSession(sg3r, audio=a)
    s.update({"rotate": 5})
    t = s.scene.transform(s.controls, Clocks(audio=after))
    torch.testing.assert_close(t, LiveSession(sg3r).scene.transform(dataclasses.replace(s.controls, rotate=35.0), Clocks()))


def test_stylegan2_refuses_audio_motion(clicks, load_reference):
    sg2 = TorchRuntime(load_reference("sg2_64"))
    with pytest.raises(InputError, match="only StyleGAN3"):
        LiveSession(sg2, audio=track(clicks[0], rotate=10.0))


def test_audio_route_hello_and_stats(clicks, sg3r):
    path = clicks[0]
    with LiveSession(sg3r, audio=track(path)) as session:
        srv = LiveServer(session, port=0, token="s3cret").start_in_thread()
        try:
            base = f"http://127.0.0.1:{srv.port}"
            with pytest.raises(urllib.error.HTTPError, match="403"):
                urllib.request.urlopen(f"{base}/audio")
            assert urllib.request.urlopen(f"{base}/audio?token=s3cret").read() == path.read_bytes()
            page = Page(ws_url(srv, "s3cret"))
            page.until(lambda p: any(t["type"] == "stats" and t.get("audio_time") for t in p.texts))
            hello = next(t for t in page.texts if t["type"] == "hello")
            assert hello["audio"] == {"url": "audio", "duration": pytest.approx(4.0)}
            times = [t["audio_time"] for t in page.texts if t["type"] == "stats"]
            assert all(0 <= x < 4.0 for x in times)
            page.close()
        finally:
            srv.stop()
    with LiveSession(sg3r) as plain:
        srv = LiveServer(plain, port=0).start_in_thread()
        try:
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/audio")
        finally:
            srv.stop()


@pytest.mark.parametrize("args, match", [
    (["--audio", "nowhere.wav"], "nowhere.wav"),
    (["--audio", "bad.wav"], "bad.wav"),
    (["--audio", "ok.wav", "--react", "volume=2"], "bad --react 'volume=2'"),
    (["--react", "pulse=1"], "--react needs --audio"),
])
def test_cli_bad_audio_is_one_line(args, match, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sg3rt.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really a wave file")
    write_wav(tmp_path / "ok.wav", tone(440.0, 0.5))
    result = CliRunner().invoke(app, ["live", "--port", "0", "missing-network.pkl", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], result.output


# -- recordings carry the sound the page played --------------------------------------------------------


def test_slot_sound_continues_jumps_loops_and_stays_silent_when_paused():
    sr, fps = 100, 10  # 10 samples per slot
    pcm = np.stack([np.arange(250.0), -np.arange(250.0)], axis=1).astype(np.float32)  # sample index as the value
    clocks = [1.0, 1.1, 1.2 + 0.02, None, None, 2.0, 2.1, 2.4, 2.45]  # jitter < half a slot continues; 2.4 jumps
    out = slot_sound(pcm, sr, clocks, fps)
    assert out.shape == (90, 2) and np.array_equal(out[:, 1], -out[:, 0])
    np.testing.assert_array_equal(out[:30, 0], np.arange(100, 130))  # three slots, one run (no jitter jump)
    assert not out[30:50].any()  # paused: silence
    np.testing.assert_array_equal(out[50:70, 0], np.arange(200, 220))  # resumes at its clock
    # 2.4 s = sample 240, past the 250-sample track's end after 10 more: the track loops; 2.45 follows 2.4
    np.testing.assert_array_equal(out[70:90, 0], np.r_[240:250, 0:10])


def test_recording_has_the_sound_at_the_clocks_it_showed(clicks, tmp_path):
    from sg3rt.animate.audio import SAMPLE_RATE, read_audio
    from sg3rt.live.session import Recording

    path, times = clicks  # clicks every 0.5 s from 0.3 s
    fps = 10.0
    rec = Recording(tmp_path / "r.mp4", fps, track(path))
    clock = [1.0 + k / fps for k in range(10)] + [None] * 5 + [3.0 + k / fps for k in range(5)]
    for k, c in enumerate(clock):  # published mid-slot (k > 0), so each fills exactly one video frame
        rec.add(np.full([32, 32, 3], 7 * k, np.uint8), 100.0 + (k + 0.5 * (k > 0)) / fps, c)
        while not rec.queue.empty():  # faster than real time: let the encoder take each one (none dropped)
            time.sleep(0.002)
    out = rec.stop()
    assert [p.name for p in tmp_path.iterdir()] == ["r.mp4"]  # the sound file is gone
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == len(clock)
    sound = read_audio(out)  # the muxed stream, mono at SAMPLE_RATE
    assert abs(len(sound) / SAMPLE_RATE - len(clock) / fps) < 0.05  # as long as the video
    env = np.abs(sound)
    # expected clicks: the track's clicks inside each shown span, moved to the recording's time
    want = [t - 1.0 for t in times if 1.0 <= t < 2.0] + [1.5 + t - 3.0 for t in times if 3.0 <= t < 3.5]
    assert len(want) == 3
    for t in want:
        i = int(t * SAMPLE_RATE)
        assert env[i - 200 : i + 600].max() > 0.3, t  # AAC smears a click by a few ms
    quiet = np.ones(len(env), bool)
    for t in want:
        quiet[max(0, int((t - 0.05) * SAMPLE_RATE)) : int((t + 0.1) * SAMPLE_RATE)] = False
    assert env[quiet].max() < 0.05  # nothing else: no click outside the spans shown, silence while paused


def test_live_recording_with_a_track_has_sound_as_long_as_its_video(clicks, sg3r, tmp_path):
    from sg3rt.animate.audio import SAMPLE_RATE, read_audio

    with LiveSession(sg3r, record_dir=tmp_path, audio=track(clicks[0]), controls={"fps": 10.0}) as s:
        s.start()
        s.start_recording()
        first = s.stream.wait_next(0, timeout=60).seq
        deadline = time.monotonic() + 120
        while s.stream.latest.seq < first + 6 and time.monotonic() < deadline:  # a few frames recorded
            time.sleep(0.05)
        out = s.stop_recording()
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    sound = read_audio(out)
    assert frames >= 3 and abs(len(sound) / SAMPLE_RATE - frames / 10.0) < 0.05
    assert np.abs(sound).max() > 0.1  # the clicks are in it (the walk covers more than one 0.5 s beat)
