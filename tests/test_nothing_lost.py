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
from sg3rt.errors import InputError, OutputError

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


# Writers and file sets: all or nothing, one line for every bad output path --------------------------------

N64 = str(reference_file("sg3r_64.pkl"))
ENOSPC = OSError(28, "No space left on device")


def _one_error_line(result, *words):
    """exit 2, no traceback, and the last line an `error:` naming every one of `words`."""
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and all(w in last for w in words), result.output


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_image_files_appear_together_or_none_when_a_folder_is_in_the_way(tmp_path):
    """QA item 2: seed0000/0001.png (existing files) were replaced, then the command failed on seed0002.png."""
    out = tmp_path / "imgs"
    out.mkdir()
    (out / "seed0000.png").write_bytes(b"old image")
    (out / "seed0002.png").mkdir()
    result = runner.invoke(app, ["image", "-n", N64, "--seeds", "0-3", "--psi", "0.5", "-o", f"{out}/"])
    _one_error_line(result, "seed0002.png is a folder: give a file name")  # found before any image is made
    assert (out / "seed0000.png").read_bytes() == b"old image"
    assert _entries(out) == ["seed0000.png", "seed0002.png"] and not any((out / "seed0002.png").iterdir())
    from sg3rt import fileio  # the commit itself, should a folder appear while the images render
    from sg3rt.errors import OutputError

    with fileio.FileSet() as files:
        for seed in range(4):
            files.write(out / f"seed{seed:04d}.png", lambda tmp: tmp.write_bytes(b"new image"))
        with pytest.raises(OutputError, match="seed0002.png: cannot write .*folder.*none of the 4 files was written"):
            files.commit()
    assert (out / "seed0000.png").read_bytes() == b"old image"
    assert _entries(out) == ["seed0000.png", "seed0002.png"]


def test_a_file_set_puts_back_what_it_replaced_when_a_rename_fails(tmp_path, monkeypatch):
    from sg3rt import fileio
    from sg3rt.errors import OutputError

    for name in ("a", "c"):
        (tmp_path / name).write_text(f"old {name}")
    real_replace, renamed = os.replace, []

    def replace(src, dst):
        if Path(dst).name == "c" and Path(src).name.endswith(".tmp"):
            raise OSError(5, "Input/output error")
        renamed.append(Path(dst).name)
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace)
    with pytest.raises(OutputError, match=r"c: cannot write \(Input/output error\); none of the 3 files was written"):
        with fileio.FileSet() as files:
            for name in ("a", "b", "c"):
                files.write(tmp_path / name, lambda tmp, name=name: tmp.write_text(f"new {name}"))
            files.commit()
    assert renamed[:2] == ["a", "b"]  # the first two were renamed, then undone
    assert _entries(tmp_path) == ["a", "c"] and [(tmp_path / n).read_text() for n in "ac"] == ["old a", "old c"]
    with fileio.FileSet() as files:  # and a commit that works replaces them, leaving nothing aside
        monkeypatch.setattr(fileio.os, "replace", real_replace)
        for name in ("a", "c"):
            files.write(tmp_path / name, lambda tmp, name=name: tmp.write_text(f"new {name}"))
        files.commit()
    assert _entries(tmp_path) == ["a", "c"] and (tmp_path / "a").read_text() == "new a"


def test_a_w_file_inside_the_png_output_folder_is_refused_before_any_frame(tmp_path, monkeypatch):
    """QA item 3a: a traceback ('Directory not empty') at the final rename, after the whole render."""
    import importlib

    from sg3rt.animate.writers import check_beside

    render_module = importlib.import_module("sg3rt.animate.render")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(render_module, "frame_batches", lambda *a, **k: pytest.fail("a frame was computed"))
    result = runner.invoke(app, ["render", "-n", N64, "--frames", "4", "-o", "fr/", "--save-w", "fr/keys.npz"])
    _one_error_line(result, "fr", "PNG output folder", "keys.npz", "--save-w")
    assert _entries(tmp_path) == []
    with pytest.raises(InputError, match="--react-plot fr/sub/plot.png: inside the PNG output folder fr/"):
        check_beside("fr/sub/plot.png", "fr/", "--react-plot")
    check_beside("fr/keys.npz", "fr.mp4", "--save-w")  # a video: anything beside it is fine
    check_beside("other/keys.npz", "fr/", "--save-w")


