"""`sg3rt render` / `sg3rt image` through typer's CliRunner: outputs decoded back, errors are one line + exit 2."""

from __future__ import annotations

import contextlib
import sys

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from typer.testing import CliRunner

from refdata import reference_file
from sg3rt.animate import seed_z
from sg3rt.cli import app
from sg3rt.runtime.torch_backend import TorchRuntime

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


def mp4_frames(path) -> tuple[tuple[int, int], int]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    return tuple(meta["size"]), sum(1 for _ in reader)


@pytest.fixture(scope="module")
def sg3r_pkl():
    return reference_file("sg3r_64.pkl")


@pytest.fixture(scope="module")
def sg2_pkl():
    return reference_file("sg2_64.pkl")


def test_render_default_network_mp4(tmp_path):
    out = tmp_path / "default.mp4"
    result = run("render", "--seeds", "0-1", "--frames", "3", "--rotate", "30", "-o", out)
    assert result.exit_code == 0, result.output
    assert "embedded default network" in result.output
    assert mp4_frames(out) == ((128, 128), 3)


def test_render_grid_gif_with_motion_and_mixing(tmp_path, sg3r_pkl):
    out = tmp_path / "grid.gif"
    result = run("render", "-n", sg3r_pkl, "--seeds", "0-3", "--grid", "2x1", "--path", "cubic", "--loop",
                 "--frames", "3", "--translate", "circle:0.1", "--rotate-speed", "90", "--mix", "coarse:7",
                 "--psi", "0.7", "--batch", "4", "-o", out)
    assert result.exit_code == 0, result.output
    assert f"from {sg3r_pkl}" in result.output
    assert iio.imread(out, index=None).shape == (3, 64, 128, 3)


def test_render_is_deterministic(tmp_path, sg2_pkl):
    for name in ("a", "b"):
        result = run("render", "-n", sg2_pkl, "--seeds", "1,2", "--path", "slerp", "--frames", "3", "--psi", "0.5",
                     "-o", tmp_path / name)
        assert result.exit_code == 0, result.output
    for i in range(3):
        a = iio.imread(tmp_path / "a" / f"frame{i:06d}.png")
        np.testing.assert_array_equal(a, iio.imread(tmp_path / "b" / f"frame{i:06d}.png"))
    assert not np.array_equal(iio.imread(tmp_path / "a" / "frame000000.png"), iio.imread(tmp_path / "a" / "frame000002.png"))


def test_image_matches_the_runtime(tmp_path, load_reference, sg3r_pkl):
    result = run("image", "-n", sg3r_pkl, "--seeds", "4,9", "--psi", "0.7", "--rotate", "10", "-o", tmp_path / "imgs")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == ["seed0004.png", "seed0009.png"]
    rt = TorchRuntime(load_reference("sg3r_64"), "cpu")
    from sg3rt import input_transform

    ws = rt.mapping(seed_z(9, rt.z_dim)[None].astype(np.float32), None, 0.7)
    want = rt.frames(ws, input_transform(10.0))[0].numpy().astype(int)
    assert np.abs(iio.imread(tmp_path / "imgs" / "seed0009.png").astype(int) - want).max() <= 1
    one = run("image", "-n", sg3r_pkl, "--seeds", "4", "-o", tmp_path / "one.png")
    assert one.exit_code == 0 and (tmp_path / "one.png").is_file()


def test_interrupt_exits_130_and_keeps_frames(tmp_path, sg2_pkl, monkeypatch):
    render_module = sys.modules["sg3rt.animate.render"]  # (the package re-exports a function of that name)
    real = render_module.frame_batches

    def interrupted(*args, **kwargs):
        for i, frames in enumerate(real(*args, **kwargs)):
            if i == 2:
                raise KeyboardInterrupt
            yield frames

    monkeypatch.setattr(render_module, "frame_batches", interrupted)
    out = tmp_path / "cut.mp4"
    result = run("render", "-n", sg2_pkl, "--seeds", "0-1", "--frames", "10", "--batch", "2", "-o", out)
    assert result.exit_code == 130
    assert "interrupted: kept the first 4 of 10 frames" in result.output
    assert mp4_frames(out) == ((64, 64), 4)


@pytest.mark.parametrize("args, match", [
    (["--seeds", "7-3"], "reversed seed range"),
    (["--seeds=-1"], "bad seed"),
    (["--seeds", ""], "empty seed list"),
    (["--path", "spiral"], "unknown path"),
    (["--duration", "0"], "--duration"),
    (["--duration", "-2"], "--duration"),
    (["--fps", "0"], "--fps"),
    (["--grid", "2x2", "--seeds", "0-2"], "multiple of 4"),
    (["--translate", "square"], "--translate"),
    (["--mix", "coarse"], "--mix"),
    (["--rotate", "10", "--rotate-speed", "5"], "not both"),
    (["--frames", "2", "--duration", "1"], "only one"),
    (["--batch", "0"], "--batch"),
    (["--psi", "1e300"], "--psi must be between -100 and 100"),  # once: fp32 overflow, a traceback
])
def test_render_errors_before_loading(tmp_path, args, match):
    result = run("render", *args, "-o", tmp_path / "x.mp4")
    assert result.exit_code == 2, result.output
    assert len(lines(result)) == 1 and match in result.output and result.output.startswith("error:")
    assert list(tmp_path.iterdir()) == []


