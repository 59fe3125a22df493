"""`sg3rt live --audio-in`: the streaming analyser fed synthetic sound block by block (click tracks at known tempi,
chords, level steps), the ring buffer between the capture callback and the analysis, a session driven by the
live source (frames react, recordings carry the captured sound), and device errors refused in one line. No test
needs a sound device: the capture itself is tried only where PortAudio finds an input."""

from __future__ import annotations

import sys
import threading
import time

import imageio_ffmpeg
import numpy as np
import pytest
import torch

pytest.importorskip("librosa", reason="the audio extra (librosa) is not installed")
pytest.importorskip("starlette", reason="the live extra is not installed: pip install 'sg3rt[live]'")

from sg3rt.animate.audio import BEAT_RAMP_S, PITCH_CLASSES, AudioReaction  # noqa: E402
from sg3rt.errors import InputError  # noqa: E402
from sg3rt.live import Clocks, LiveSession  # noqa: E402
from sg3rt.live.analyser import StreamAnalyser  # noqa: E402
from sg3rt.live.audio import AudioState  # noqa: E402
from sg3rt.live.audio_in import RING_S, InputDevice, LiveInput, RingBuffer  # noqa: E402
from sg3rt.runtime.torch_backend import TorchRuntime  # noqa: E402
from test_audio import pitch_class  # noqa: E402

SR = 44100  # Hz: a common device rate (the analysis runs at the device's rate)
CLICK_START = 0.3  # seconds: the first click
BEAT_TOLERANCE_S = 0.035  # an emitted beat follows its click by at most this (the detection delay: about a hop
# until the click is in a window, and its rise in dB over the next hop or two; measured 8-27 ms)
CONVERGE_S = 4.0  # seconds of clicks after which the tempo must be right
CHORD_A_MINOR = (220.0, 261.63, 329.63)  # A3, C4, E4


