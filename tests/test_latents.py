"""w files: saved keyframes render the same images again; user files are read as data only."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from refdata import reference_file
from typer.testing import CliRunner

from sg3rt import InputError
from sg3rt.animate.latents import as_keyframes, read_w_file
from sg3rt.cli import app

runner = CliRunner()


def test_save_w_then_w_file_gives_the_same_images(tmp_path):
    net = str(reference_file("sg3r_64.pkl"))
    r = runner.invoke(app, ["image", "-n", net, "--seeds", "3,5", "--psi", "0.7", "--mix", "coarse:9",
                            "--save-w", str(tmp_path / "k.npz"), "-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    w = np.load(tmp_path / "k.npz")["w"]
    assert w.shape[0] == 2 and w.dtype == np.float32
    r = runner.invoke(app, ["image", "-n", net, "--w-file", str(tmp_path / "k.npz"), "-o", str(tmp_path / "b")])
    assert r.exit_code == 0, r.output
    for seed, i in ((3, 0), (5, 1)):
        a = iio.imread(tmp_path / "a" / f"seed{seed:04d}.png").astype(int)
        b = iio.imread(tmp_path / "b" / f"w{i:04d}.png").astype(int)
        assert np.abs(a - b).max() <= 1


def test_w_files_are_data_and_checked(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError):
        read_w_file(tmp_path / "obj.npy")
    np.savez(tmp_path / "nokey.npz", latents=np.zeros([1, 2, 3], np.float32))
    with pytest.raises(InputError, match="latents"):
        read_w_file(tmp_path / "nokey.npz")
    with pytest.raises(InputError):
        as_keyframes(np.zeros([2, 5, 7], np.float32), 16, 512, "bad.npz")
    keys = as_keyframes(np.ones([16, 512], np.float32), 16, 512, "one.npy")
    assert tuple(keys.shape) == (1, 16, 512)
    r = runner.invoke(app, ["image", "--seeds", "1", "--w-file", str(tmp_path / "nokey.npz"), "-o", str(tmp_path / "c")])
    assert r.exit_code == 2 and r.output.startswith("error: ")


def test_a_w_file_without_ws_is_one_line_for_image_and_render(tmp_path):
    """[0, num_ws, w_dim] is refused by the reader itself: image used to stop with a StopIteration traceback."""
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 16, 64), np.float32))
    with pytest.raises(InputError, match=r"empty\.npy: holds no w \(shape \[0, 16, 64\]\)"):
        read_w_file(empty)
    net = str(reference_file("sg3r_64.pkl"))
    for command, *args in (["image", "-o", f"{tmp_path / 'out'}/"],
                           ["render", "--frames", "1", "-o", str(tmp_path / "v.mp4")]):
        r = runner.invoke(app, [command, "-n", net, "--w-file", str(empty), *args])
        assert r.exit_code == 2, r.output
        assert r.output.strip().splitlines() == [f"error: {empty}: holds no w (shape [0, 16, 64]); a w file needs at "
                                                 "least one"]
    assert [p.name for p in tmp_path.iterdir()] == ["empty.npy"]


def test_a_file_that_is_no_numpy_file_is_named_as_such(tmp_path):
    """Only an object array is 'Python objects'; a text file named .npz is simply not a numpy file."""
    (tmp_path / "text.npz").write_text("projected latents, honest")
    with pytest.raises(InputError, match=r"text\.npz: not a numpy file") as info:
        read_w_file(tmp_path / "text.npz")
    assert "Python objects" not in str(info.value)
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"obj\.npy: not a w file: holds Python objects"):
        read_w_file(tmp_path / "obj.npy")
    np.save(tmp_path / "plain.npy", np.ones((16, 64), np.float32))
    (tmp_path / "plain.npy").rename(tmp_path / "named.npz")  # np.load goes by the content, and so do we
    assert read_w_file(tmp_path / "named.npz").shape == (16, 64)