def test_a_failed_final_rename_is_one_output_error(tmp_path):
    from sg3rt.animate.writers import open_writer

    writer = open_writer(f"{tmp_path / 'fr'}/", 30)
    writer.write(np.zeros([2, 8, 8, 3], np.uint8))
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "intruder.txt").write_text("written during the render")
    with pytest.raises(OutputError, match=r"fr: cannot put the finished output in place \(Directory not empty\)"):
        writer.close()
    assert _entries(tmp_path) == ["fr"] and _entries(tmp_path / "fr") == ["intruder.txt"]


@pytest.mark.parametrize("args", [
    ["render", "-n", N64, "--frames", "2", "-o", "{long}/out.mp4"],
    ["render", "-n", N64, "--frames", "2", "-o", "{long}/"],
    ["render", "-n", N64, "--frames", "2", "-o", "{long}.mp4"],
    ["image", "-n", N64, "--seeds", "0", "-o", "{long}/x.png"],
    ["image", "-n", N64, "--seeds", "0-1", "-o", "{long}/"],
    ["convert", N64, "{long}/x.safetensors"],
    ["directions", N64, "-o", "{long}/d.npz"],
    ["render", "-n", N64, "--frames", "2", "-o", "v.mp4", "--save-w", "{long}/k.npz"],
], ids=["render-folder", "render-png", "render-name", "image", "image-folder", "convert", "directions", "save-w"])
def test_a_name_too_long_is_one_line(tmp_path, monkeypatch, args):
    """QA item 3b: ENAMETOOLONG was a traceback in every writer (for convert after the whole computation)."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [a.format(long="b" * 300) for a in args])
    _one_error_line(result, "b" * 300, "File name too long: a name of 30", "bytes, at most 255")
    assert _entries(tmp_path) == []


def _enospc_mkdir(monkeypatch, under: Path):
    """os.mkdir under `under` fails as on a disk without free inodes (portable: no tmpfs needed)."""
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if str(path).startswith(str(under)):
            raise OSError(28, "No space left on device", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)


@pytest.mark.parametrize("out", ["{d}/fr/", "{d}/sub/out.mp4", "{d}/sub/deeper/frames/"], ids=["png", "mp4-folder", "png-deep"])
def test_mkdir_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, out):
    """QA item 3c: PngSequenceWriter._make_tmp and FrameWriter.__init__ let mkdir's ENOSPC through."""
    from sg3rt.animate.writers import open_writer

    _enospc_mkdir(monkeypatch, tmp_path)
    with pytest.raises(InputError, match=r"cannot write there \(No space left on device\)"):
        open_writer(out.format(d=tmp_path), 30)
    assert _entries(tmp_path) == []


def test_mkdir_on_an_inode_full_tmpfs_is_one_line(tmp_path):
    """The same on a real filesystem: a tmpfs with no free inodes (root only)."""
    mnt = tmp_path / "ino"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=2", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip() or 'mount failed'})")
    try:
        (mnt / "filler").write_text("")  # the last free inode
        for out in (f"{mnt}/fr/", f"{mnt}/sub/out.mp4"):
            _one_error_line(runner.invoke(app, ["render", "-n", N64, "--frames", "2", "-o", out]),
                            "No space left on device")
        assert _entries(mnt) == ["filler"]
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("out", ["{a}.mp4", "{a}.gif", "{a}/"], ids=["mp4", "gif", "png-folder"])
def test_a_legal_name_near_name_max_can_be_written(tmp_path, out):
    """QA item 8: the hidden temp name (.NAME.<hex>.tmp) passed 255 bytes where the name itself did not."""
    from sg3rt.animate.writers import open_writer
    from sg3rt.fileio import FileSet, write_png

    path = out.format(a=tmp_path / ("a" * 245))
    with open_writer(path, 30) as writer:
        writer.write(np.zeros([2, 16, 16, 3], np.uint8))
    assert writer.kept and _entries(tmp_path) == [Path(path).name]
    write_png(tmp_path / ("é" * 125 + ".png"), np.zeros([4, 4, 3], np.uint8))  # 254 bytes: no half characters
    with FileSet() as files:
        files.write(tmp_path / ("w" * 251 + ".npz"), lambda tmp: tmp.write_bytes(b"x"))
        files.commit()
    assert len(_entries(tmp_path)) == 3


