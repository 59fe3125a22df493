"""Editing directions (SeFa, PCA), --edit specs and sweeps, --stabilize; on the reference networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from refdata import reference_file
from sg3rt import load_generator
from sg3rt.analysis.shift import frame_shifts
from sg3rt.animate import Animation, Edit, PathSpec, render_images
from sg3rt.animate.directions import compute_directions, sample_w, sefa_directions, style_affines
from sg3rt.cli import app
from sg3rt.errors import InputError
from sg3rt.runtime import open_generator

runner = CliRunner()


@pytest.fixture(scope="module")
def g3():
    return load_generator(reference_file("sg3r_64.pkl"))


@pytest.fixture(scope="module")
def g2():
    return load_generator(reference_file("sg2_64.pkl"))


@pytest.fixture(scope="module")
def rt3(g3):
    with open_generator(g3, backend="torch", device="cpu") as rt:
        yield rt


@pytest.fixture(scope="module")
def dirs_file(g3, tmp_path_factory):
    return sefa_directions(g3, k=6).save(tmp_path_factory.mktemp("dirs") / "dirs.npz")


# ---- directions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["g3", "g2"])
def test_sefa_orthonormal_ranked_deterministic(which, request):
    G = request.getfixturevalue(which)
    a, b = sefa_directions(G), sefa_directions(G)
    d = a.directions
    assert d.shape == (G.w_dim, G.w_dim)
    np.testing.assert_allclose(d @ d.T, np.eye(G.w_dim), atol=1e-10)
    assert np.all(np.diff(a.effect) <= 0) and a.effect[0] > a.effect[-1]
    np.testing.assert_array_equal(a.directions, b.directions)  # signs fixed too


def test_sefa_are_eigenvectors_of_the_affines(g3):
    """Every direction is an eigenvector of A^T A built independently here, with its eigenvalue as effect."""
    rows = [m.weight.detach().double().numpy() * m.weight_gain for _, m in style_affines(g3)]
    a = np.concatenate(rows)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    m = a.T @ a
    found = sefa_directions(g3, k=5)
    for v, e in zip(found.directions, found.effect):
        np.testing.assert_allclose(m @ v, e * v, atol=1e-8)
    assert len(style_affines(g3)) == g3.num_ws
    assert sorted({i for i, _ in style_affines(g3)}) == list(range(g3.num_ws))


def test_sefa_layer_range_uses_only_those_affines(g3):
    coarse, full = sefa_directions(g3, "coarse"), sefa_directions(g3)
    assert coarse.layers == "coarse" and not np.allclose(np.abs(coarse.directions[0]), np.abs(full.directions[0]))


def test_pca_explains_sampled_w(g3):
    found = compute_directions(g3, "pca", k=4, samples=500)
    w = sample_w(g3, 500)
    var = np.var((w - w.mean(0)) @ found.directions.T, axis=0, ddof=1)  # variance along each axis
    np.testing.assert_allclose(var, found.effect, rtol=1e-6)
    assert np.all(np.diff(found.effect) <= 0)


def test_directions_cli_writes_npz(tmp_path):
    out = tmp_path / "d.npz"
    result = runner.invoke(app, ["directions", str(reference_file("sg3r_64.pkl")), "-o", str(out), "--count", "3",
                                 "--layers", "0-3"])
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as f:
        assert f["directions"].shape == (3, 64) and f["effect"].shape == (3,)
        assert str(f["method"]) == "sefa" and str(f["layers"]) == "0-3"
    bad = runner.invoke(app, ["directions", str(reference_file("sg3r_64.pkl")), "-o", str(tmp_path / "e.npz"),
                              "--method", "ica"])
    assert bad.exit_code == 2 and bad.output.strip().startswith("error:") and len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "e.npz").exists()
    default = runner.invoke(app, ["directions", "-o", str(tmp_path / "default.npz"), "--count", "2"])
    assert default.exit_code == 0, default.output  # no network: the embedded default (w_dim 128), as render
    with np.load(tmp_path / "default.npz", allow_pickle=False) as f:
        assert f["directions"].shape == (2, 128)


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="pca", samples=4, seed=-1), r"^--seed must be an integer from 0 to 4294967295, got -1$"),
    (dict(method="pca", samples=4, seed=2**32), r"^--seed must be an integer from 0 to 4294967295, got 4294967296$"),
    (dict(method="pca", samples=100_000_000), r"^--samples must be an integer from 2 to 100000 .*got 100000000$"),
    (dict(method="pca", samples=1), r"^--samples must be an integer from 2 to 100000"),
    (dict(method="sefa", samples=50), r"^--samples and --seed apply to --method pca, not sefa \(got --samples 50\)$"),
    (dict(method="sefa", seed=5), r"^--samples and --seed apply to --method pca, not sefa \(got --seed 5\)$"),
])
def test_directions_refuse_bad_or_unused_samples_and_seed(g3, kwargs, message):
    """A seed outside RandomState's range and a sample count past memory are one line before any sampling (were a
    numpy ValueError and a 47.7 GiB MemoryError); --samples/--seed with SeFa were silently unused."""
    with pytest.raises(InputError, match=message):
        compute_directions(g3, **kwargs)
    assert compute_directions(g3, "sefa", k=2, samples=None, seed=None).directions.shape == (2, 64)


def test_directions_cli_refuses_sefa_samples_and_bad_seed(tmp_path):
    net = str(reference_file("sg3r_64.pkl"))
    for extra in (["--samples", "50"], ["--seed", "5"], ["--method", "pca", "--samples", "4", "--seed", "-1"]):
        result = runner.invoke(app, ["directions", net, "-o", str(tmp_path / "d.npz"), *extra])
        assert result.exit_code == 2 and result.output.startswith("error: "), (extra, result.output)
        assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "d.npz").exists()


@pytest.mark.parametrize("samples, count, want", [(2, None, 1), (10, 64, 9), (10, None, 9), (100, 5, 5), (100, None, 64)])
def test_pca_gives_at_most_samples_minus_one(g3, samples, count, want):
    """N centred samples span N - 1 dimensions: a further axis would be an arbitrary null-space vector (effect 0)."""
    found = compute_directions(g3, "pca", k=count, samples=samples)
    assert found.directions.shape == (want, 64)
    assert found.effect[-1] > 1e-6 * found.effect[0]


def test_sample_w_draws_z_batch_by_batch_as_one_draw(g3):
    z = np.random.RandomState(3).randn(25, g3.z_dim).astype(np.float32)
    with torch.no_grad():
        want = g3.mapping(torch.from_numpy(z), None)[:, 0].double().numpy()
    np.testing.assert_allclose(sample_w(g3, 25, seed=3, batch=10), want, rtol=0, atol=1e-5)


# ---- edits ---------------------------------------------------------------------------------------


def test_edit_parse_forms(dirs_file, tmp_path):
    e = Edit.parse(f"{dirs_file}:2:1.5")
    assert e.amount == 1.5 and e.layers == "all" and not e.is_sweep
    s = Edit.parse(f"{dirs_file}:0:-3..3@coarse")
    assert s.amount == (-3.0, 3.0) and s.layers == "coarse" and s.is_sweep
    np.save(tmp_path / "smile.npy", np.ones((1, 64)))
    u = Edit.parse(f"{tmp_path / 'smile.npy'}:-2@4-7")
    assert u.direction.shape == (64,) and u.amount == -2.0 and u.layers == "4-7"


@pytest.mark.parametrize("spec, message", [
    ("{d}:0", "bad --edit"),
    ("{d}:x:1", "K must be"),
    ("{d}:9:1", "out of range"),
    ("{d}:0:abc", "bad amount"),
    ("{d}:0:1@sideways", "bad layer range"),
    ("{tmp}/missing.npy:1", "no such file"),
    ("{tmp}/obj.npy:1", "pickled objects"),
    ("{tmp}/dirs.txt:1", "bad --edit"),
])
def test_edit_parse_errors(spec, message, dirs_file, tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=message) as info:
        Edit.parse(spec.format(d=dirs_file, tmp=tmp_path))
    assert "\n" not in str(info.value)


def test_edit_zero_direction_is_refused(dirs_file, tmp_path):
    """A zero direction (a .npy, or a row of a .npz) would change nothing at any amount: an error naming it."""
    np.save(tmp_path / "zero.npy", np.zeros(64, np.float32))
    with pytest.raises(InputError, match=r"^--edit '.*zero\.npy:2': the direction is a zero vector \(.*zero\.npy\)"):
        Edit.parse(f"{tmp_path / 'zero.npy'}:2")
    with np.load(dirs_file) as f:
        dirs = f["directions"].copy()
    dirs[1] = 0
    np.savez(tmp_path / "zerorow.npz", directions=dirs)
    with pytest.raises(InputError, match=r"the direction is a zero vector \(direction 1 of .*zerorow\.npz\)"):
        Edit.parse(f"{tmp_path / 'zerorow.npz'}:1:5")
    assert Edit.parse(f"{tmp_path / 'zerorow.npz'}:2:5").amount == 5.0  # the other rows are fine


def test_edit_empty_directions_file(tmp_path):
    np.savez(tmp_path / "empty.npz", directions=np.zeros((0, 64), np.float32))
    with pytest.raises(InputError, match=r"empty\.npz holds no directions") as info:
        Edit.parse(f"{tmp_path / 'empty.npz'}:1:5")
    assert "0--1" not in str(info.value)


def test_edit_wrong_width_is_one_line(rt3, tmp_path):
    np.save(tmp_path / "wide.npy", np.ones(512))
    with pytest.raises(InputError, match=r"shape \[512\], the network needs \[64\]"):
        list(render_images(rt3, [0], edits=(Edit.parse(f"{tmp_path / 'wide.npy'}:1"),)))
    with pytest.raises(InputError, match=r"^--edit '.*wide\.npy:1@0-40': layer range '0-40' must satisfy"):
        Edit.parse(f"{tmp_path / 'wide.npy'}:1@0-40").offset(16, 512)  # a range past num_ws names the edit too


def test_edit_zero_changes_nothing_and_amount_shifts_w(rt3, dirs_file):
    plain = dict(render_images(rt3, [0, 5], psi=0.7))
    zero = dict(render_images(rt3, [0, 5], psi=0.7, edits=(Edit.parse(f"{dirs_file}:0:0"),)))
    for s in plain:
        np.testing.assert_array_equal(zero[s], plain[s])
    moved = dict(render_images(rt3, [0], psi=0.7, edits=(Edit.parse(f"{dirs_file}:0:5"),)))
    assert np.abs(moved[0].astype(int) - plain[0].astype(int)).mean() > 1  # a real edit is visible

    spec = PathSpec("linear", loop=False)
    edit = Edit.parse(f"{dirs_file}:1:2.5@4-7")
    base, _ = Animation(rt3, [0, 1], spec, frames=5).inputs(np.arange(5))
    shifted, _ = Animation(rt3, [0, 1], PathSpec("linear", loop=False, edits=(edit,)), frames=5).inputs(np.arange(5))
    expect = torch.zeros_like(base)
    expect[:, 4:8] = 2.5 * torch.from_numpy(edit.direction).float()
    torch.testing.assert_close(shifted - base, expect, atol=1e-5, rtol=0)


@pytest.mark.parametrize("loop", [True, False])
def test_sweep_is_smooth_and_spans_its_range(rt3, dirs_file, loop):
    frames = 40
    edit = Edit.parse(f"{dirs_file}:0:-3..3")
    spec = PathSpec("linear", loop=loop, edits=(edit,))
    anim = Animation(rt3, [7], spec, frames=frames)  # one seed: w is constant, only the sweep moves
    ws, _ = anim.inputs(np.arange(frames))
    amount = ((ws - ws[:1]) * torch.from_numpy(edit.direction).float()).sum(-1)[:, 0].numpy() - 3.0  # [F]
    assert amount[0] == pytest.approx(-3.0, abs=1e-4)
    assert amount.max() == pytest.approx(3.0, abs=0.05)
    steps = np.abs(np.diff(np.concatenate([amount, amount[:1]]) if loop else amount))  # the seam counts when looping
    # eased cosine: the largest step is pi/2 * range / (frames per one-way half) -- no jump anywhere
    half = frames / 2 if loop else frames - 1
    assert steps.max() <= np.pi / 2 * 6 / half * 1.01
    if not loop:
        assert amount[-1] == pytest.approx(3.0, abs=1e-4)


def test_sweep_refused_for_images(rt3, dirs_file):
    with pytest.raises(InputError, match="needs a video"):
        list(render_images(rt3, [0], edits=(Edit.parse(f"{dirs_file}:0:-1..1"),)))


# ---- stabilize -----------------------------------------------------------------------------------


def test_stabilize_anchors_input_layer(rt3):
    ws, _ = Animation(rt3, [0, 1, 2], PathSpec("cubic", stabilize=True), frames=6).inputs(np.arange(6))
    free, _ = Animation(rt3, [0, 1, 2], PathSpec("cubic"), frames=6).inputs(np.arange(6))
    torch.testing.assert_close(ws[:, 0], rt3.w_avg.expand(6, -1), rtol=0, atol=0)
    torch.testing.assert_close(ws[:, 1:], free[:, 1:], rtol=0, atol=0)


def test_stabilize_refuses_stylegan2(g2):
    with open_generator(g2, backend="torch", device="cpu") as rt:
        with pytest.raises(InputError, match="needs a StyleGAN3"):
            Animation(rt, [0, 1], PathSpec("cubic", stabilize=True), frames=2)
        with pytest.raises(InputError, match="needs a StyleGAN3"):
            list(render_images(rt, [0], stabilize=True))


def test_shift_measure_finds_a_known_shift():
    rng = np.random.RandomState(0)
    img = rng.rand(64, 64)
    from scipy.ndimage import gaussian_filter

    img = gaussian_filter(img, 2, mode="wrap")
    frames = np.stack([np.roll(img, (k * 2, -k * 3), axis=(0, 1)) for k in range(3)])
    np.testing.assert_allclose(frame_shifts(frames), [[2, -3], [2, -3]], atol=0.25)