def click_track(seconds: float, bpm: float, sr: int = SR, level: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """(samples [S], click times): 10 ms noise bursts with a 2 ms decay, one per beat from CLICK_START."""
    times = np.arange(CLICK_START, seconds - 0.05, 60.0 / bpm)
    y = np.zeros(int(seconds * sr))
    n = int(0.01 * sr)
    burst = np.exp(-np.arange(n) / (0.002 * sr)) * np.random.RandomState(0).uniform(-1, 1, n)
    for t in times:
        i = int(round(t * sr))
        y[i : i + n] += level * burst
    return y, times


def chord(freqs: tuple[float, ...], seconds: float, sr: int = SR, level: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return level * sum(np.sin(2 * np.pi * f * t) for f in freqs)


def feed_blocks(analyser: StreamAnalyser, y: np.ndarray, seed: int = 1) -> list:
    """Feed y in blocks of random sizes (as a capture callback delivers them); every block's reading."""
    rng, i, out = np.random.RandomState(seed), 0, []
    while i < len(y):
        n = int(rng.randint(64, 2048))
        out.append(analyser.feed(y[i : i + n]))
        i += n
    return out


# -- the analyser ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm, sr", [(100.0, SR), (120.0, 48000), (140.0, 22050)])
def test_tempo_and_beats_converge_to_the_click_track(bpm, sr):
    y, times = click_track(10.0, bpm, sr)
    readings = feed_blocks(StreamAnalyser(sr), y + chord(CHORD_A_MINOR, 10.0, sr))
    settled = [f.tempo for f in readings if f.time > CONVERGE_S]
    assert settled and all(abs(t - bpm) / bpm < 0.02 for t in settled), (bpm, min(settled), max(settled))
    last = readings[-1]
    assert abs(last.tempo - bpm) / bpm < 0.005  # after 10 s: within half a percent
    late = last.beats[last.beats > CONVERGE_S]
    clicks = times[(times > CONVERGE_S) & (times < last.time - 0.05)]
    assert len(late) == len(clicks), (late, clicks)  # one beat per click: none missed, none doubled
    assert np.all(late - clicks >= 0) and np.all(late - clicks < BEAT_TOLERANCE_S), late - clicks
    assert np.sum(times > 3.0) <= last.beat_count <= len(times)  # counted from the first estimate (about 2.5 s) on
    assert np.all(np.diff(last.beats) > 0.5 * 60.0 / bpm)


def test_onsets_at_the_clicks_only():
    y, times = click_track(4.0, 120.0)
    a = StreamAnalyser(SR)
    readings = [a.feed(block) for block in np.array_split(y + chord(CHORD_A_MINOR, 4.0), len(y) // 256)]  # < a hop each
    t = np.array([f.time for f in readings])
    onset = np.array([f.onset for f in readings])
    for click in times[1:-1]:  # (the first click also meets the chord's own start)
        near = (t >= click) & (t < click + BEAT_TOLERANCE_S + 0.05)
        assert onset[near].max() > 0.7, f"no onset at the click at {click} s"
        between = (t > click + 0.3) & (t < click + 0.45)  # 50 ms before the next click at the latest
        assert onset[between].max() < 0.25, f"onset between clicks after {click} s"


def test_chroma_picks_the_chords_pitch_classes():
    for freqs in (CHORD_A_MINOR, (261.63, 329.63, 392.0), (293.66, 369.99, 440.0)):  # A minor, C major, D major
        a = StreamAnalyser(SR)
        feed_blocks(a, chord(freqs, 1.0))
        got = {PITCH_CLASSES[k] for k in np.argsort(a.latest.chroma)[-3:]}
        assert got == {PITCH_CLASSES[pitch_class(f)] for f in freqs}, (freqs, np.round(a.latest.chroma, 2))
        assert a.latest.chroma.max() == pytest.approx(1.0)
        feed_blocks(a, np.zeros(SR))  # a second of silence: no pitch
        assert not a.latest.chroma.any()


def test_loudness_rises_with_level_between_a_running_floor_and_reference():
    a = StreamAnalyser(SR)
    steps = [0.5, 0.05, 0.15, 0.5, 0.005]  # amplitudes of 1 s sine steps: RMS -9, -29, -19.5, -9, -49 dBFS
    level = {}
    for k, amp in enumerate(steps):
        feed_blocks(a, amp * np.sin(2 * np.pi * 440.0 * np.arange(SR) / SR), seed=k)
        level[k] = a.latest.loudness
    assert level[0] > 0.95 and level[3] > 0.95  # the loudest heard is the reference
    assert level[1] < level[2] < level[3]  # quieter than the reference: lower, in order of level
    assert level[1] < 0.15 and level[4] < 0.1  # the quietest heard so far is the floor
    assert 0.4 < level[2] < 0.75  # 8.5 dB over a floor 20 dB under the reference (which fell 2 dB in 2 s)
    quiet = StreamAnalyser(SR)  # a quiet room (-49 dBFS) is its own reference: it still spans the range
    feed_blocks(quiet, 0.005 * np.sin(2 * np.pi * 440.0 * np.arange(SR) / SR))
    assert quiet.latest.loudness > 0.8
    hiss = StreamAnalyser(SR)  # near-silence (-85 dBFS) stays near 0 (the reference never falls below -50 dBFS)
    feed_blocks(hiss, 1e-4 * np.random.RandomState(0).uniform(-1, 1, SR))
    assert hiss.latest.loudness < 0.1


def test_block_sizes_do_not_change_the_features():
    y = click_track(3.0, 120.0)[0] + chord(CHORD_A_MINOR, 3.0)
    one, many = StreamAnalyser(SR), StreamAnalyser(SR)
    one.feed(y)
    feed_blocks(many, y, seed=7)
    a, b = one.latest, many.latest
    n, hop = many.n_fft, many.hop
    assert a.time == b.time == (n + (len(y) - n) // hop * hop) / SR  # the end of the last whole window
    assert (a.loudness, a.onset, a.tempo, a.beat_count) == pytest.approx((b.loudness, b.onset, b.tempo, b.beat_count))
    np.testing.assert_allclose(a.chroma, b.chroma, atol=1e-6)
    np.testing.assert_allclose(a.beats, b.beats)


# -- the ring buffer ---------------------------------------------------------------------------------


def test_ring_buffer_drops_the_oldest_when_full():
    ring = RingBuffer(10, 2)
    def frames(a: int, b: int) -> np.ndarray:  # [b - a, 2]: the frame number and its negative
        return np.stack([np.arange(a, b, dtype=np.float32), -np.arange(a, b, dtype=np.float32)], axis=1)

    ring.write(frames(0, 7))
    ring.write(frames(7, 14))  # 14 frames into 10: the 4 oldest go
    assert len(ring) == 10 and ring.dropped == 4 and ring.written == 14
    out = ring.read()
    np.testing.assert_array_equal(out[:, 0], np.arange(4.0, 14.0))
    np.testing.assert_array_equal(out[:, 1], -out[:, 0])
    assert len(ring) == 0 and ring.read().shape == (0, 2)
    ring.write(np.arange(25.0)[:, None].repeat(2, 1))  # one block larger than the ring: its newest 10
    np.testing.assert_array_equal(ring.read()[:, 0], np.arange(15.0, 25.0))
    assert ring.dropped == 4 + 15
    with pytest.raises(AssertionError):
        ring.write(np.zeros([3, 1]))  # the wrong channel count


def test_ring_buffer_between_two_threads_keeps_order_and_counts_every_frame():
    ring = RingBuffer(1000, 1)
    total, got = 200_000, []

    def writer() -> None:
        rng, i = np.random.RandomState(0), 0
        while i < total:
            n = min(int(rng.randint(1, 300)), total - i)
            ring.write(np.arange(i, i + n, dtype=np.float32))
            i += n

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive() or len(ring):
        got.append(ring.read()[:, 0])
        time.sleep(0.0002)
    thread.join()
    values = np.concatenate(got + [ring.read()[:, 0]])
    assert np.all(np.diff(values) > 0)  # oldest first, never a frame twice, never out of order
    assert len(values) + ring.dropped == ring.written == total  # every frame read or counted as dropped
    assert values[-1] == total - 1  # the newest is never the one dropped


# -- the session's source ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sg3r(load_reference):
    return TorchRuntime(load_reference("sg3r_64"))


def listen(source: LiveInput, y: np.ndarray, block: int = 512) -> None:
    """What a capture callback and the analysis thread do, without a device: blocks into the ring, then a drain."""
    for i in range(0, len(y), block):
        source.ring.write(y[i : i + block, None].repeat(source.channels, 1))
        if len(source.ring) > source.ring.capacity // 2:
            source.pump()
    source.pump()


def test_live_input_gives_the_session_an_audio_state():
    source = LiveInput(AudioReaction(speed=1.0, pulse=0.5, loudness=1.0, pitch=0.5, rotate=10.0, translate=2.0), SR)
    assert source.page_track is None  # nothing for the page to play
    quiet = source.at(0.0)
    assert isinstance(quiet, AudioState)
    assert (quiet.walk_rate, quiet.scale, quiet.pitch_mix, quiet.rotation, quiet.translate_gain) == (0.0, 1.0, 0.0, 0.0, 1.0)
    y, times = click_track(6.0, 120.0)
    listen(source, y + chord(CHORD_A_MINOR, 6.0))
    a, f = source.at(123.0), source.analyser.latest  # the session's clock does not matter: the input is now
    b = source.at(0.0)
    assert (a.scale, a.rotation, a.translate_gain) == (b.scale, b.rotation, b.translate_gain)
    np.testing.assert_array_equal(a.pitch_weights, b.pitch_weights)
    assert a.position == pytest.approx(6.0, abs=0.02) == source.position(0.0)
    assert a.walk_rate == pytest.approx(0.5 * (f.loudness + f.onset)) and a.walk_rate == source.walk_rate(1.0)
    assert a.scale == pytest.approx(1.0 + 0.5 * f.onset + f.loudness)
    assert a.pitch_mix == 0.5 and a.pitch_weights.sum() == pytest.approx(1.0)
    assert {PITCH_CLASSES[k] for k in np.argsort(a.pitch_weights)[-3:]} == {"A", "C", "E"}
    turned = f.beat_count - np.sum(f.beats > f.time - BEAT_RAMP_S)  # beats whose turn is complete
    assert 10.0 * turned <= a.rotation <= 10.0 * f.beat_count and f.beat_count >= 7
    since = f.time - f.beats[-1]
    assert a.translate_gain == pytest.approx(1.0 + 2.0 * np.exp(-since / 0.2))
    assert source.sound_clock(5.0, paused=True) == pytest.approx(len(y) / SR)  # the room does not pause


def test_session_frames_react_to_the_input(sg3r, load_reference):
    source = LiveInput(AudioReaction(speed=0.0, pulse=0.0, loudness=1.0), SR)
    session, plain = LiveSession(sg3r, audio=source), LiveSession(sg3r)
    for s in (session, plain):
        s.update({"walk": "off", "seed": 5})
    silent = session.render_frame(session.controls, Clocks())
    np.testing.assert_array_equal(silent, plain.render_frame(plain.controls, Clocks()))  # silence: no reaction
    base = plain.scene.ws(plain.controls, Clocks())
    listen(source, 0.5 * np.sin(2 * np.pi * 330.0 * np.arange(SR) / SR))
    scale = source.at(0.0).scale
    assert scale > 1.9  # full loudness: w pushed away from w_avg by the whole amount
    torch.testing.assert_close(session.scene.ws(session.controls, Clocks()), sg3r.w_avg + scale * (base - sg3r.w_avg))
    loud = session.render_frame(session.controls, Clocks())
    assert np.abs(loud.astype(int) - silent.astype(int)).mean() > 5  # the picture changed
    with pytest.raises(InputError, match="only StyleGAN3"):
        LiveSession(TorchRuntime(load_reference("sg2_64")), audio=LiveInput(AudioReaction(rotate=5.0), SR))


def test_beats_of_the_input_turn_the_image(sg3r):
    source = LiveInput(AudioReaction(speed=0.0, pulse=0.0, rotate=10.0), SR)
    session = LiveSession(sg3r, audio=source)
    y, _ = click_track(5.0, 120.0)
    listen(source, y)
    beats = source.analyser.latest.beat_count
    assert beats >= 5
    listen(source, np.zeros(int(0.3 * SR)))  # past the last beat's ramp
    rotation = source.at(0.0).rotation
    assert rotation == pytest.approx(10.0 * source.analyser.latest.beat_count)
    t = session.scene.transform(session.controls, Clocks())
    plain = LiveSession(sg3r)
    plain.update({"rotate": rotation})
    torch.testing.assert_close(t, plain.scene.transform(plain.controls, Clocks()))


def test_running_session_with_an_input_streams_and_records_the_captured_sound(sg3r, tmp_path):
    """The analysis thread and the render loop running: sound written into the ring in real time (as a capture
    callback would) reaches the frames, and a recording has that sound, as long as its video."""
    from sg3rt.animate.audio import SAMPLE_RATE, read_audio

    source = LiveInput(AudioReaction(speed=0.5, pulse=1.0), SR).start()
    y, _ = click_track(30.0, 120.0)
    stop = threading.Event()

    def capture() -> None:  # real-time blocks of 10 ms
        start, i, n = time.monotonic(), 0, SR // 100
        while not stop.is_set() and i < len(y):
            source.ring.write(y[i : i + n, None])
            i += n
            stop.wait(max(0.0, start + i / SR - time.monotonic()))

    feeder = threading.Thread(target=capture, daemon=True)
    try:
        with LiveSession(sg3r, record_dir=tmp_path, audio=source, controls={"fps": 10.0}) as s:
            feeder.start()
            s.start_recording()
            first = s.stream.wait_next(0, timeout=60).seq
            deadline = time.monotonic() + 120
            while (s.stream.latest.seq < first + 8 or source.captured < 2 * SR) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert s.stats().audio_time > 1.0  # the HUD's sound time is the input's
            out = s.stop_recording()
    finally:
        stop.set()
        feeder.join()
        source.close()
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    sound = read_audio(out)
    assert frames >= 8 and abs(len(sound) / SAMPLE_RATE - frames / 10.0) < 0.05
    env = np.abs(sound)
    # From 0.2 s (a first frame rendered just before the tape began starts with that moment's silence):
    starts = np.arange(0.2, frames / 10.0 - 0.5, 0.5)
    peaks = [env[int(t * SAMPLE_RATE) : int((t + 0.5) * SAMPLE_RATE)].max() for t in starts]
    assert len(peaks) >= 1 and min(peaks) > 0.2, peaks  # a click in every half second: the captured clicks are in it


def test_recording_sound_follows_the_capture_clock(tmp_path):
    """Video frame k sounds from the capture position it was rendered at: a click captured at a known position
    lands at the matching video time; nothing is taped before the recording starts."""
    from sg3rt.animate.audio import SAMPLE_RATE, read_audio
    from sg3rt.live.session import Recording

    source = LiveInput(AudioReaction(), 48000, channels=2)
    listen(source, click_track(1.0, 60.0, 48000)[0])  # before the recording: a click at 0.3 s, not taped
    fps = 10.0
    rec = Recording(tmp_path / "r.mp4", fps, source)  # begin_sound: the tape starts at 1.0 s of capture
    y = np.zeros(2 * 48000)
    y[int(0.75 * 48000) : int(0.76 * 48000)] = 0.8  # a click 0.75 s into the recording's capture
    clocks = []
    for k in range(20):  # each frame rendered after a tenth of a second more capture, published mid-slot
        clocks.append(source.sound_clock(0.0, paused=False))
        rec.add(np.full([32, 32, 3], 10 * k, np.uint8), 100.0 + (k + 0.5 * (k > 0)) / fps, clocks[-1])
        listen(source, y[k * 4800 : (k + 1) * 4800])
        while not rec.queue.empty():
            time.sleep(0.002)
    assert clocks[0] == pytest.approx(1.0) and clocks[-1] == pytest.approx(2.9)
    out = rec.stop()
    assert [p.name for p in tmp_path.iterdir()] == ["r.mp4"]  # the sound file is gone
    sound = np.abs(read_audio(out))
    assert abs(len(sound) / SAMPLE_RATE - 2.0) < 0.05
    at = int(0.75 * SAMPLE_RATE)
    assert sound[at - 300 : at + 800].max() > 0.3
    quiet = np.ones(len(sound), bool)
    quiet[at - int(0.05 * SAMPLE_RATE) : at + int(0.1 * SAMPLE_RATE)] = False
    assert sound[quiet].max() < 0.05  # the click before the recording is not in it


# -- devices and the CLI -----------------------------------------------------------------------------


def _live(args, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sg3rt.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["live", "--port", "0", "missing-network.pkl", *args])
    return result, [line for line in result.output.splitlines() if line.strip()]


FAKE_DEVICES = [InputDevice(0, "Built-in Microphone", 2, 48000.0, True), InputDevice(3, "USB Audio CODEC", 2, 44100.0, False),
                InputDevice(4, "USB Audio Loopback", 2, 44100.0, False)]


@pytest.mark.parametrize("args, match", [
    (["--audio", "x.wav", "--audio-in", "default"], "--audio and --audio-in"),
    (["--audio-in", "Mixer"], "--audio-in 'Mixer': no input device's name contains it"),
    (["--audio-in", "7"], "--audio-in 7: no input device with that index"),
    (["--audio-in", "usb audio"], "names 2 input devices"),
    (["--audio-in", "default", "--react", "volume=2"], "bad --react 'volume=2'"),
])
def test_cli_audio_in_errors_are_one_line_before_the_network(args, match, tmp_path, monkeypatch):
    import sg3rt.live.audio_in as audio_in

    monkeypatch.setattr(audio_in, "input_devices", lambda: FAKE_DEVICES)  # the machine's devices, as PortAudio lists them
    result, lines = _live(args, tmp_path, monkeypatch)
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], result.output


def test_device_names_resolve():
    import sg3rt.live.audio_in as audio_in

    with pytest.MonkeyPatch.context() as m:
        m.setattr(audio_in, "input_devices", lambda: FAKE_DEVICES)
        assert audio_in.find_input_device("default").index == 0
        assert audio_in.find_input_device("3").name == "USB Audio CODEC"
        assert audio_in.find_input_device("loopBACK").index == 4
        m.setattr(audio_in, "input_devices", lambda: [])
        with pytest.raises(InputError, match="no sound input devices on this machine"):
            audio_in.find_input_device("default")


def test_cli_without_portaudio_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # `import sounddevice` fails as without the package
    for args in (["--audio-in", "default"], ["--audio-devices"]):
        result, lines = _live(args, tmp_path, monkeypatch)
        assert result.exit_code == 2, result.output
        assert len(lines) == 1 and "pip install 'sg3rt[audio]'" in lines[0] and "libportaudio2" in lines[0], lines


def _portaudio():
    try:
        import sounddevice
    except (ImportError, OSError) as e:
        pytest.skip(f"no sounddevice / PortAudio here ({type(e).__name__}: {e})")
    return sounddevice


def test_cli_lists_input_devices_for_real(tmp_path, monkeypatch):
    sd = _portaudio()
    result, lines = _live(["--audio-devices"], tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    inputs = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
    if inputs:
        assert len(lines) == len(inputs) and all(d["name"] in line for d, line in zip(inputs, lines))
    else:
        assert lines == ["no sound input devices"]


def test_capture_from_the_default_input_device():
    sd = _portaudio()
    if not any(d["max_input_channels"] > 0 for d in sd.query_devices()) or sd.default.device[0] < 0:
        pytest.skip("no sound input device on this machine (CI and the project's machines have none)")
    with LiveInput.open("default") as source:
        deadline = time.monotonic() + 5.0
        while source.captured < source.sample_rate // 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert source.captured >= source.sample_rate // 2  # half a second captured and analysed
        assert source.analyser.latest.time > 0.3


ALSA_FILE_PCM = """pcm.sg3rtclicks {
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "%s"
    format "raw"
}
"""  # an ALSA capture device without a sound card: reads raw samples from a file (the null slave has no clock)

CAPTURE_SCRIPT = """
import json, sys, time
from sg3rt.live.audio_in import LiveInput, input_devices
names = [d.name for d in input_devices()]
if "sg3rtclicks" not in names:
    print(json.dumps({"skip": f"PortAudio does not list the ALSA file device (it lists {names})"}))
    sys.exit(0)
with LiveInput.open("sg3rtclicks") as source:
    deadline = time.monotonic() + 10.0
    while source.captured < source.sample_rate and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
print(json.dumps({"captured": source.captured, "written": source.ring.written, "dropped": source.ring.dropped,
                  "held": len(source.ring), "capacity": source.ring.capacity, "rate": source.sample_rate,
                  "channels": source.channels, "analysed": source.analyser.latest.time}))
"""


def test_capture_through_portaudio_from_an_alsa_file_device(tmp_path):
    """A real PortAudio stream (no sound card: an ALSA `file` PCM in a private ~/.asoundrc) opened by name: its
    callback fills the ring, the analysis thread drains it, close() ends both. The null slave has no clock, so
    the device delivers far faster than real time: the ring stays bounded and counts what it drops."""
    import json
    import os
    import subprocess

    _portaudio()
    if not sys.platform.startswith("linux"):
        pytest.skip("the ALSA file device is Linux only")
    raw = tmp_path / "clicks.raw"
    y = click_track(2.0, 120.0)[0]
    np.stack([y, y], axis=1).astype("<f4").tofile(raw)  # float32 stereo, as the stream asks for
    (tmp_path / ".asoundrc").write_text(ALSA_FILE_PCM % raw)
    env = dict(os.environ, HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", CAPTURE_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in got:
        pytest.skip(got["skip"])
    assert got["channels"] == 2 and got["capacity"] == int(RING_S * got["rate"])  # bounded, whatever arrives
    assert got["captured"] >= got["rate"] and got["analysed"] > 0.5
    assert got["captured"] + got["dropped"] + got["held"] == got["written"]  # every frame drained, dropped or held