def test_ffmpeg_on_a_full_disk_names_the_os_error():
    """QA item 4: ffmpeg's last line ('Nothing was written ...') hid 'No space left on device'."""
    from sg3rt.animate.writers import ffmpeg_reason

    log = ("[out#0/mp4 @ 0x5581] Could not write header (incorrect codec parameters ?): No space left on device\n"
           "[vf#0:0 @ 0x5582] Error sending frames to consumers: No space left on device\n"
           "[out#0/mp4 @ 0x5581] Nothing was written into output file, because at least one of its streams "
           "received no packets.\n")
    assert ffmpeg_reason(log) == "Could not write header (incorrect codec parameters ?): No space left on device"
    assert ffmpeg_reason("[out#0/mp4 @ 0x1] Error opening output x.mp4: Permission denied\nConversion failed!\n") == (
        "Error opening output x.mp4: Permission denied")
    assert ffmpeg_reason("one\nthe last line.\n") == "the last line"


def test_a_filled_disk_names_the_cause_for_a_video(full_disk):
    with open(full_disk / ".filler", "wb", buffering=0) as f:  # every byte of the disk taken
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    result = runner.invoke(app, ["render", "-n", N64, "--frames", "4", "-o", f"{full_disk}/out.mp4"])
    _one_error_line(result, "out.mp4", "No space left on device")
    assert _entries(full_disk) == [".filler"]


def _video(path: Path, frames: int, level: int = 0) -> bytes:
    from sg3rt.animate.writers import open_writer

    with open_writer(path, 30) as writer:
        writer.write(np.full([frames, 16, 16, 3], level, np.uint8))
    return path.read_bytes()


def _frame_count(path: Path) -> int:
    reader = imageio_ffmpeg.read_frames(str(path))
    next(reader)
    return sum(1 for _ in reader)


def test_an_interrupt_keeps_the_partial_beside_an_existing_video(tmp_path):
    """QA item 5: Ctrl-C during a render over a complete video replaced it with the partial."""
    from sg3rt.animate.writers import open_writer

    keep = tmp_path / "keep.mp4"
    old = _video(keep, 6)
    (tmp_path / "keep.partial.mp4").write_bytes(b"an earlier partial, kept too")
    with pytest.raises(KeyboardInterrupt):
        with open_writer(keep, 30) as writer:
            writer.write(np.full([3, 16, 16, 3], 200, np.uint8))
            raise KeyboardInterrupt
    assert keep.read_bytes() == old
    assert writer.kept and writer.kept_path == tmp_path / "keep.partial-2.mp4" and _frame_count(writer.kept_path) == 3
    assert (tmp_path / "keep.partial.mp4").read_bytes() == b"an earlier partial, kept too"
    assert _entries(tmp_path) == ["keep.mp4", "keep.partial-2.mp4", "keep.partial.mp4"]
    with pytest.raises(KeyboardInterrupt):  # no file there before: the partial takes the name, as always
        with open_writer(tmp_path / "new.mp4", 30) as writer:
            writer.write(np.zeros([2, 16, 16, 3], np.uint8))
            raise KeyboardInterrupt
    assert writer.kept_path == tmp_path / "new.mp4" and _frame_count(writer.kept_path) == 2
    _video(keep, 4, 50)  # a finished render still replaces the old file
    assert _frame_count(keep) == 4 and "keep.partial-3.mp4" not in _entries(tmp_path)