def test_render_errors_about_the_output(tmp_path):
    (tmp_path / "file").write_text("")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    for out, match in [(tmp_path / "x.avi", "unknown output type"), (tmp_path / "file" / "x.mp4", "cannot write"),
                       (tmp_path / "full", "not empty")]:
        result = run("render", "--frames", "1", "-o", out)
        assert result.exit_code == 2 and len(lines(result)) == 1 and match in result.output, result.output
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    result = run("render", "--frames", "1", "--crf", "60", "-o", tmp_path / "x.mp4")
    assert result.exit_code == 2 and "--crf" in result.output


@pytest.mark.parametrize("name, args, match", [
    ("sg2_64", ["--rotate", "90"], "need a StyleGAN3 network"),
    ("sg2_64", ["--translate", "line"], "need a StyleGAN3 network"),
    ("sg3t_64_cond", [], "conditional"),
    ("sg3t_64_cond", ["--class", "10"], "out of range"),
    ("sg3r_64", ["--class", "1"], "unconditional"),
    ("sg3r_64", ["--cutoff", "99"], "cutoff"),
    ("sg3r_64", ["--mix", "0-40:3"], "layer range"),
    ("sg3r_64", ["--path", "cubic", "--space", "z"], "works in W"),
    ("sg3r_64", ["--path", "noise", "--seeds", "0-1"], "one seed per path"),
])
def test_render_errors_about_the_network(tmp_path, name, args, match):
    result = run("render", "-n", reference_file(f"{name}.pkl"), "--frames", "2", *args, "-o", tmp_path / "x.mp4")
    assert result.exit_code == 2, result.output
    assert match in result.output and lines(result)[-1].startswith("error:") and len(lines(result)) == 1
    assert list(tmp_path.iterdir()) == []


def test_image_errors(tmp_path, sg2_pkl):
    for args, match in [(["--seeds", "x"], "bad seed"), (["--translate", "1"], "--translate"),
                        (["-n", sg2_pkl, "--rotate", "5"], "StyleGAN3")]:
        result = run("image", *args, "-o", tmp_path / "img.png")
        assert result.exit_code == 2 and len(lines(result)) == 1 and match in result.output, result.output
    result = run("image", "-o", tmp_path / "img.jpg")
    assert result.exit_code == 2 and "unknown image type" in result.output


def test_help_shows_examples():
    for command in ("render", "image"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Examples" in result.output and "sg3rt " + command in result.output


def test_library_notices_are_plain_lines_on_stderr(capsys):
    """`sg3rt` shows the library's INFO notices (e.g. the CPU kernels compiling) as one plain line each."""
    import logging

    from sg3rt.cli import show_notices

    log = logging.getLogger("sg3rt")
    before = (list(log.handlers), log.level)
    try:
        show_notices()
        show_notices()  # idempotent: one handler
        logging.getLogger("sg3rt.networks.filtered_lrelu_cpu").info("compiling the CPU kernels (numba)")
        assert capsys.readouterr().err == "compiling the CPU kernels (numba)\n"
    finally:
        log.handlers[:], _ = before[0], log.setLevel(before[1])


# ---- checked before any work, nothing left behind ------------------------------------------------


@pytest.mark.parametrize("command, args, match", [
    ("image", ["--mix", "coarse:99999999999"], "bad --mix 'coarse:99999999999': seed 99999999999 is too large"),
    ("render", ["--mix", "coarse:99999999999"], "bad --mix 'coarse:99999999999': seed 99999999999 is too large"),
    ("render", ["--duration", "1e308"], "--duration 1e+308 s at 30 fps gives inf frames; at most 10368000"),
    ("render", ["--fps", "1e308", "--duration", "10"], "--fps must be between 0.01 and 1000 frames per second"),
    ("render", ["--frames", "99999999999999999999"], "--frames gives 99999999999999999999 frames; at most 10368000"),
    ("render", ["--fps", "0.0001"], "--fps must be between 0.01 and 1000"),
    ("render", ["--fps", "1e12"], "--fps must be between 0.01 and 1000"),
    ("render", ["--fps", "120", "-o", "{d}/x.gif"], "120 fps is too fast for a GIF"),
    ("render", ["-o", "{d}/.mp4"], ".mp4: give a name before the suffix"),
    ("image", ["-o", "{d}/.png"], ".png: give a name before the suffix"),
    ("render", ["--edit", "{d}/d.npy:-1..1", "--save-w", "{d}/k.npz"], "--save-w saves fixed ws per keyframe"),
])
def test_errors_before_the_network_loads(tmp_path, command, args, match):
    """One line, before the (missing) network is even opened: a mix seed RandomState refuses, a length or an
    fps that overflows or that ffmpeg refuses, a bare suffix as a name, a --save-w that cannot round-trip."""
    np.save(tmp_path / "d.npy", np.ones(64, np.float32))
    args = [a.format(d=tmp_path) for a in args]
    out = [] if "-o" in args else ["-o", tmp_path / ("x.png" if command == "image" else "x.mp4")]
    result = run(command, "-n", tmp_path / "missing.pkl", "--seeds", "0", *args, *out)
    assert result.exit_code == 2, result.output
    assert lines(result) == [lines(result)[0]] and lines(result)[0].startswith("error: ") and match in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["d.npy"]


def test_a_failed_render_leaves_no_folders_it_made(tmp_path):
    (tmp_path / "notpkl.pkl").write_text("not a pickle")
    result = run("render", "-n", tmp_path / "notpkl.pkl", "--seeds", "0", "--frames", "2",
                 "-o", tmp_path / "newdir" / "sub" / "x.mp4")
    assert result.exit_code == 2 and len(lines(result)) == 1, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notpkl.pkl"]


def test_render_a_png_folder_with_a_dot_in_its_name(tmp_path, sg3r_pkl):
    result = run("render", "-n", sg3r_pkl, "--seeds", "0", "--frames", "1", "-o", f"{tmp_path / 'frames.v2'}/")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "frames.v2").iterdir()] == ["frame000000.png"]
    result = run("image", "-n", sg3r_pkl, "--seeds", "0", "-o", f"{tmp_path / 'shots.v2'}/")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "shots.v2").iterdir()] == ["seed0000.png"]


