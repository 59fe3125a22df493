"""Output formats editors take: MP4 (H.264), MOV (ProRes 422 HQ), WebM (VP9), GIF, PNG sequences.

Every format is decoded back (imageio-ffmpeg / imageio) for its codec, frame count, size and pictures;
an interrupted MOV/WebM still plays; --codec and --crf errors are one line, before any work.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import subprocess
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from typer.testing import CliRunner

from refdata import reference_file
from sg3rt import InputError
from sg3rt.animate import Animation, Grid, PathSpec, open_writer, output_codec, render
from sg3rt.animate.writers import CODEC_CRF, CRF_RANGE, output_format
from sg3rt.errors import OutputError
from sg3rt.cli import app
from sg3rt.runtime.torch_backend import TorchRuntime

runner = CliRunner()


def decode(path: Path) -> tuple[str, tuple[int, int], list[np.ndarray]]:
    """(codec name, (width, height), RGB frames) of a video file, as ffmpeg decodes it."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return meta["codec"], (w, h), [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader]


def profile(path: Path) -> str:
    """The codec line ffmpeg prints for the video stream (e.g. 'prores (HQ) ... yuv422p10le')."""
    err = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                         capture_output=True, text=True).stderr
    return next(line for line in err.splitlines() if "Video:" in line)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:  # [5, 33, 47, 3] smooth, different frames of an odd size
    yy, xx = np.mgrid[0:33, 0:47]
    return np.stack([np.stack([xx * 5 + 20 * i, yy * 7, np.full_like(xx, 40 * i)], axis=-1)
                     for i in range(5)]).astype(np.uint8)


@pytest.fixture(scope="module")
def sg2(load_reference):
    return TorchRuntime(load_reference("sg2_64"), "cpu")


@pytest.mark.parametrize("name, codec, want_codec, detail", [
    ("v.mp4", None, "h264", "yuv420p"),
    ("v.mov", None, "prores", "prores (HQ)"),
    ("v.mov", "h264", "h264", "yuv420p"),
    ("v.webm", None, "vp9", "yuv420p"),
])
def test_each_video_format_decodes_back(tmp_path, clip, name, codec, want_codec, detail):
    with open_writer(tmp_path / name, 12, codec=codec) as writer:
        writer.write(clip[:2])
        writer.write(clip[2:])
    got_codec, size, frames = decode(tmp_path / name)
    assert got_codec.startswith(want_codec) and detail in profile(tmp_path / name)
    assert size == (48, 34) and len(frames) == 5  # odd sizes padded to even by repeating the edge
    for got, want in zip(frames, clip):  # the same pictures, in order (lossy codecs: a few levels off)
        assert np.abs(got[:33, :47].astype(int) - want.astype(int)).mean() < 4
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_prores_is_422_hq_10_bit(tmp_path, clip):
    with open_writer(tmp_path / "v.mov", 24) as writer:
        writer.write(clip)
    line = profile(tmp_path / "v.mov")
    assert "prores (HQ)" in line and "yuv422p10le" in line and "24 fps" in line


def test_gif_and_png_sequence(tmp_path, clip):
    for name in ("v.gif", "seq"):
        with open_writer(tmp_path / name, 12) as writer:
            writer.write(clip)
    assert iio.imread(tmp_path / "v.gif", index=None).shape == (5, 33, 47, 3)
    names = sorted(p.name for p in (tmp_path / "seq").iterdir())
    assert names == [f"frame{i:06d}.png" for i in range(5)]  # zero-padded: sorted by name = in order
    for i, name in enumerate(names):
        np.testing.assert_array_equal(iio.imread(tmp_path / "seq" / name), clip[i])  # PNG is lossless


