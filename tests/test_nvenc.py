"""NVIDIA hardware encoding (--codec h264-nvenc / hevc-nvenc): where ffmpeg cannot open the encoder (every
CPU machine, and GPUs without an NVENC block) it is one line before anything renders, naming the codec, ffmpeg's
reason and the alternative; the container side works with a software encoder standing in; where NVENC opens, a
real render encodes and decodes back close to its frames (GPU test)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from typer.testing import CliRunner

import sg3rt
from sg3rt import BackendUnavailableError, InputError
from sg3rt.errors import OutputError
from sg3rt.animate import Animation, Grid, PathSpec, frame_batches, open_writer, output_codec, render
from sg3rt.animate import writers
from sg3rt.animate.writers import (CODEC_CRF, NVENC_CQ_RANGE, NVENC_ENCODERS, NvencWriter, check_encoder,
                                   encoder_failure, ffmpeg_encoders, ffmpeg_reason, listed_encoders)
from sg3rt.cli import app

runner = CliRunner()
NVENC = tuple(NVENC_ENCODERS)  # ("h264-nvenc", "hevc-nvenc")
MIN_PSNR_DB = 35.0  # decoded NVENC frames vs the rendered ones, at the default quality

# Real ffmpeg output, kept verbatim (addresses included) so the parsers are tested on what ffmpeg prints.
# The NVENC probe with the ffmpeg 9.0.2 of imageio-ffmpeg 0.8.1 on a machine without an NVIDIA driver:
NO_DRIVER_LOG = """\
[h264_nvenc @ 0x557594b78680] Cannot load libcuda.so.1
[vost#0:0/h264_nvenc @ 0x557594b77b00] [enc:h264_nvenc @ 0x557594b78540] Error while opening encoder - maybe incorrect parameters such as bit_rate, rate, width or height.
[vf#0:0 @ 0x557594b93500] Error sending frames to consumers: Operation not permitted
[vf#0:0 @ 0x557594b93500] Task finished with error code: -1 (Operation not permitted)
[vf#0:0 @ 0x557594b93500] Terminating thread with return code -1 (Operation not permitted)
[vost#0:0/h264_nvenc @ 0x557594b77b00] [enc:h264_nvenc @ 0x557594b78540] Could not open encoder before EOF
[vost#0:0/h264_nvenc @ 0x557594b77b00] Task finished with error code: -22 (Invalid argument)
[vost#0:0/h264_nvenc @ 0x557594b77b00] Terminating thread with return code -22 (Invalid argument)
[out#0/null @ 0x557594b76f40] Nothing was written into output file, because at least one of its streams received no packets.
"""
# The same ffmpeg given a preset it does not know (`-preset p9`):
BAD_OPTION_LOG = """\
[hevc_nvenc @ 0x562b2087ec80] [Eval @ 0x7ffd47c0f3a0] Undefined constant or missing '(' in 'p9'
[hevc_nvenc @ 0x562b2087ec80] Unable to parse "preset" option value "p9"
[hevc_nvenc @ 0x562b2087ec80] Error setting option preset to value p9.
[vost#0:0/hevc_nvenc @ 0x562b2087e100] Error applying encoder options: Invalid argument
"""
# The start and the H.264 rows of `ffmpeg -hide_banner -encoders`: ffmpeg 9.0.2 (imageio-ffmpeg 0.8.1) and
# ffmpeg 7.0.2 (imageio-ffmpeg 0.6 / 0.7, built without NVENC).
LISTING_HEAD = """\
Encoders:
 V..... = Video
 A..... = Audio
 S..... = Subtitle
 .F.... = Frame-level multithreading
 ..S... = Slice-level multithreading
 ...X.. = Codec is experimental
 ....B. = Supports draw_horiz_band
 .....D = Supports direct rendering method 1
 ------
"""
LISTING_9 = LISTING_HEAD + """\
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D libopenh264          OpenH264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)
 V....D libx265              libx265 H.265 / HEVC (codec hevc)
 V....D hevc_nvenc           NVIDIA NVENC hevc encoder (codec hevc)
 A....D aac                  AAC (Advanced Audio Coding) (codec aac)
"""
LISTING_7 = LISTING_HEAD + """\
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D libx264rgb           libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 RGB (codec h264)
 V....D libopenh264          OpenH264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 A....D aac                  AAC (Advanced Audio Coding) (codec aac)
"""


def nvenc_problem(codec: str) -> str | None:
    """Why this codec cannot encode here (the error line), or None where NVENC opens."""
    try:
        check_encoder(codec)
    except BackendUnavailableError as e:
        return str(e)
    return None


def needs_no_nvenc(codec: str) -> None:
    if nvenc_problem(codec) is None:
        pytest.skip(f"{codec} opens on this machine (the unavailable path cannot be tested here)")


def lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------
# The error where the encoder cannot open: library and CLI, one line, before any work, nothing written.


@pytest.mark.parametrize("codec", NVENC)
@pytest.mark.parametrize("name", ["v.mp4", "v.mov"])
def test_unavailable_encoder_is_one_line_from_the_library(tmp_path, codec, name):
    needs_no_nvenc(codec)
    with pytest.raises(BackendUnavailableError) as info:
        open_writer(tmp_path / name, 30, codec=codec)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"--codec {codec}: ") and "; use --codec h264" in message
    if "NVENC is not available on this machine: " in message:  # the encoder is in this ffmpeg; the driver or GPU is not
        reason = message.split("on this machine: ", 1)[1].rsplit("; use --codec", 1)[0]
        assert reason and "@ 0x" not in reason  # ffmpeg's own words, without its log tags
    else:
        assert f"this ffmpeg has no {NVENC_ENCODERS[codec]} encoder" in message
    with pytest.raises(BackendUnavailableError, match=re.escape(message)):  # the CLI's early check says the same
        output_codec(tmp_path / name, codec)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("codec", NVENC)
def test_cli_unavailable_encoder_fails_before_the_network_loads(tmp_path, monkeypatch, codec):
    needs_no_nvenc(codec)
    opened = []
    monkeypatch.setattr(sg3rt, "open_generator", lambda *a, **k: opened.append(a), raising=False)
    out = tmp_path / "x.mp4"
    result = runner.invoke(app, ["render", "--seeds", "0-1", "--frames", "3", "--codec", codec, "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert lines(result) == [f"error: {nvenc_problem(codec)}"]  # one line, no traceback
    assert opened == [] and list(tmp_path.iterdir()) == []  # no network opened, nothing written


@pytest.mark.parametrize("args, match", [
    (["--codec", "h264-nvenc", "-o", "{d}/x.webm"], "--codec h264-nvenc does not fit .webm (use .mp4 or .mov, or --codec vp9)"),
    (["--codec", "hevc-nvenc", "-o", "{d}/x.gif"], "--codec hevc-nvenc does not fit .gif (use .mp4 or .mov"),
    (["--codec", "hevc-nvenc", "-o", "{d}/frames"], "--codec hevc-nvenc does not fit a folder of PNG frames"),
    (["--codec", "h264-nvenc", "--crf", "0", "-o", "{d}/x.mp4"], "--crf for h264-nvenc must be between 1 (best) and 51"),
    (["--codec", "hevc-nvenc", "--crf", "52", "-o", "{d}/x.mov"], "--crf for hevc-nvenc must be between 1 (best) and 51"),
])
def test_cli_container_and_crf_errors_come_first(tmp_path, args, match):
    """On every machine: checked before the encoder probe, so the answer does not depend on the GPU."""
    result = runner.invoke(app, ["render", "--frames", "2", *[a.format(d=tmp_path) for a in args]])
    assert result.exit_code == 2, result.output
    out = lines(result)
    assert len(out) == 1 and out[0].startswith("error: ") and match in out[0], result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("codec", NVENC)
def test_crf_range_and_default(tmp_path, codec):
    lo, hi = NVENC_CQ_RANGE
    assert lo == 1  # NVENC's -cq 0 means "automatic", not "best": never passed through
    for crf in (lo - 1, hi + 1):
        with pytest.raises(InputError, match=re.escape(f"--crf for {codec} must be between 1 (best) and 51 (worst)")):
            open_writer(tmp_path / "v.mp4", 30, codec=codec, crf=crf)
        with pytest.raises(InputError):
            NvencWriter(tmp_path / "v.mp4", 30, codec, crf)
    assert lo <= CODEC_CRF[codec] <= hi
    with pytest.raises(InputError, match="NvencWriter takes --codec h264-nvenc or hevc-nvenc"):
        NvencWriter(tmp_path / "v.mp4", 30, "h264")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# The probe's parts, on real ffmpeg output.


def test_encoder_listing_is_read_from_real_ffmpeg_output():
    assert {"libx264", "h264_nvenc", "hevc_nvenc", "aac"} <= listed_encoders(LISTING_9)
    assert "h264_nvenc" not in listed_encoders(LISTING_7) and "libx264" in listed_encoders(LISTING_7)
    assert "=" not in listed_encoders(LISTING_9)  # the legend above the rule is no encoder
    shipped = ffmpeg_encoders(imageio_ffmpeg.get_ffmpeg_exe())  # the ffmpeg this machine runs
    assert {"libx264", "libvpx-vp9", "prores_ks", "gif", "aac"} <= shipped  # every encoder the writers use


def test_failure_reason_is_the_encoders_own_words():
    assert encoder_failure("h264-nvenc", NO_DRIVER_LOG) == (
        "--codec h264-nvenc: NVENC is not available on this machine: Cannot load libcuda.so.1; "
        "use --codec h264 (x264 on the CPU)")
    assert encoder_failure("hevc-nvenc", BAD_OPTION_LOG) == (
        "--codec hevc-nvenc: NVENC is not available on this machine: Undefined constant or missing '(' in 'p9'; "
        "Unable to parse \"preset\" option value \"p9\"; Error setting option preset to value p9; "
        "use --codec h264 (x264 on the CPU)")
    # No line of the encoder's own (another encoder's log): ffmpeg's last line, without its tags.
    assert "Nothing was written into output file" in encoder_failure("hevc-nvenc", NO_DRIVER_LOG)
    assert ffmpeg_reason(NO_DRIVER_LOG) == ("Nothing was written into output file, because at least one of its "
                                            "streams received no packets")  # any writer: the last line
    assert encoder_failure("h264-nvenc", "").endswith("not available on this machine: ffmpeg gave no reason; "
                                                      "use --codec h264 (x264 on the CPU)")


@pytest.mark.parametrize("codec", NVENC)
def test_nvenc_options_parse_in_the_shipped_ffmpeg(monkeypatch, codec):
    """Where the probe fails, it fails on the driver or GPU, never on sg3rt's options (preset, tune, rc, cq);
    a bad option value is caught the same way (so this check can fail)."""
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    if NVENC_ENCODERS[codec] not in ffmpeg_encoders(exe):
        pytest.skip(f"this ffmpeg has no {NVENC_ENCODERS[codec]} encoder")
    monkeypatch.setattr(writers, "_encoder_checks", {})
    problem = nvenc_problem(codec)
    assert problem is None or not re.search(r"option|Unable to parse|Undefined constant", problem), problem
    monkeypatch.setattr(writers, "_encoder_checks", {})
    monkeypatch.setattr(writers, "NVENC_PRESET", "p9")
    assert "Unable to parse \"preset\" option value \"p9\"" in nvenc_problem(codec)


def test_an_ffmpeg_without_the_encoder(tmp_path, monkeypatch):
    """imageio-ffmpeg's own IMAGEIO_FFMPEG_EXE picks the ffmpeg: here a stand-in that lists the encoders of the
    ffmpeg 7.0.2 builds (no NVENC) and fails any encode as that ffmpeg does for an unknown option."""
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!{sys.executable}\nimport sys\n"
                    f"if '-encoders' in sys.argv:\n    sys.stdout.write({LISTING_7!r})\n    sys.exit(0)\n"
                    "sys.stderr.write(\"Unrecognized option 'rc'.\\nError splitting the argument list: Option not found\\n\")\n"
                    "sys.exit(8)\n")
    fake.chmod(0o755)
    monkeypatch.setattr(writers, "_encoder_checks", {})
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(fake))
    for codec in NVENC:
        with pytest.raises(BackendUnavailableError) as info:
            open_writer(tmp_path / "out" / "v.mp4", 30, codec=codec)
        assert str(info.value) == (f"--codec {codec}: this ffmpeg has no {NVENC_ENCODERS[codec]} encoder "
                                   f"(imageio-ffmpeg >= 0.8 ships one that has); use --codec h264")
    result = runner.invoke(app, ["render", "--frames", "2", "--codec", "h264-nvenc", "-o", str(tmp_path / "out" / "v.mov")])
    assert result.exit_code == 2 and lines(result) == [
        "error: --codec h264-nvenc: this ffmpeg has no h264_nvenc encoder (imageio-ffmpeg >= 0.8 ships one that has); "
        "use --codec h264"], result.output
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------
# The container side of the writer (padding, hvc1, audio, interruption) with a software encoder standing in.


STAND_IN = {"h264-nvenc": ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-crf", "18"],
            "hevc-nvenc": ["-c:v", "libx265", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-crf", "18",
                           "-x265-params", "log-level=error"]}  # libx264 / libx265 in place of NVENC


@pytest.fixture
def stand_in(monkeypatch):
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    if "libx265" not in ffmpeg_encoders(exe):
        pytest.skip("this ffmpeg has no libx265 to stand in for hevc_nvenc")
    monkeypatch.setattr(writers, "nvenc_args", lambda codec, cq: STAND_IN[codec])
    monkeypatch.setattr(writers, "_encoder_checks", {(exe, codec): None for codec in NVENC})


def write_wav(path: Path, seconds: float, rate: int = 44100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2").tobytes())
    return path


def streams(path: Path) -> list[str]:
    """The stream lines ffmpeg prints for a file ('Stream #0:0...: Video: hevc (Main) (hvc1 / 0x31637668), ...')."""
    err = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                         capture_output=True, text=True).stderr
    return [line.strip() for line in err.splitlines() if "Stream #" in line]


def decode(path: Path) -> tuple[dict, list[np.ndarray]]:
    """(imageio-ffmpeg's reader metadata, RGB frames [H, W, 3]) of a video file."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return meta, [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader]


@pytest.mark.parametrize("codec, name, codec_name, tag", [
    ("h264-nvenc", "v.mp4", "h264", "avc1"), ("hevc-nvenc", "v.mp4", "hevc", "hvc1"), ("hevc-nvenc", "v.mov", "hevc", "hvc1")])
def test_writer_container_side_with_a_stand_in_encoder(tmp_path, stand_in, codec, name, codec_name, tag):
    yy, xx = np.mgrid[0:33, 0:47]
    clip = np.stack([np.stack([xx * 5 + 20 * i, yy * 7, np.full_like(xx, 40 * i)], axis=-1)
                     for i in range(6)]).astype(np.uint8)  # [6, 33, 47, 3]: odd size
    track = write_wav(tmp_path / "a.wav", 2.0)
    out = tmp_path / name
    with open_writer(out, 12, codec=codec, audio=track) as writer:
        assert isinstance(writer, NvencWriter)
        writer.write(clip[:4])
        writer.write(clip[4:])
    meta, frames = decode(out)
    assert meta["codec"].startswith(codec_name) and meta["size"] == (48, 34) and len(frames) == 6  # padded to even
    video, audio = streams(out)
    assert f"({tag} / 0x" in video  # hvc1 for HEVC (Apple players), kept through the audio mux
    assert "Audio: aac" in audio
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.wav", name])  # no temp file left


def test_encoder_failure_names_the_encoders_own_reason(tmp_path, stand_in, monkeypatch):
    """An encoder that fails once frames arrive (NVENC refusing a frame size, say) is an OutputError with the
    encoder's own words, not ffmpeg's closing line; here libx264 with a bad preset stands in."""
    monkeypatch.setattr(writers, "NVENC_ENCODERS", {codec: "libx264" for codec in NVENC})
    monkeypatch.setattr(writers, "nvenc_args", lambda codec, cq: ["-c:v", "libx264", "-preset", "bogus"])
    with pytest.raises(OutputError) as info:
        with open_writer(tmp_path / "v.mp4", 30, codec="h264-nvenc") as writer:
            writer.write(np.zeros([2, 64, 64, 3], np.uint8))
    assert str(info.value).startswith(f"{tmp_path / 'v.mp4'}: ffmpeg ")
    assert str(info.value).endswith(": Error setting preset/tune bogus/(null)"), str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_stand_in_render_keeps_a_playable_file(tmp_path, stand_in):
    class Interrupting:  # raises KeyboardInterrupt (Ctrl-C) on its third frames() call
        def __init__(self, runtime):
            self.runtime, self.calls = runtime, 0

        def __getattr__(self, name):
            return getattr(self.runtime, name)

        def frames(self, *args, **kwargs):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return self.runtime.frames(*args, **kwargs)

    with sg3rt.open_generator(None, backend="torch", device="cpu") as rt:
        runtime = Interrupting(rt)
        anim = Animation(runtime, [0, 1], PathSpec("linear"), frames=8)
        with pytest.raises(KeyboardInterrupt):
            with open_writer(tmp_path / "v.mp4", 30, codec="hevc-nvenc") as writer, \
                    contextlib.closing(render(runtime, anim, writer, 2)) as events:
                for _ in events:
                    pass
    meta, frames = decode(tmp_path / "v.mp4")
    assert writer.kept and writer.count == 4 and len(frames) == 4 and meta["codec"].startswith("hevc")
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


# ------------------------------------------------------------------------------------------------
# The real encoder, where the machine has one.


def psnr_db(got: np.ndarray, want: np.ndarray) -> float:
    mse = np.mean((got.astype(np.float64) - want.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.gpu
@pytest.mark.parametrize("codec, name, codec_name, with_audio", [
    ("h264-nvenc", "v.mp4", "h264", False), ("hevc-nvenc", "v.mp4", "hevc", True)])
def test_nvenc_encodes_a_real_render(tmp_path, codec, name, codec_name, with_audio):
    problem = nvenc_problem(codec)
    if problem is not None:
        pytest.skip(problem)
    fps, count = 30.0, 30
    with sg3rt.open_generator(None, backend="torch", device="cuda") as runtime:
        # A 2x2 grid of the embedded network's 128 px images: 256 x 256, above every NVENC minimum size.
        anim = Animation(runtime, list(range(8)), PathSpec("cubic", psi=0.7), fps, grid=Grid(2, 2), frames=count)
        rendered = np.concatenate(list(frame_batches(runtime, anim, 8)))  # [30, 256, 256, 3]
    track = write_wav(tmp_path / "a.wav", count / fps + 0.5) if with_audio else None
    out = tmp_path / name
    with open_writer(out, fps, codec=codec, audio=track) as writer:
        for i in range(0, count, 8):
            writer.write(rendered[i:i + 8])
    meta, frames = decode(out)
    assert meta["codec"].startswith(codec_name) and meta["size"] == (256, 256) and len(frames) == count
    assert psnr_db(np.stack(frames), rendered) >= MIN_PSNR_DB
    found = streams(out)
    assert ("(hvc1 / 0x" in found[0]) == (codec == "hevc-nvenc")
    assert any("Audio: aac" in s for s in found) == with_audio
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name] + (["a.wav"] if with_audio else []))