def test_render_save_w_renders_the_same_keyframes_again(tmp_path, sg3r_pkl):
    """--save-w saves what render shows at its keyframes, fixed edits and the stabilize anchor included (as
    image --save-w does): --w-file renders the same frames (frame 0 once differed by 46 levels)."""
    np.save(tmp_path / "d.npy", np.random.RandomState(0).randn(64))
    a = run("render", "-n", sg3r_pkl, "--seeds", "3,5", "--mix", "coarse:9", "--edit", f"{tmp_path / 'd.npy'}:2.5",
            "--stabilize", "--frames", "2", "--save-w", tmp_path / "k.npz", "-o", f"{tmp_path / 'a'}/")
    assert a.exit_code == 0, a.output
    b = run("render", "-n", sg3r_pkl, "--w-file", tmp_path / "k.npz", "--frames", "2", "-o", f"{tmp_path / 'b'}/")
    assert b.exit_code == 0, b.output
    for i in range(2):  # a loop through 2 keys in 2 frames: every frame is a keyframe
        got = iio.imread(tmp_path / "b" / f"frame{i:06d}.png").astype(int)
        assert np.abs(got - iio.imread(tmp_path / "a" / f"frame{i:06d}.png").astype(int)).max() <= 1, i


@pytest.fixture
def small_mount(tmp_path):
    """mount(options) -> a fresh 64 KiB tmpfs (root and mount rights, else skipped), unmounted afterwards."""
    import subprocess

    mounted = []

    def mount(options: str):
        mnt = tmp_path / f"mnt{len(mounted)}"
        mnt.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=64k,{options}", "tmpfs", str(mnt)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'mount failed'})")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_save_w_where_it_cannot_be_written_stops_before_any_frame(tmp_path, small_mount, sg3r_pkl):
    """A read-only place is refused before the network loads; a full disk before the first frame (the w file is
    written first, renamed once the video is complete). Either way: one line, no video, nothing on the disk."""
    read_only = small_mount("ro")
    result = run("render", "-n", tmp_path / "missing.pkl", "--seeds", "0", "--frames", "2",
                 "--save-w", read_only / "k.npz", "-o", tmp_path / "v.mp4")
    assert result.exit_code == 2 and lines(result) == [f"error: {read_only / 'k.npz'}: cannot write there (folder "
                                                       f"{read_only} is not writable)"], result.output
    full = small_mount("rw")
    with contextlib.suppress(OSError), open(full / "filler", "wb") as f:
        f.write(bytes(128 * 1024))
    result = run("render", "-n", sg3r_pkl, "--seeds", "0", "--frames", "2", "--save-w", full / "sub" / "k.npz",
                 "-o", tmp_path / "v.mp4")
    assert result.exit_code == 2 and "No space left on device" in lines(result)[-1], result.output
    assert "rendering" not in result.output
    assert [p.name for p in full.iterdir()] == ["filler"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnt0", "mnt1"]


def test_save_w_that_fails_at_the_end_keeps_the_video(tmp_path, sg3r_pkl, monkeypatch):
    """Should even the final rename of the w file fail, the finished video stays (it once was thrown away)."""
    import errno
    import os

    real = os.replace

    def replace(src, dst):
        if str(dst).endswith(".npz"):
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    out, keys = tmp_path / "v.mp4", tmp_path / "k.npz"
    result = run("render", "-n", sg3r_pkl, "--seeds", "0", "--frames", "2", "--save-w", keys, "-o", out)
    assert result.exit_code == 2, result.output
    assert lines(result)[-1] == f"error: {keys}: cannot write (Input/output error); {out} was written, without its ws"
    assert mp4_frames(out) == ((64, 64), 2)
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # no w file, no temp file