def test_png_names_sort_in_order_past_ten_frames(tmp_path, clip):
    with open_writer(tmp_path / "seq", 12) as writer:
        for _ in range(3):
            writer.write(clip)  # 15 frames
    names = sorted(p.name for p in (tmp_path / "seq").iterdir())
    assert names[9:12] == ["frame000009.png", "frame000010.png", "frame000011.png"] and len(names) == 15


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_crf_sets_the_quality(tmp_path, clip, codec):
    suffix = ".mp4" if codec == "h264" else ".webm"
    lo, hi = CRF_RANGE[codec]
    errors, sizes = [], []
    noisy = np.clip(clip.astype(int) + np.random.RandomState(0).randint(-30, 30, clip.shape), 0, 255).astype(np.uint8)
    for crf in (lo + 4, hi - 4):
        out = tmp_path / f"q{crf}{suffix}"
        with open_writer(out, 12, crf=crf, codec=codec) as writer:
            writer.write(noisy)
        frames = decode(out)[2]
        errors.append(np.mean([np.abs(g[:33, :47].astype(int) - f.astype(int)).mean() for g, f in zip(frames, noisy)]))
        sizes.append(out.stat().st_size)
    assert errors[0] < errors[1] and sizes[0] > sizes[1]  # a low CRF is closer to the frames, and bigger


def test_codec_and_crf_defaults_agree_with_the_cli():
    cli_render = app.registered_commands[[c.callback.__name__ for c in app.registered_commands].index("render")].callback
    params = inspect.signature(cli_render).parameters
    lib = inspect.signature(open_writer).parameters
    assert params["crf"].default is None and lib["crf"].default is None  # None = the codec's own default
    assert params["codec"].default is None and lib["codec"].default is None  # None = the container's default
    assert output_codec(Path("a.mp4")) == ("h264", CODEC_CRF["h264"])
    assert output_codec(Path("a.webm")) == ("vp9", CODEC_CRF["vp9"])
    assert output_codec(Path("a.mov")) == ("prores", None)
    assert output_codec(Path("a.mov"), "h264", 20) == ("h264", 20)


@pytest.mark.parametrize("name, kwargs, match", [
    ("a.mp4", {"codec": "vp9"}, "does not fit .mp4 (use .webm"),
    ("a.webm", {"codec": "prores"}, "does not fit .webm (use .mov"),
    ("frames", {"codec": "h264"}, "does not fit a folder of PNG frames"),
    ("a.gif", {"codec": "png"}, "use a folder"),
    ("a.mov", {"crf": 10}, "--crf does not apply to prores"),
    ("a.gif", {"crf": 10}, "--crf does not apply to gif"),
    ("a.webm", {"crf": 64}, "--crf for vp9 must be between 0 (best) and 63"),
    ("a.mp4", {"crf": 52}, "--crf for h264 must be between 0 (best) and 51"),
    ("a.mkv", {}, "use .mp4, .mov, .webm, .gif"),
])
def test_codec_errors(tmp_path, name, kwargs, match):
    with pytest.raises(InputError, match=re.escape(match)):
        open_writer(tmp_path / name, 30, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, match", [
    (["--codec", "vp9", "-o", "{d}/x.mp4"], "does not fit .mp4"),
    (["--codec", "prores", "--crf", "20", "-o", "{d}/x.mov"], "--crf does not apply to prores"),
    (["--crf", "70", "-o", "{d}/x.webm"], "--crf for vp9"),
    (["--codec", "av1", "-o", "{d}/x.mp4"], "av1"),
])
def test_cli_codec_errors_are_one_line(tmp_path, args, match):
    result = runner.invoke(app, ["render", "--frames", "2", *[a.format(d=tmp_path) for a in args]])
    assert result.exit_code == 2, result.output
    out = [line for line in result.output.splitlines() if line.strip()]
    assert len(out) == 1 and out[0].startswith("error:") and match in out[0], result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, args, codec", [
    ("v.mov", [], "prores"),
    ("v.webm", ["--crf", "30"], "vp9"),
    ("h.mov", ["--codec", "h264", "--crf", "20"], "h264"),
])
def test_cli_renders_each_format(tmp_path, name, args, codec):
    out = tmp_path / name
    result = runner.invoke(app, ["render", "-n", str(reference_file("sg2_64.pkl")), "--seeds", "0-1", "--frames", "4",
                                 *args, "-o", str(out)])
    assert result.exit_code == 0, result.output
    got_codec, size, frames = decode(out)
    assert got_codec.startswith(codec) and size == (64, 64) and len(frames) == 4
    assert [p.name for p in tmp_path.iterdir()] == [name]


