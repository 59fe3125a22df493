"""animate/: seeds, latent paths, mixing, motion, grids, writers and the render loop, on the 64px references."""

from __future__ import annotations

import contextlib
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import torch

from sg3rt import InputError, input_transform
from sg3rt.animate import (
    Animation, Grid, LatentPath, Motion, PathSpec, StyleMix, Timeline, Translation, check_motion, class_labels,
    cubic_path, frame_batches, lerp_path, noise_loop, open_writer, parse_seeds, render, seed_z, slerp_path,
)
from sg3rt.animate.edits import Edit
from sg3rt.animate.paths import MAX_FRAMES, layer_range
from sg3rt.animate.seeds import MAX_SEED
from sg3rt.runtime.torch_backend import TorchRuntime


@pytest.fixture(scope="module")
def sg3r(load_reference):
    return TorchRuntime(load_reference("sg3r_64"), "cpu")


@pytest.fixture(scope="module")
def sg2(load_reference):
    return TorchRuntime(load_reference("sg2_64"), "cpu")


@pytest.fixture(scope="module")
def cond(load_reference):
    return TorchRuntime(load_reference("sg3t_64_cond"), "cpu")


def read_mp4(path: Path) -> tuple[tuple[int, int], list[np.ndarray]]:
    """(width, height) and the decoded RGB frames of an MP4."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return (w, h), [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader]


def steps(ws: torch.Tensor) -> torch.Tensor:
    """[T, ...] -> [T] distance from each frame to the next, the last one wrapping to frame 0."""
    return (ws.roll(-1, 0) - ws).flatten(1).double().norm(dim=1)


# -- seeds ------------------------------------------------------------------------------------------


def test_parse_seeds():
    assert parse_seeds("0-3,12, 42") == [0, 1, 2, 3, 12, 42]
    assert parse_seeds("7") == [7]
    assert parse_seeds("5-5,5") == [5, 5]  # ranges are inclusive; repeats are kept


@pytest.mark.parametrize("text, match", [("", "empty"), ("  ", "empty"), ("-1", "bad seed"), ("7-3", "reversed"),
                                         ("1,,2", "bad seed"), ("a-b", "bad seed"), ("1.5", "bad seed"),
                                         ("4294967296", "too large")])
def test_parse_seeds_errors(text, match):
    with pytest.raises(InputError, match=match) as e:
        parse_seeds(text)
    assert "\n" not in str(e.value)


def test_seed_z_is_official():
    z = seed_z(42, 512)
    np.testing.assert_array_equal(z, np.random.RandomState(42).randn(1, 512)[0])  # gen_images.py's form


def test_class_labels(cond, sg3r):
    c = class_labels(10, 3, 2)
    np.testing.assert_array_equal(c, np.eye(10, dtype=np.float32)[[3, 3]])
    with pytest.raises(InputError, match="conditional"):
        LatentPath(cond, [0, 1], PathSpec("linear"), Timeline.build(2, False, 30, frames=2))
    with pytest.raises(InputError, match="out of range"):
        class_labels(10, 10, 1)
    with pytest.raises(InputError, match="unconditional"):
        LatentPath(sg3r, [0], PathSpec("linear", class_idx=1), Timeline.build(1, False, 30, frames=1))


# -- timing and paths -------------------------------------------------------------------------------


def test_timeline_frame_counts():
    assert Timeline.build(3, True, 30, frames_per_transition=4).num_frames == 12  # 3 transitions, no repeat
    assert Timeline.build(3, False, 30, frames_per_transition=4).num_frames == 9  # 2 transitions + last key
    assert Timeline.build(3, True, 24, duration=2.5).num_frames == 60
    assert Timeline.build(1, False, 30, frames=5).num_frames == 5
    tl = Timeline.build(4, True, 30, frames=8)
    np.testing.assert_allclose(tl.positions(np.arange(8)), np.arange(8) / 2)  # every 2nd frame on a keyframe


@pytest.mark.parametrize("kwargs, match", [({"duration": 0}, "--duration"), ({"duration": -1}, "--duration"),
                                           ({"frames": 0}, "--frames"), ({"frames_per_transition": 0}, "transition"),
                                           ({"duration": 1, "frames": 3}, "only one")])
def test_timeline_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        Timeline.build(3, False, 30, **kwargs)
    with pytest.raises(InputError, match="--fps"):
        Timeline.build(3, False, 0, frames=3)


@pytest.mark.parametrize("fps, kwargs, match", [
    (30, {"duration": 1e308}, r"^--duration 1e\+308 s at 30 fps gives inf frames; at most 10368000 \(a day at 120 fps\)$"),
    (30, {"frames": 10**20}, r"^--frames gives 100000000000000000000 frames; at most 10368000"),
    (30, {"frames_per_transition": 10**19}, r"^--frames-per-transition 10000000000000000000 over 2 transitions gives"),
    (1e308, {"duration": 10}, r"^--fps must be between 0\.01 and 1000 frames per second, got 1e\+308$"),
    (1e-4, {"frames": 3}, r"^--fps must be between 0\.01 and 1000"),
    (float("nan"), {"frames": 3}, r"^--fps must be between 0\.01 and 1000"),
])
def test_timeline_lengths_and_rates_are_bounded(fps, kwargs, match):
    """A huge length is one line (not round(inf)'s OverflowError, nor a render that never ends); so is an fps
    that ffmpeg would take as 0/1 or refuse after the render."""
    with pytest.raises(InputError, match=match):
        Timeline.build(3, False, fps, **kwargs)
    assert Timeline.build(2, False, 120, duration=24 * 3600).num_frames == MAX_FRAMES  # a day at 120 fps still is
    assert Timeline.build(2, False, 0.01, frames=2).num_frames == 2


def test_paths_pass_through_keyframes():
    keys = np.random.RandomState(0).randn(4, 3, 5)
    t = np.arange(4.0)
    for path in (lerp_path, cubic_path):
        np.testing.assert_allclose(path(keys, t, loop=True), keys, atol=1e-12)
        np.testing.assert_allclose(path(keys, t, loop=False), keys, atol=1e-12)
    np.testing.assert_allclose(slerp_path(keys, t, loop=False), keys, atol=1e-12)
    np.testing.assert_allclose(lerp_path(keys, np.array([0.25]), loop=False)[0], 0.75 * keys[0] + 0.25 * keys[1])


def test_slerp_keeps_norm_on_a_great_circle():
    a, b = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    mid = slerp_path(np.stack([a, b]), np.array([0.5]), loop=False)[0, 0]
    np.testing.assert_allclose(mid, [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12)  # lerp would give [0.5, 0.5]


def test_noise_loop_is_periodic_and_gaussian():
    phase = np.arange(100) / 100
    z = noise_loop(7, 20000, phase)
    np.testing.assert_allclose(noise_loop(7, 20000, phase + 1), z, atol=1e-9)  # periodic
    np.testing.assert_array_equal(noise_loop(7, 20000, phase), z)  # deterministic from the seed
    assert abs(z.std() - 1) < 0.01 and abs(z.mean()) < 0.01  # each frame a typical N(0, I) latent
    assert not np.allclose(noise_loop(8, 20000, phase[:1]), z[:1])


@pytest.mark.parametrize("kind, seeds", [("cubic", [0, 1, 2, 3]), ("noise", [5]), ("slerp", [0, 1, 2])])
def test_loop_closes_without_a_seam(sg3r, kind, seeds):
    """The last->first step is an ordinary step; for cubic/noise the path is C1 there (no kink)."""
    spec = PathSpec(kind, loop=True, psi=0.7)
    tl = Timeline.build(len(seeds), spec.loops, 30, frames=36)
    ws = LatentPath(sg3r, seeds, spec, tl).ws(np.arange(36))
    s = steps(ws)
    assert s[-1] <= s[:-1].max()
    assert s.max() <= 2.5 * s.mean()  # no jumps anywhere
    if kind != "slerp":
        d2 = (ws.roll(-1, 0) - 2 * ws + ws.roll(1, 0)).flatten(1).double().norm(dim=1)
        assert d2[0] <= d2[1:].max()  # second difference at the seam like anywhere else: C1
    # The same seeds without --loop do jump back: the check above can fail.
    one_way = LatentPath(sg3r, seeds, PathSpec(kind, loop=False, psi=0.7), Timeline.build(len(seeds), False, 30, frames=36))
    if kind != "noise":
        s1 = steps(one_way.ws(np.arange(36)))
        assert s1[-1] > 3 * s1[:-1].max()


def test_w_path_keyframes_are_truncated_mapping(sg3r):
    spec = PathSpec("linear", psi=0.7, cutoff=8)
    tl = Timeline.build(3, False, 30, frames_per_transition=2)  # keyframes at frames 0, 2, 4
    ws = LatentPath(sg3r, [3, 4, 5], spec, tl).ws(np.array([0, 2, 4]))
    z = np.stack([seed_z(s, sg3r.z_dim) for s in (3, 4, 5)]).astype(np.float32)
    torch.testing.assert_close(ws, sg3r.mapping(z, None, 0.7, 8), rtol=0, atol=1e-6)


def test_z_path_maps_every_frame(sg3r):
    spec = PathSpec("slerp", space="z")
    tl = Timeline.build(2, False, 30, frames=3)
    ws = LatentPath(sg3r, [0, 1], spec, tl).ws(np.arange(3))
    z0, z1 = seed_z(0, sg3r.z_dim), seed_z(1, sg3r.z_dim)
    mid = slerp_path(np.stack([z0, z1]), np.array([0.5]), loop=False).astype(np.float32)
    torch.testing.assert_close(ws[1:2], sg3r.mapping(mid), rtol=0, atol=1e-6)
    with pytest.raises(InputError, match="works in W"):
        PathSpec("cubic", space="z")
    with pytest.raises(InputError, match="unknown path"):
        PathSpec("bezier")


def test_style_mixing(sg3r):
    assert layer_range("coarse", 18) == (0, 4) and layer_range("middle", 18) == (4, 8)
    assert layer_range("fine", 18) == (8, 18) and layer_range("2-5", 16) == (2, 6)
    for bad in ("5-2", "0-16"):
        with pytest.raises(InputError, match="layer range"):
            layer_range(bad, 16)
    with pytest.raises(InputError, match="--mix"):
        StyleMix.parse("coarse")
    with pytest.raises(InputError, match="layer range"):
        StyleMix.parse("top:3")
    assert StyleMix.parse(f"fine:{MAX_SEED}").seed == MAX_SEED
    with pytest.raises(InputError, match=r"^bad --mix 'coarse:4294967296': seed 4294967296 is too large \(seeds go "
                                         r"from 0 to 4294967295\)$"):
        StyleMix.parse("coarse:4294967296")  # (RandomState's ValueError once the network had loaded)
    mixes = (StyleMix.parse("coarse:9"), StyleMix.parse("10-12:11"))
    tl = Timeline.build(2, False, 30, frames=2)
    plain = LatentPath(sg3r, [0, 1], PathSpec("linear"), tl).ws(np.arange(2))
    mixed = LatentPath(sg3r, [0, 1], PathSpec("linear", mixes=mixes), tl).ws(np.arange(2))
    w9 = sg3r.mapping(seed_z(9, sg3r.z_dim)[None].astype(np.float32))[0]
    w11 = sg3r.mapping(seed_z(11, sg3r.z_dim)[None].astype(np.float32))[0]
    lo, hi = layer_range("coarse", sg3r.num_ws)
    torch.testing.assert_close(mixed[:, lo:hi], w9[lo:hi].expand(2, -1, -1))
    torch.testing.assert_close(mixed[:, 10:13], w11[10:13].expand(2, -1, -1))
    torch.testing.assert_close(mixed[:, hi:10], plain[:, hi:10])
    torch.testing.assert_close(mixed[:, 13:], plain[:, 13:])


def test_keyframe_ws_are_what_the_keyframes_show(sg3r, tmp_path):
    """--save-w's ws are the keyframes' frames exactly: mixing, a fixed edit and the stabilize anchor included
    (so --w-file renders them again); a sweep, whose amount changes between keyframes, is refused."""
    np.save(tmp_path / "d.npy", np.random.RandomState(0).randn(sg3r.w_dim))
    edit = Edit.parse(f"{tmp_path / 'd.npy'}:2.5")
    spec = PathSpec("cubic", mixes=(StyleMix.parse("coarse:9"),), edits=(edit,), stabilize=True)
    anim = Animation(sg3r, [3, 5], spec, frames=4)  # a loop through 2 keys: they are frames 0 and 2
    keys = anim.keyframe_ws()
    shown, _ = anim.inputs(np.array([0, 2]))
    assert torch.equal(keys, shown)
    assert torch.equal(keys[:, 0], sg3r.w_avg.expand(2, -1))  # the anchor
    sweep = PathSpec("cubic", edits=(Edit.parse(f"{tmp_path / 'd.npy'}:-1..1"),))
    with pytest.raises(InputError, match=r"--edit '.*d\.npy:-1\.\.1': --save-w saves fixed ws per keyframe"):
        Animation(sg3r, [3, 5], sweep, frames=4).keyframe_ws()


# -- motion and grids -------------------------------------------------------------------------------


def test_translation_parse_and_curves():
    assert Translation.parse("circle") == Translation("circle", 0.1, 1)
    assert Translation.parse("figure-eight:0.05:2") == Translation("figure8", 0.05, 2)
    for bad in ("square:0.1", "circle:x", "line:0.1:0", "circle:-1"):
        with pytest.raises(InputError, match="--translate"):
            Translation.parse(bad)
    phase = np.arange(8) / 8
    circle = Translation.parse("circle:0.2").offsets(phase)
    np.testing.assert_allclose(np.linalg.norm(circle, axis=1), 0.2)
    line = Translation.parse("line:0.3").offsets(phase)
    assert np.all(line[:, 1] == 0) and np.isclose(line[:, 0].max(), 0.3)
    eight = Translation.parse("figure8:0.1").offsets(np.array([0.0, 0.5]))
    np.testing.assert_allclose(eight, 0, atol=1e-12)  # crosses its centre twice per cycle


def test_motion_transforms_match_input_transform():
    frames = np.arange(6)
    motion = Motion(rotate=360, translate=Translation.parse("circle:0.1"))
    phase = frames / 6
    got = motion.transforms(frames, phase, 30)
    for i in frames:
        offset = Translation.parse("circle:0.1").offsets(phase[i:i + 1])[0]
        torch.testing.assert_close(got[i], input_transform(60.0 * i, tuple(offset)), rtol=0, atol=1e-6)
    speed = Motion(rotate_speed=90).angles(frames, phase, fps=30)
    np.testing.assert_allclose(speed, 3 * frames)
    with pytest.raises(InputError, match="not both"):
        Motion(rotate=10, rotate_speed=10)


def test_motion_on_stylegan2_is_refused(sg2):
    with pytest.raises(InputError, match="StyleGAN3") as e:
        check_motion(Motion(rotate=90), sg2)
    assert "\n" not in str(e.value)
    check_motion(Motion(), sg2)  # no motion: fine


def test_grid():
    g = Grid.parse("3x2")
    assert (g.cols, g.rows, g.tiles) == (3, 2, 6)
    assert g.split_seeds(list(range(12)))[4] == [8, 9]
    with pytest.raises(InputError, match="multiple of 6"):
        g.split_seeds(list(range(7)))
    for bad in ("3", "0x2", "axb"):
        with pytest.raises(InputError, match="--grid"):
            Grid.parse(bad)
    images = np.arange(2 * 6).reshape(12, 1, 1, 1).repeat(2, 1).repeat(2, 2).astype(np.uint8)  # [F*tiles, 2, 2, 1]
    frames = g.tile(images)  # [2, 4, 6, 1]
    assert frames.shape == (2, 4, 6, 1)
    assert frames[1, 2, 4, 0] == 6 + 1 * 3 + 2  # frame 1, row 1, column 2 -> tile 5 of frame 1


# -- rendering --------------------------------------------------------------------------------------


def test_rendered_rotation_equals_synthesis_with_transform(sg3r, tmp_path):
    """Frame 1 of a 4-frame 360 degree loop is the image rotated by 90 degrees, through the PNG writer."""
    anim = Animation(sg3r, [3], PathSpec("linear", loop=True, psi=0.7), motion=Motion(rotate=360), frames=4)
    np.testing.assert_allclose(anim.motion.angles(np.arange(4), anim.timeline.phase(np.arange(4)), 30), [0, 90, 180, 270])
    with open_writer(tmp_path / "frames", 30) as writer, contextlib.closing(render(sg3r, anim, writer, 4)) as events:
        assert [p.done for p in events][-1] == 4
    frame1 = iio.imread(tmp_path / "frames" / "frame000001.png")
    ws = sg3r.mapping(seed_z(3, sg3r.z_dim)[None].astype(np.float32), None, 0.7)
    want = sg3r.frames(ws, input_transform(90.0))[0].numpy()
    assert frame1.shape == (64, 64, 3)
    assert np.abs(frame1.astype(int) - want.astype(int)).max() <= 1
    unrotated = sg3r.frames(ws)[0].numpy()
    assert np.abs(frame1.astype(int) - unrotated.astype(int)).mean() > 5  # the check can fail


def test_grid_render_and_determinism(sg2):
    anim = Animation(sg2, [0, 1, 2, 3], PathSpec("cubic", loop=True), grid=Grid.parse("2x1"), frames=3)
    a = np.concatenate(list(frame_batches(sg2, anim, batch=4)))
    b = np.concatenate(list(frame_batches(sg2, anim, batch=4)))
    assert a.shape == (3, 64, 128, 3)
    np.testing.assert_array_equal(a, b)
    ws, _ = anim.inputs(np.array([0]))
    left = sg2.frames(ws[:1])[0].numpy()  # tile 0 = seeds 0-1 starts on seed 0
    assert np.abs(a[0, :, :64].astype(int) - left.astype(int)).max() <= 1


class Failing:
    """A runtime that delegates to a real one and raises `error` on call number `at` of frames()."""

    def __init__(self, runtime, at: int, error: BaseException):
        self.runtime, self.at, self.error, self.calls = runtime, at, error, 0

    def __getattr__(self, name):
        return getattr(self.runtime, name)

    def frames(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            raise self.error
        return self.runtime.frames(*args, **kwargs)


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "frames"])
def test_failure_mid_render_leaves_nothing(sg2, tmp_path, name):
    runtime = Failing(sg2, at=2, error=RuntimeError("device lost"))
    anim = Animation(runtime, [0, 1], PathSpec("linear"), frames=6)
    with pytest.raises(RuntimeError, match="device lost"):
        with open_writer(tmp_path / name, 30) as writer, contextlib.closing(render(runtime, anim, writer, 2)) as ev:
            for _ in ev:
                pass
    assert list(tmp_path.iterdir()) == []  # no output, no temp file


def test_interrupt_keeps_a_playable_mp4(sg2, tmp_path):
    runtime = Failing(sg2, at=3, error=KeyboardInterrupt())
    anim = Animation(runtime, [0, 1], PathSpec("linear"), frames=8)
    with pytest.raises(KeyboardInterrupt):
        with open_writer(tmp_path / "out.mp4", 30) as writer, contextlib.closing(render(runtime, anim, writer, 2)) as ev:
            for _ in ev:
                pass
    assert writer.kept and writer.count == 4
    size, frames = read_mp4(tmp_path / "out.mp4")
    assert size == (64, 64) and len(frames) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


def test_writers_count_and_size(tmp_path):
    yy, xx = np.mgrid[0:33, 0:47]  # odd size: MP4 pads to even
    frames = np.stack([np.stack([xx * 5 + 20 * i, yy * 7, np.full_like(xx, 40 * i)], axis=-1)
                       for i in range(5)]).astype(np.uint8)  # [5, 33, 47, 3] smooth, different frames
    for name in ("v.mp4", "v.gif", "seq"):
        with open_writer(tmp_path / name, 12) as w:
            w.write(frames[:2])
            w.write(frames[2:])
    size, decoded = read_mp4(tmp_path / "v.mp4")
    assert size == (48, 34) and len(decoded) == 5
    for got, want in zip(decoded, frames):  # the same pictures, in order (H.264 is lossy: a few levels off)
        assert np.abs(got[:33, :47].astype(int) - want.astype(int)).mean() < 4
    gif = iio.imread(tmp_path / "v.gif", index=None)
    assert gif.shape[:3] == (5, 33, 47)
    assert iio.immeta(tmp_path / "v.gif").get("loop") == 0  # loops forever
    np.testing.assert_array_equal(iio.imread(tmp_path / "seq" / "frame000004.png"), frames[4])  # PNG is lossless
    with pytest.raises(InputError, match="not empty"):
        open_writer(tmp_path / "seq", 12)
    with pytest.raises(InputError, match="unknown output type"):
        open_writer(tmp_path / "v.avi", 12)
    with pytest.raises(InputError, match="--crf"):
        open_writer(tmp_path / "w.mp4", 12, crf=60)


@pytest.mark.parametrize("threads", [1, 3])
def test_png_frames_are_encoded_side_by_side_in_order(tmp_path, monkeypatch, threads):
    """PNG_THREADS encoders per batch: every frame lands under its own number, bit-exact, whatever the batches."""
    from sg3rt.animate import writers

    monkeypatch.setattr(writers, "PNG_THREADS", threads)
    rng = np.random.default_rng(threads)
    frames = rng.integers(0, 256, size=(11, 24, 40, 3), dtype=np.uint8)
    with writers.open_writer(tmp_path / "seq", 12) as w:
        for batch in (frames[:1], frames[1:8], frames[8:]):
            w.write(batch)
        assert (w._pool is not None) == (threads > 1)
    assert w._pool is None  # closed with the writer
    names = sorted(p.name for p in (tmp_path / "seq").iterdir())
    assert names == [f"frame{i:06d}.png" for i in range(11)]
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(iio.imread(tmp_path / "seq" / names[i]), frame)


def test_png_frames_a_failing_write_stops_with_one_line(tmp_path, monkeypatch):
    from sg3rt.animate import writers
    from sg3rt.errors import OutputError

    monkeypatch.setattr(writers, "PNG_THREADS", 3)
    calls = []

    def full(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        Path(path).write_bytes(data)

    monkeypatch.setattr(writers, "write_bytes", full)
    frames = np.zeros((6, 8, 8, 3), np.uint8)
    with pytest.raises(OutputError, match="cannot write frame000002.png \\(No space left on device\\)"):
        with writers.open_writer(tmp_path / "seq", 12) as w:
            w.write(frames)
    assert not (tmp_path / "seq").exists() and not list(tmp_path.iterdir())  # nothing half-written left