def test_a_failed_write_removes_the_folders_made_for_it(tmp_path, monkeypatch):
    """QA item 6: convert/directions/export to a new folder on a full disk left the empty folders behind."""
    from sg3rt.fileio import atomic_write

    (tmp_path / "kept").mkdir()

    def full(tmp):
        raise ENOSPC

    with pytest.raises(OutputError, match=r"x.bin: cannot write \(No space left on device\)"):
        atomic_write(tmp_path / "c" / "d" / "x.bin", full)
    with pytest.raises(OutputError, match="No space left on device"):
        atomic_write(tmp_path / "kept" / "e" / "x.bin", full)
    assert _entries(tmp_path) == ["kept"] and _entries(tmp_path / "kept") == []
    _enospc_mkdir(monkeypatch, tmp_path / "f" / "g")  # mkdir fails part of the way down: f was made, g was not
    with pytest.raises(OutputError, match="No space left on device"):
        atomic_write(tmp_path / "f" / "g" / "x.bin", lambda tmp: tmp.write_text("x"))
    assert _entries(tmp_path) == ["kept"]


def test_convert_to_new_folders_on_a_full_disk_leaves_nothing(full_disk):
    result = runner.invoke(app, ["convert", N64, f"{full_disk}/c/d/x.safetensors"])
    _one_error_line(result, "No space left on device")
    assert _entries(full_disk) == []


# The render command's staged outputs (need cli.py's change: check_beside, the staged plot, kept_path) ---------


def _tone(path: Path, seconds: float = 0.5) -> Path:
    import wave

    t = np.arange(int(22050 * seconds)) / 22050
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(22050)
        f.writeframes((np.sin(2 * np.pi * 440 * t) * 16000).astype("<i2").tobytes())
    return path


def _render_module(monkeypatch, batches):
    """frame_batches replaced by `batches` (a generator function): a render that fails or stops when it says."""
    import importlib

    monkeypatch.setattr(importlib.import_module("sg3rt.animate.render"), "frame_batches", batches)


@pytest.mark.parametrize("stop", [OutputError("disk full"), KeyboardInterrupt()], ids=["failure", "interrupt"])
def test_a_react_plot_appears_only_with_the_finished_video(tmp_path, monkeypatch, stop):
    """QA item 6: --react-plot was written before the first frame and left behind by a failed render."""
    tone = _tone(tmp_path / "tone.wav")
    args = ["render", "-n", N64, "--audio", str(tone), "--duration", "0.5", "--react-plot",
            str(tmp_path / "plots" / "plot.png"), "-o", str(tmp_path / "out.mp4")]

    def stopped(*a, **k):
        raise stop
        yield

    with monkeypatch.context() as m:
        _render_module(m, stopped)
        result = runner.invoke(app, args)
    assert result.exit_code in (2, 130) and "Traceback" not in result.output, result.output
    assert _entries(tmp_path) == ["tone.wav"]  # no plot, no plots/ folder, no video
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _entries(tmp_path) == ["out.mp4", "plots", "tone.wav"] and _entries(tmp_path / "plots") == ["plot.png"]


def test_a_react_plot_inside_the_png_output_folder_is_refused_up_front(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tone = _tone(tmp_path / "tone.wav")
    monkeypatch.setattr("sg3rt.networks.load_generator", lambda *a, **k: pytest.fail("the network was loaded"))
    result = runner.invoke(app, ["render", "-n", N64, "--audio", str(tone), "--duration", "0.5", "-o", "fr/",
                                 "--react-plot", "fr/plot.png"])
    _one_error_line(result, "--react-plot fr/plot.png: inside the PNG output folder fr/")
    assert _entries(tmp_path) == ["tone.wav"]


def test_an_interrupt_over_an_existing_video_says_where_the_partial_is(tmp_path, monkeypatch):
    keep = tmp_path / "keep.mp4"
    old = _video(keep, 6)

    def one_batch_then_ctrl_c(runtime, animation, batch=8):
        yield animation.compose(runtime.frames(*animation.inputs(np.arange(2))).numpy())
        raise KeyboardInterrupt

    _render_module(monkeypatch, one_batch_then_ctrl_c)
    result = runner.invoke(app, ["render", "-n", N64, "--frames", "8", "-o", str(keep)])
    assert result.exit_code == 130, result.output
    assert f"interrupted: kept the first 2 of 8 frames in {tmp_path / 'keep.partial.mp4'} ({keep} is unchanged)" in (
        result.output)
    assert keep.read_bytes() == old and _frame_count(tmp_path / "keep.partial.mp4") == 2
