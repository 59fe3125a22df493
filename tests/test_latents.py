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