class Interrupting:
    """A runtime that raises KeyboardInterrupt (Ctrl-C) on its n-th frames() call."""

    def __init__(self, runtime, at: int):
        self.runtime, self.at, self.calls = runtime, at, 0

    def __getattr__(self, name):
        return getattr(self.runtime, name)

    def frames(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.runtime.frames(*args, **kwargs)


@pytest.mark.parametrize("name, codec", [("out.mov", "prores"), ("out.webm", "vp9")])
def test_interrupt_keeps_a_playable_file(sg2, tmp_path, name, codec):
    runtime = Interrupting(sg2, at=3)
    anim = Animation(runtime, [0, 1], PathSpec("linear"), frames=8)
    with pytest.raises(KeyboardInterrupt):
        with open_writer(tmp_path / name, 30) as writer, contextlib.closing(render(runtime, anim, writer, 2)) as ev:
            for _ in ev:
                pass
    assert writer.kept and writer.count == 4
    got_codec, size, frames = decode(tmp_path / name)
    assert got_codec.startswith(codec) and size == (64, 64) and len(frames) == 4
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temp file left


# ---- limits checked before any work ---------------------------------------------------------------


@pytest.mark.parametrize("fps", [0, -1, float("nan"), float("inf"), 1e-4, 1e12])
def test_a_frame_rate_ffmpeg_cannot_take_is_refused_before_anything_is_made(tmp_path, fps):
    """ffmpeg reads -r 0.0001 as 0/1 (and fails after the render); 1e12 it refuses; 0, -1 and NaN used to
    pass open_writer. All are one line, and nothing is created."""
    for name in ("v.mp4", "v.webm", "v.gif", "frames"):
        with pytest.raises(InputError, match=r"^fps must be between 0\.01 and 1000 frames per second"):
            open_writer(tmp_path / "new" / name, fps)
    assert list(tmp_path.iterdir()) == []


def test_the_frame_rate_range_is_what_ffmpeg_and_gif_play(tmp_path, clip):
    """Both ends of the range encode, and say so in the file; a GIF stops at 100 fps (centisecond delays)."""
    for name, fps in (("slow.mp4", 0.01), ("fast.webm", 1000), ("fast.gif", 100)):
        with open_writer(tmp_path / name, fps) as writer:
            writer.write(clip[:3])
    for name in ("slow.mp4", "fast.webm"):
        assert len(decode(tmp_path / name)[2]) == 3
    assert iio.immeta(tmp_path / "fast.gif", index=0)["duration"] == 10  # ms: 1 cs per frame
    with pytest.raises(InputError, match=r"^120 fps is too fast for a GIF .*at most 100 fps"):
        open_writer(tmp_path / "v.gif", 120)
    with pytest.raises(InputError, match="too fast for a GIF"):
        output_codec("v.gif", fps=120)  # (what the CLI checks before loading anything)
    assert output_codec("v.mp4", fps=120) == ("h264", CODEC_CRF["h264"])


def test_a_folder_is_named_by_its_trailing_slash_whatever_its_dots(tmp_path, clip):
    """'frames.v2/' is a PNG folder (Path() dropped the slash: "unknown output type '.v2'"); '.mp4' is refused,
    not made into a hidden PNG folder."""
    out = f"{tmp_path / 'frames.v2'}/"
    assert output_format(out) == "png"
    with open_writer(out, 12) as writer:
        writer.write(clip[:2])
    assert sorted(p.name for p in (tmp_path / "frames.v2").iterdir()) == ["frame000000.png", "frame000001.png"]
    with pytest.raises(InputError, match=r"unknown output type '\.v3' .*a folder name with a dot ends with /, e\.g\. "
                                         r"frames\.v3/"):
        open_writer(tmp_path / "frames.v3", 12)
    for name in (".mp4", ".GIF"):
        with pytest.raises(InputError, match=rf"{re.escape(name)}: give a name before the suffix"):
            open_writer(tmp_path / name, 12)
    assert output_format(tmp_path / ".frames") == "png"  # a hidden folder that is not a suffix stays a folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.v2"]


class Huge:
    """A 2x1 grid of 16384 x 2 tiles: frames 32768 x 2, which no frame may be computed for."""

    num_frames, frame_size, grid = 2, (2, 32768), Grid(2, 1)

    def inputs(self, frames):
        raise AssertionError("a frame was computed")


def test_frames_too_big_for_the_codec_are_refused_before_any_frame(tmp_path):
    with open_writer(tmp_path / "z.mp4", 30) as writer:
        with pytest.raises(InputError, match=r"z\.mp4: frames of 32768x2 are too big for h264 \(at most 16384 pixels "
                                             r"per side\).*\.webm"):
            next(render(None, Huge(), writer))
    assert list(tmp_path.iterdir()) == []
    with open_writer(tmp_path / "z.webm", 30) as writer:
        writer.check_frame_size(2, 32768)  # VP9 takes 65536 per side
        with pytest.raises(InputError, match=r"frames of 65538x2 are too big for vp9 \(at most 65536"):
            writer.check_frame_size(2, 65537)  # (padded to even)
        with pytest.raises(InputError, match=r"frames of 16384x16384 are too big for ffmpeg"):
            writer.check_frame_size(16384, 16384)
    with open_writer(tmp_path / "z.gif", 30) as writer:
        with pytest.raises(InputError, match=r"too big for gif \(at most 65535"):
            writer.check_frame_size(2, 65536)
    with open_writer(tmp_path / "frames", 30) as writer:
        writer.check_frame_size(2, 65536)  # PNG frames take any size
    assert list(tmp_path.iterdir()) == []


def test_an_encoder_failure_keeps_the_encoders_own_reason(tmp_path):
    """Past the size check (a library caller writing frames itself), libx264's own line says why, not ffmpeg's
    closing 'Nothing was written into output file'."""
    writer = open_writer(tmp_path / "z.mp4", 30)
    with pytest.raises(OutputError, match=r"z\.mp4: ffmpeg .*: invalid width x height \(16386x2\)$"):
        with writer:
            writer.write(np.zeros((1, 2, 16386, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_a_writer_removes_the_folders_it_made_when_nothing_is_kept(tmp_path, clip):
    """A render that fails (a network that does not load, an encoder error) leaves no empty folders behind;
    folders that were there, or that hold something else, stay."""
    for name in ("v.mp4", "v.gif", "frames"):
        writer = open_writer(tmp_path / "new" / "sub" / name, 12)
        assert (tmp_path / "new" / "sub").is_dir()
        writer.close(keep=False)
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with open_writer(tmp_path / "new" / "sub" / "v.webm", 12) as writer:
            writer.write(clip[:1])
            raise RuntimeError("the render failed")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "mine.txt").write_text("mine")
    open_writer(tmp_path / "new" / "sub" / "v.mp4", 12).close()  # no frames: nothing kept
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["mine.txt"]
    with open_writer(tmp_path / "new" / "sub" / "v.mp4", 12) as writer:
        writer.write(clip[:1])
    assert [p.name for p in (tmp_path / "new" / "sub").iterdir()] == ["v.mp4"]  # kept: its folder stays
