"""Nothing lost, nothing hidden: a full disk is a one-line error with nothing half-written left,
SIGTERM/SIGHUP act as Ctrl-C, defaults fit the machine, and the CLI answers in one style."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from refdata import reference_file
from typer.testing import CliRunner

from sg3rt.cli import app

runner = CliRunner()
FULL_DISK_BYTES = 64 * 1024  # a filesystem too small for any of the outputs below


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs (needs root and mount rights; skipped with the reason elsewhere)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FULL_DISK_BYTES}", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.strip() or 'mount failed'})")
    yield mnt
    if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)  # detach even if something holds it


@pytest.mark.parametrize("args", [
    ["render", "--frames", "300", "-o", "{d}/full.mp4"],
    ["render", "--frames", "120", "-o", "{d}/full.gif"],
    ["render", "--frames", "60", "-o", "{d}/full.mov"],
    ["render", "--frames", "300", "--crf", "4", "-o", "{d}/full.webm"],
    ["render", "--frames", "60", "-o", "{d}/frames/"],
    ["image", "--seeds", "0-40", "-o", "{d}/images"],
    ["convert", str(reference_file("sg3r_256.pkl")), "{d}/net.safetensors"],
    ["export", "-o", "{d}/onnx"],
], ids=["mp4", "gif", "mov", "webm", "png-frames", "image", "convert", "export"])
def test_a_full_disk_is_an_error_and_leaves_nothing(full_disk, args):
    result = runner.invoke(app, [a.format(d=full_disk) for a in args])
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and "No space left on device" in last, result.output
    assert "wrote" not in result.output
    assert sorted(p.name for p in full_disk.iterdir()) == []  # no partial file, folder or temp name


@pytest.mark.parametrize("args", [
    ["convert", str(reference_file("sg3r_64.pkl")), "{d}/afile/net.safetensors"],
    ["export", str(reference_file("sg3r_64.pkl")), "-o", "{d}/afile/sub/onnx"],
    ["directions", str(reference_file("sg3r_64.pkl")), "-o", "{d}/afile/d.npz"],
    ["render", "--frames", "2", "-o", "{d}/afile/v.mp4"],
], ids=["convert", "export", "directions", "render"])
def test_a_file_where_a_folder_should_be_is_one_line(tmp_path, args):
    """An output under a path whose parent is a file (the temp-name retry loop once spun on it forever)."""
    (tmp_path / "afile").write_text("a file, not a folder")
    done = subprocess.run([sys.executable, "-m", "sg3rt.cli", *[a.format(d=tmp_path) for a in args]],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].endswith(f"cannot write there ({tmp_path / 'afile'} is a file, not a "
                                                         "folder)"), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_closed_pipe_ends_quietly():
    """`sg3rt info net.pkl | head -1`: the reader went away; no traceback (click's Abort once broke the handler)."""
    proc = subprocess.Popen([sys.executable, "-m", "sg3rt.cli", "info", str(reference_file("sg3r_64.pkl"))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before it writes anything (it loads the network first): its first line meets a closed pipe
    stderr = proc.communicate(timeout=300)[1]
    assert proc.returncode == 1 and "Traceback" not in stderr and "Error" not in stderr, stderr


def _render_process(tmp_path: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "sg3rt.cli", "render", "--seeds", "0-1", "--frames", "3000",
                             "--batch", "2", "-o", str(out)], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_keep_a_playable_video(tmp_path, sig):
    out = tmp_path / "term.mp4"
    proc = _render_process(tmp_path, out)
    try:
        seen = ""
        while not re.search(r"^frames [1-9]\d*/3000", seen, re.M):  # frames have reached the encoder
            line = proc.stderr.readline()
            assert line or proc.poll() is None, seen
            seen += line
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert f"interrupted ({signal.Signals(sig).name}): kept the first" in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["term.mp4"]  # no hidden temp file
    reader = imageio_ffmpeg.read_frames(str(out))
    assert next(reader)["size"] == (128, 128) and sum(1 for _ in reader) >= 2


def test_cli_surface_version_help_width_and_one_error_style():
    from sg3rt.version import __version__

    assert runner.invoke(app, ["--version"]).output.strip() == f"sg3rt {__version__}"
    for command in ("render", "image", "eq", "bench", "export", "live", "sticking"):
        text = runner.invoke(app, [command, "--help"], terminal_width=80, env={"COLUMNS": "80"}).output
        assert max(len(line) for line in text.splitlines()) <= 80, command
        names = [line.split()[0] for line in text.splitlines() if line.strip().startswith("-")]
        assert "<bool>" not in text and not [n for n in names if n.endswith(("...", "…"))], command
    for args in (["render", "-o", "x.mp4", "--fps", "abc"], ["render", "--bogus"], ["image", "--backend", "warp"],
                 ["info", "a", "b", "c"]):
        result = runner.invoke(app, args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)


def test_help_and_option_errors_do_not_import_torch():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom sg3rt.cli import app\n"
            "r = CliRunner().invoke(app, ['render', '--help'])\ne = CliRunner().invoke(app, ['render', '--fps', 'x'])\n"
            "print(r.exit_code, e.exit_code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "2", "False"]


def test_eq_measures_fp32_on_a_cpu_unless_fp16_is_named():
    from sg3rt.analysis.backends import parse_backends

    assert parse_backends("torch,onnxruntime", cpu=True) == [("torch", "fp32"), ("onnxruntime", "fp32")]
    assert ("onnxruntime", "fp16") in parse_backends("torch,onnxruntime", cpu=False)
    assert ("onnxruntime", "fp16") in parse_backends("onnxruntime:fp16", cpu=True)


def test_eq_refuses_a_backend_that_cannot_run_before_measuring(monkeypatch):
    """Once: the torch baseline (minutes at --samples 64) ran first, then the error."""
    from sg3rt.analysis import backends
    from sg3rt.runtime.registry import tensorrt_importable

    if tensorrt_importable():
        pytest.skip("TensorRT is installed here")
    monkeypatch.setattr(backends, "measure_equivariance", lambda *a, **k: pytest.fail("measured before refusing"))
    result = runner.invoke(app, ["eq", str(reference_file("sg3r_64.pkl")), "--backend", "tensorrt",
                                 "--samples", "2", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith("error: tensorrt fp16 cannot run here: TensorRT is not "
                                                             "installed"), result.output


def test_fp16_on_a_cpu_warns_once(monkeypatch):
    import warnings

    import sg3rt.runtime.torch_backend as tb
    from sg3rt import open_generator

    monkeypatch.setattr(tb, "_WARNED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open_generator(None, backend="torch", device="cpu", precision="fp16").close()
        open_generator(None, backend="torch", device="cpu", precision="fp16").close()
        open_generator(None, backend="torch", device="cpu", precision="fp32").close()
    assert [str(w.message) for w in caught if "emulated" in str(w.message)] == [
        "fp16 on a CPU is emulated and slow (about 40x slower than fp32 here): use fp32 on CPUs"]


def test_frames_follow_the_input_type():
    from sg3rt import open_generator

    with open_generator(None, backend="torch", device="cpu") as rt:
        ws = rt.mapping(np.zeros([1, rt.z_dim], np.float32))
        assert isinstance(rt.frames(ws.numpy()), np.ndarray) and rt.frames(ws.numpy()).dtype == np.uint8
        assert not isinstance(rt.frames(ws), np.ndarray)


def test_render_progress_reports_each_step_once(tmp_path):
    from sg3rt import Animation, PathSpec, open_generator, open_writer, render

    with open_generator(None, backend="torch", device="cpu") as rt, open_writer(tmp_path / "a", 30) as writer:
        anim = Animation(rt, [0, 1], PathSpec("linear"), frames=5)
        done = [p.done for p in render(rt, anim, writer, batch=2)]
    assert done == [2, 4, 5]


def test_small_cli_items(tmp_path):
    (tmp_path / "isdir.mp4").mkdir()
    r = runner.invoke(app, ["render", "--frames", "2", "-o", str(tmp_path / "isdir.mp4")])
    assert r.exit_code == 2 and "isdir.mp4: is a folder" in r.output and not any((tmp_path / "isdir.mp4").iterdir())
    r = runner.invoke(app, ["render", "--space", "q", "-o", str(tmp_path / "q.mp4")])
    assert r.exit_code == 2 and "unknown --space 'q' (choose from w, z)" in r.output
    r = runner.invoke(app, ["sticking", str(reference_file("sg3t_64_cond.pkl")), "--frames", "2",
                            "-o", str(tmp_path / "s.png")])
    assert r.exit_code == 2 and "conditional" in r.output and not (tmp_path / "s.png").exists()


def test_export_folder_mode_and_fp16_check_message(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "x"
        r = runner.invoke(app, ["export", str(reference_file("sg3r_64.pkl")), "-o", str(out), "--precision", "fp16",
                                "--frames"])
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    assert (out.stat().st_mode & 0o777) == 0o755  # what mkdir gives, not mkdtemp's 0700
    assert "uint8 frames within 1 level (tolerance 1)" in r.output and "frames 1.00e+00" not in r.output


def test_bench_error_is_one_line_without_a_header(tmp_path):
    result = runner.invoke(app, ["bench", str(tmp_path / "missing.pkl"), "--batch", "1", "--iters", "1"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and lines == [f"error: {tmp_path / 'missing.pkl'}: no such file"], result.output


@pytest.mark.parametrize("args, message", [
    (["bench", str(reference_file("sg3r_64.pkl")), "--backend", ","], "error: --backend names no backend: ','"),
    (["directions", str(reference_file("sg3r_64.pkl")), "-o", "{d}/d.npz", "--class", "1"],
     "error: --class 1 given, but this network is unconditional"),
    (["directions", str(reference_file("sg3t_64_cond.pkl")), "-o", "{d}/d.npz", "--class", "11"],
     "error: --class 11 is out of range"),
], ids=["bench-no-backend", "sefa-class-unconditional", "sefa-class-range"])
def test_options_that_name_nothing_are_errors(tmp_path, args, message):
    """Once: bench wrote an empty table and exit 0; SeFa ignored a class the network does not have."""
    result = runner.invoke(app, [a.format(d=tmp_path) for a in args])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1].startswith(message), result.output
    assert not (tmp_path / "d.npz").exists()


def test_a_sound_track_that_does_not_fit_is_an_error_and_leaves_nothing(full_disk, tmp_path):
    """The video fits (flat grey frames: a few KiB); muxing 10 s of noise as AAC does not (about 240 KiB)."""
    import wave

    from sg3rt.animate.writers import open_writer
    from sg3rt.errors import OutputError

    noise = tmp_path / "noise.wav"
    with wave.open(str(noise), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(48000)
        f.writeframes(np.random.RandomState(0).randint(-20000, 20000, [480000, 2]).astype("<i2").tobytes())
    writer = open_writer(full_disk / "clip.mp4", 1.0, audio=noise)
    writer.write(np.full([10, 64, 64, 3], 128, np.uint8))
    with pytest.raises(OutputError, match="adding the sound track .* failed .*No space left on device"):
        writer.close()
    assert sorted(p.name for p in full_disk.iterdir()) == []
