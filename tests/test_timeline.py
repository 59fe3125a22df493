"""Keyframe timelines: parsing and every error, keys hit exactly (against still_batches), eases, independent
tracks, loop seams, and `sg3rt render --timeline` end to end (TOML and JSON give the same frames)."""

from __future__ import annotations

import json
import re

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from refdata import reference_file
from sg3rt import load_generator
from sg3rt.animate import Edit, still_batches
from sg3rt.animate.latents import load_ws, save_ws
from sg3rt.animate.render import frame_batches
from sg3rt.animate.timeline import EASES, KeyTimeline, canvas_size, ease, load_timeline, track_weights
from sg3rt.cli import app
from sg3rt.errors import InputError
from sg3rt.networks import input_transform
from sg3rt.runtime import open_generator

runner = CliRunner()

SHOW_TOML = """
fps = 2
loop = true

[[key]]
time = 0.0
seed = 1
psi = 0.7
rotate = 0
ease = "cubic"

[[key]]
time = 0.5
seed = 2
translate = [0.1, 0.0]

[[key]]
time = 1.0
seed = 3
rotate = 90
ease = "in-out"
"""


def show_dict(**top) -> dict:
    return {"fps": 4, **top, "key": [{"time": 0, "seed": 1}, {"time": 0.5, "seed": 2}, {"time": 1.0, "seed": 3}]}


@pytest.fixture(scope="module")
def rt3():
    with open_generator(load_generator(reference_file("sg3r_64.pkl")), backend="torch", device="cpu") as rt:
        yield rt


@pytest.fixture(scope="module")
def files(tmp_path_factory, rt3):
    """A direction (.npy) and a w file with two ws, beside the timelines that name them."""
    folder = tmp_path_factory.mktemp("show")
    np.save(folder / "dir.npy", np.random.RandomState(0).randn(rt3.w_dim))
    save_ws(folder / "keys.npz", 0.3 * np.random.RandomState(1).randn(2, rt3.num_ws, rt3.w_dim))
    return folder


# ---- parsing -------------------------------------------------------------------------------------


def test_toml_fields_and_defaults(tmp_path):
    path = tmp_path / "show.toml"
    path.write_text(SHOW_TOML)
    tl = load_timeline(path)
    assert (tl.fps, tl.loop, tl.psi, tl.size) == (2.0, True, 1.0, None)
    assert [k.time for k in tl.keys] == [0.0, 0.5, 1.0]
    assert [k.ease for k in tl.keys] == ["cubic", "linear", "in-out"]  # default ease: linear
    assert tl.keys[1].translate == (0.1, 0.0) and tl.keys[1].rotate is None and tl.keys[1].psi is None
    # a loop closes with one more mean-spaced segment: 1.0 + 0.5 s -> 3 frames at 2 fps
    assert tl.length == 1.5 and tl.num_frames == 3 == tl.length * tl.fps
    one_way = KeyTimeline.from_dict(show_dict())
    assert one_way.num_frames == 5  # ends on its last key: 1.0 s * 4 + 1
    np.testing.assert_array_equal(one_way.frame_times(np.arange(5)), [0, 0.25, 0.5, 0.75, 1.0])
    assert KeyTimeline.from_dict(show_dict(size="1920x1080")).size == (1920, 1080)
    assert KeyTimeline.from_dict(show_dict(duration=3)).num_frames == 13  # holds the last key to 3 s
    # uneven keys: the closing segment (mean spacing 0.625 s) is rounded to whole frames (8 at 12 fps)
    uneven = KeyTimeline.from_dict({"fps": 12, "loop": True, "key": [{"time": 0, "seed": 1}, {"time": 0.25, "seed": 2},
                                                                     {"time": 1.25, "seed": 3}]})
    assert uneven.num_frames == 15 + 8 and uneven.frame_times(np.array([3, 15]))[1] == 1.25


def test_json_equals_toml(tmp_path):
    import tomllib

    (tmp_path / "show.toml").write_text(SHOW_TOML)
    (tmp_path / "show.json").write_text(json.dumps(tomllib.loads(SHOW_TOML)))
    a, b = load_timeline(tmp_path / "show.toml"), load_timeline(tmp_path / "show.json")
    assert [vars(k) for k in a.keys] == [vars(k) for k in b.keys]
    assert (a.fps, a.loop, a.num_frames) == (b.fps, b.loop, b.num_frames)


def _keys(*extra: dict) -> list[dict]:
    base = [{"time": 0, "seed": 1}, {"time": 2.0, "seed": 2}, {"time": 4.0, "seed": 3}]
    return [{**k, **e} for k, e in zip(base, extra)] + base[len(extra):]


@pytest.mark.parametrize("data, match", [
    ({"key": _keys({}, {}, {"sed": 3})}, r"^key 3 \(time 4\.0\): unknown field 'sed'"),
    ({"fsp": 30, "key": _keys()}, r"unknown top-level field 'fsp'"),
    ({"key": [{"time": 0, "seed": 1}, {"time": 2.0, "seed": 2}, {"time": 2.0, "seed": 3}]},
     r"key 3 \(time 2\.0\): times must increase"),
    ({"key": [{"time": 1, "seed": 1}, {"time": 0.5, "seed": 2}]}, r"key 2 \(time 0\.5\): times must increase"),
    ({"key": _keys({}, {"seed": 2, "w": "keys.npz:0"})}, r"key 2 \(time 2\.0\): give 'seed' or 'w', not both"),
    ({"key": _keys({"ease": "smooth"})}, r"key 1 \(time 0\.0\): field 'ease' must be one of linear, in, out, in-out, cubic"),
    ({"ease": "fast", "key": _keys()}, r"top level: field 'ease' must be one of"),
    ({"key": _keys({"psi": "0.7"})}, r"key 1 \(time 0\.0\): field 'psi' must be a finite number, got '0.7'"),
    ({"key": _keys({"psi": 1e300})}, r"key 1 \(time 0\.0\): field 'psi' must be between -100 and 100"),
    ({"psi": -1e3, "key": _keys()}, r"top level: field 'psi' must be between -100 and 100"),
    ({"key": _keys({"seed": -1})}, r"key 1 \(time 0\.0\): field 'seed' must be an integer 0\.\.4294967295"),
    ({"key": _keys({"seed": True})}, r"field 'seed' must be an integer"),
    ({"key": _keys({"seed": 1.5})}, r"field 'seed' must be an integer"),
    ({"key": _keys({}, {"cutoff": -2})}, r"key 2 \(time 2\.0\): field 'cutoff' must be an integer >= 0"),
    ({"key": _keys({"class": "cat"})}, r"field 'class' must be an integer"),
    ({"key": _keys({"rotate": [1]})}, r"field 'rotate' must be a finite number"),
    ({"key": _keys({"translate": [0.1]})}, r"field 'translate' must be \[x, y\]"),
    ({"key": _keys({"translate": "0.1,0"})}, r"field 'translate' must be \[x, y\]"),
    ({"key": _keys({"mix": "coarse"})}, r"key 1 \(time 0\.0\): field 'mix' bad --mix 'coarse'"),
    ({"key": _keys({"mix": [5]})}, r"field 'mix' must be a string or a list of strings"),
    ({"key": _keys({"mix": "coarse:99999999999"})},
     r"^key 1 \(time 0\.0\): field 'mix' bad --mix 'coarse:99999999999': seed 99999999999 is too large"),
    ({"fps": 1e-4, "key": _keys()}, r"^top level: field 'fps' must be between 0\.01 and 1000 frames per second"),
    ({"fps": 1e12, "key": _keys()}, r"^top level: field 'fps' must be between 0\.01 and 1000"),
    ({"loop": True, "key": [{"time": 0, "seed": 1}, {"time": 1e308, "seed": 2}]},
     r"^the timeline \(inf s at 30 fps\) gives inf frames; at most 10368000 \(a day at 120 fps\)$"),
    ({"key": [{"time": 0, "seed": 1}, {"time": 1e308, "seed": 2}]}, r"^the timeline \(1e\+308 s at 30 fps\) gives"),
    ({"duration": 1e9, "key": _keys()}, r"^the timeline \(1e\+09 s at 30 fps\) gives 3e\+10 frames"),
    ({"key": _keys({"edit": "nowhere.npy:1"})}, r"key 1 \(time 0\.0\): field 'edit' 'nowhere.npy:1': .*no such file"),
    ({"key": _keys({"edit": "dir.npy:x"})}, r"field 'edit' 'dir.npy:x': bad amount"),
    ({"key": _keys({}, {}, {"edit": "dir.npy:-1..1"})}, r"key 3 \(time 4\.0\): field 'edit': a sweep .* last key"),
    ({"key": _keys({"edit": "dir.npy:-1..1"}, {"edit": "dir.npy:0"})},
     r"key 2 \(time 2\.0\): field 'edit': the sweep of key 1 \(time 0\.0\) ends here"),
    ({"key": _keys({"w": "keys.npz:0", "seed": None, "psi": 0.5})},
     r"key 1 \(time 0\.0\): field 'psi' truncates the mapping of seeds"),
    ({"key": _keys({"w": "keys.npz:7", "seed": None})}, r"field 'w' 'keys.npz:7': index 7 is out of range \(the file holds 2"),
    ({"key": _keys({"w": "gone.npz:0", "seed": None})}, r"field 'w' 'gone.npz:0': .*no such w file"),
    ({"key": _keys({"w": 3, "seed": None})}, r"field 'w' must be a string 'FILE.npz:INDEX'"),
    ({"key": [{"time": 0, "psi": 0.5}]}, r"no key sets 'seed' or 'w'"),
    ({"key": []}, r"no keys: add \[\[key\]\] tables"),
    ({"key": [{"seed": 1}]}, r"key 1: missing field 'time'"),
    ({"key": ["seed=1"]}, r"key 1: must be a table of fields"),
    ({"key": [{"time": -1, "seed": 1}]}, r"key 1: field 'time' must be >= 0"),
    ({"fps": 0, "key": _keys()}, r"top level: field 'fps' must be > 0"),
    ({"fps": "30", "key": _keys()}, r"top level: field 'fps' must be a finite number"),
    ({"loop": "yes", "key": _keys()}, r"top level: field 'loop' must be true or false"),
    ({"size": "1920*1080", "key": _keys()}, r"top level: field 'size': size must be WIDTHxHEIGHT"),
    ({"size": "0x1080", "key": _keys()}, r"field 'size': size width must be between 1 and"),
    ({"loop": True, "key": [{"time": 0, "seed": 1}]}, r"a loop needs at least two keys"),
    ({"duration": 3, "key": _keys()}, r"duration 3 s must be at or after the last key's time \(4 s\)"),
])
def test_errors_name_the_key_and_field(files, data, match):
    for k in data.get("key", []):
        if isinstance(k, dict) and k.get("seed", 0) is None:
            del k["seed"]
    with pytest.raises(InputError, match=match) as info:
        KeyTimeline.from_dict(data, base=files)
    assert "\n" not in str(info.value)


def test_readme_example_parses(tmp_path, rt3):
    """The README's commented example is a valid timeline (its files made here)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = readme.split("### Timelines", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    save_ws(tmp_path / "projected_w.npz", np.zeros((1, rt3.num_ws, rt3.w_dim)))
    np.savez(tmp_path / "dirs.npz", directions=np.eye(rt3.w_dim)[:2])
    (tmp_path / "show.toml").write_text(example)
    tl = load_timeline(tmp_path / "show.toml")
    assert (tl.fps, tl.loop, tl.psi, len(tl.keys)) == (30.0, True, 0.7, 3)
    assert tl.num_frames == 6 * 30  # keys at 0, 2, 4 s loop over 6 s
    assert [k.ease for k in tl.keys] == ["cubic", "in-out", "linear"]


def test_a_byte_order_mark_is_no_error(tmp_path):
    """Windows Notepad starts a UTF-8 file with a BOM; tomllib and json refuse it, so it is read past."""
    import tomllib

    for name, text in (("show.toml", SHOW_TOML), ("show.json", json.dumps(tomllib.loads(SHOW_TOML)))):
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + text.encode())
        tl = load_timeline(tmp_path / name)
        assert (tl.fps, tl.loop, len(tl.keys)) == (2.0, True, 3)


def test_errors_found_on_binding_name_the_file_and_key(tmp_path, rt3):
    """A mix layer range is checked against the network's num_ws only when the timeline binds: its error says
    where, as every other timeline error does."""
    (tmp_path / "show.toml").write_text('[[key]]\ntime = 0\nseed = 1\n[[key]]\ntime = 1\nseed = 2\nmix = "0-99:3"\n')
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path / 'show.toml'))}: key 2 \(time 1\.0\): field 'mix': "
                                         r"layer range '0-99' must satisfy a <= b < num_ws = 16$"):
        load_timeline(tmp_path / "show.toml").bind(rt3)
    (tmp_path / "cut.toml").write_text("[[key]]\ntime = 0\nseed = 1\ncutoff = 17\n")
    with pytest.raises(InputError, match=r"cut\.toml: key 1 \(time 0\.0\): field 'cutoff' must be at most num_ws"):
        load_timeline(tmp_path / "cut.toml").bind(rt3)


def test_edit_errors_name_the_file_key_and_field(tmp_path, rt3, load_reference):
    """An edit that does not fit the network (width) is found on binding and named as every timeline error (was the
    CLI's "--edit '...': direction has shape ..."); a zero direction is refused on parsing; class errors read as
    a timeline's, not as --class."""
    np.save(tmp_path / "wide.npy", np.ones(128))
    np.save(tmp_path / "zero.npy", np.zeros(64))
    (tmp_path / "wide.toml").write_text('[[key]]\ntime = 0\nseed = 1\nedit = "wide.npy:1"\n')
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path / 'wide.toml'))}: key 1 \(time 0\.0\): field 'edit' "
                                         r"'wide\.npy:1': direction has shape \[128\], the network needs \[64\]$"):
        load_timeline(tmp_path / "wide.toml").bind(rt3)
    (tmp_path / "zero.toml").write_text('[[key]]\ntime = 0\nseed = 1\n[[key]]\ntime = 1\nseed = 2\nedit = "zero.npy:1"\n')
    with pytest.raises(InputError, match=rf"^{re.escape(str(tmp_path / 'zero.toml'))}: key 2 \(time 1\.0\): field 'edit' "
                                         r"'zero\.npy:1': the direction is a zero vector"):
        load_timeline(tmp_path / "zero.toml")
    (tmp_path / "class.toml").write_text("[[key]]\ntime = 0\nseed = 1\nclass = 1000\n")
    with open_generator(load_reference("sg3t_64_cond"), backend="torch", device="cpu") as rt:
        with pytest.raises(InputError, match=r"class\.toml: key 1 \(time 0\.0\): field 'class' must be 0\.\.9 "
                                             r"\(this network has 10 classes\), got 1000$"):
            load_timeline(tmp_path / "class.toml").bind(rt)
    with pytest.raises(InputError, match=r"class\.toml: key 1 \(time 0\.0\): field 'class' is set, but this network "
                                         r"is unconditional") as info:
        load_timeline(tmp_path / "class.toml").bind(rt3)
    assert "--class" not in str(info.value)


def test_file_errors(tmp_path):
    (tmp_path / "bad.toml").write_text("fps = \n[[key]]\n")
    with pytest.raises(InputError, match=r"bad\.toml: not valid TOML: .*line 1"):
        load_timeline(tmp_path / "bad.toml")
    (tmp_path / "bad.json").write_text("{\"key\": [")
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
        load_timeline(tmp_path / "bad.json")
    with pytest.raises(InputError, match=r"a timeline is a \.toml or \.json file"):
        load_timeline(tmp_path / "show.yaml")
    (tmp_path / "typo.toml").write_text("[[key]]\ntime = 0\nsed = 1\n")
    with pytest.raises(InputError, match=r"typo\.toml: key 1 \(time 0\.0\): unknown field 'sed'"):
        load_timeline(tmp_path / "typo.toml")


# ---- eases and tracks ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [e for e in EASES if e != "cubic"])
def test_ease_shapes(name):
    f = np.linspace(0, 1, 1001)
    g = ease(name, f)
    assert g[0] == 0.0 and abs(g[-1] - 1.0) < 1e-15
    assert np.all(np.diff(g) > 0)  # strictly monotone
    slope0, slope1 = (g[1] - g[0]) / 1e-3, (g[-1] - g[-2]) / 1e-3
    assert (slope0 < 0.01) == (name in ("in", "in-out"))  # starts at rest
    assert (slope1 < 0.01) == (name in ("out", "in-out"))  # arrives at rest


def test_cubic_is_c1_through_uneven_keys():
    """Catmull-Rom in Hermite form with time-scaled tangents: passes through every key and its velocity
    (per second) is continuous at every key, even with keys 0.5, 1.5 and 2 s apart."""
    times, values = np.array([0.0, 0.5, 2.0, 4.0]), np.array([0.0, 3.0, -1.0, 2.0])
    for loop in (False, True):
        period = 5.0
        hit = track_weights(times, ["cubic"] * 4, times, loop, period) @ values
        np.testing.assert_array_equal(hit, values)
        h = 1e-6
        for tk in times[1:-1] if not loop else times:  # every key a curve passes through
            left = track_weights(times, ["cubic"] * 4, np.array([tk - 2 * h, tk - h]) % period, loop, period) @ values
            right = track_weights(times, ["cubic"] * 4, np.array([tk + h, tk + 2 * h]), loop, period) @ values
            v_left, v_right = (left[1] - left[0]) / h, (right[1] - right[0]) / h
            assert abs(v_left - v_right) < 1e-3 * max(1.0, abs(v_left)), (loop, tk, v_left, v_right)
    # a linear track is only C0: the same check finds its corner
    lin = lambda t: track_weights(times, ["linear"] * 4, np.array(t), False, 0) @ values  # noqa: E731
    assert abs((lin([0.5 + 1e-6])[0] - 3.0) / 1e-6 - (3.0 - lin([0.5 - 1e-6])[0]) / 1e-6) > 1.0


def test_weights_sum_to_one_and_hold_outside():
    times = np.array([1.0, 2.0, 3.0])
    t = np.linspace(0, 4, 81)
    for e in EASES:
        w = track_weights(times, [e] * 3, t, False, 0)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
        assert np.all(w[t <= 1.0, 0] == 1.0) and np.all(w[t >= 3.0, 2] == 1.0)


def test_properties_interpolate_on_their_own(rt3):
    """psi set at keys 1 and 3 only: at key 2's time psi is their blend (key 2 does not pin it), and the
    latent track is the same with or without the psi keys (psi 1 there)."""
    keys = [{"time": 0, "seed": 1, "psi": 0.5}, {"time": 1, "seed": 2}, {"time": 2, "seed": 3, "psi": 1.0}]
    anim = KeyTimeline.from_dict({"fps": 4, "key": keys}).bind(rt3)
    plain = KeyTimeline.from_dict({"fps": 4, "key": [{k: v for k, v in key.items() if k != "psi"} for key in keys]}).bind(rt3)
    frames = np.arange(9)
    ws, raw = anim.ws(frames), plain.ws(frames)
    psi = np.linspace(0.5, 1.0, 9)  # linear over 0..2 s
    w_avg = rt3.w_avg.reshape(1, 1, -1)
    want = w_avg + (raw - w_avg) * torch.tensor(psi, dtype=torch.float32).reshape(-1, 1, 1)
    torch.testing.assert_close(ws, want, atol=1e-5, rtol=0)
    assert torch.equal(ws[8], raw[8])  # psi 1.0 at the end: untouched
    # rotate set at keys 1 and 3, translate at key 2 only: rotation blends 0 -> 90, the shift holds
    keys = [{"time": 0, "seed": 1, "rotate": 0}, {"time": 1, "seed": 2, "translate": [0.1, 0]},
            {"time": 2, "seed": 3, "rotate": 90}]
    tr = KeyTimeline.from_dict({"fps": 4, "key": keys}).bind(rt3).transforms(frames)
    want = input_transform(torch.linspace(0, 90, 9, dtype=torch.float64), torch.tensor([[0.1, 0.0]]).expand(9, 2))
    torch.testing.assert_close(tr, want, atol=1e-6, rtol=0)


def test_loop_seam_is_continuous(rt3):
    """A loop's frame after the last is frame 0 again, and the closing step is no larger than the others."""
    keys = [{"time": 0, "seed": 1, "rotate": 0, "ease": "cubic"}, {"time": 0.5, "seed": 2, "ease": "cubic"},
            {"time": 1.25, "seed": 3, "rotate": 40, "ease": "cubic"}]
    tl = KeyTimeline.from_dict({"fps": 8, "loop": True, "key": keys})
    anim = tl.bind(rt3)
    n = tl.num_frames
    assert n == round(tl.length * tl.fps) == 15
    ws, tr = anim.inputs(np.arange(n + 1))
    torch.testing.assert_close(ws[n], ws[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(tr[n], tr[0], atol=1e-6, rtol=0)
    steps = (ws[1:] - ws[:-1]).flatten(1).norm(dim=1)
    assert steps[-1] <= 1.5 * steps[:-1].max()
    # every track closes: a property set on one key only is constant, two keys go there and back
    times = np.array([0.2, 0.9])
    w = track_weights(times, ["in-out"] * 2, np.array([0.0, 1.5 - 1e-9]), True, 1.5)
    np.testing.assert_allclose(w[0], w[1], atol=1e-8)


# ---- keys hit exactly ----------------------------------------------------------------------------


def _still(rt, key, files, ws=None):
    kw = dict(mixes=key.mix or (), rotate=key.rotate or 0.0, translate=key.translate or (0.0, 0.0), edits=key.edit or ())
    if ws is not None:
        return next(still_batches(rt, ws=ws, **kw))
    return next(still_batches(rt, [key.seed], psi=1.0 if key.psi is None else key.psi, cutoff=key.cutoff,
                              class_idx=key.class_idx, **kw))


def test_keys_hit_exactly(rt3, files):
    """Each key's frame has bit for bit the ws and transform of `sg3rt image` (still_batches) with that key's
    settings, so the same image; through the batched renderer the pictures agree within one level of 255
    (a batch of 4 and a batch of 1 may sum a convolution in a different order: ~1e-6, a rounding flip)."""
    keys = [
        dict(time=0, seed=1, psi=0.7, cutoff=4, rotate=10, translate=[0.1, -0.2], mix=["coarse:5"], edit="dir.npy:1.5",
             ease="cubic"),
        dict(time=0.5, seed=2, psi=0.5, cutoff=16, rotate=-30, translate=[0, 0.05], mix=[], edit=["dir.npy:-2"],
             ease="in-out"),
        dict(time=1.0, w="keys.npz:1", psi=None, cutoff=None, rotate=0, translate=[0, 0], mix="fine:7", edit=[],
             ease="cubic"),
        dict(time=1.5, seed=9, psi=1.0, cutoff=16, rotate=45, translate=[-0.1, 0], mix=["4-7:3", "fine:8"],
             edit="dir.npy:0.25"),
    ]
    keys[1]["psi"] = 1.0  # psi 1 around the w key (its w and mix are used as sg3rt image --w-file does)
    keys = [{k: v for k, v in key.items() if v is not None} for key in keys]
    tl = KeyTimeline.from_dict({"fps": 2, "loop": True, "key": keys}, base=files)  # a frame on every key
    anim = tl.bind(rt3)
    ws, tr = anim.inputs(np.arange(tl.num_frames))
    batched = np.concatenate(list(frame_batches(rt3, anim, batch=4)))
    assert batched.shape == (tl.num_frames, 64, 64, 3)
    w_file = load_ws(files / "keys.npz", rt3.num_ws, rt3.w_dim)
    for key, frame in zip(tl.keys, (0, 1, 2, 3)):
        _, want_ws, want = _still(rt3, key, files, ws=w_file[1:2] if key.w is not None else None)
        assert torch.equal(ws[frame:frame + 1], want_ws), key.where
        assert torch.equal(tr[frame], input_transform(key.rotate, key.translate)), key.where
        assert np.array_equal(rt3.frames(ws[frame:frame + 1], tr[frame:frame + 1]).numpy(), want), key.where
        assert np.abs(batched[frame].astype(int) - want[0]).max() <= 1, key.where
    between = KeyTimeline.from_dict({"fps": 4, "loop": True, "key": keys}, base=files).bind(rt3).ws(np.arange(3))
    assert torch.equal(between[2], ws[1]) and not torch.equal(between[1], ws[0]) and not torch.equal(between[1], ws[1])


def test_classes_and_sweeps_hit_their_keys(load_reference, files):
    """A conditional network: class blends between keys; a sweep A..B is A on its key and B on the next."""
    with open_generator(load_reference("sg3t_64_cond"), backend="torch", device="cpu") as rt:
        np.save(files / "dir_t.npy", np.random.RandomState(2).randn(rt.w_dim))
        keys = [{"time": 0, "seed": 4, "class": 2, "psi": 0.8, "edit": "dir_t.npy:-1..1"},
                {"time": 1, "seed": 5, "class": 7}, {"time": 2, "seed": 6}]
        anim = KeyTimeline.from_dict({"fps": 2, "key": keys}, base=files).bind(rt)
        ws = anim.ws(np.arange(5))
        for frame, seed, cls, amount in ((0, 4, 2, "-1"), (2, 5, 7, "1"), (4, 6, 7, "1")):
            edit = Edit.parse(f"{files / 'dir_t.npy'}:{amount}")
            (_, want, _), = still_batches(rt, [seed], psi=0.8, class_idx=cls, edits=(edit,))
            assert torch.equal(ws[frame:frame + 1], want), (frame, seed, cls)
        with pytest.raises(InputError, match=r"conditional \(10 classes\): set 'class'"):
            KeyTimeline.from_dict({"key": [{"time": 0, "seed": 1}]}).bind(rt)


def test_bind_errors(rt3, load_reference, files):
    tl = KeyTimeline.from_dict({"key": [{"time": 0, "seed": 1}, {"time": 1, "seed": 2, "rotate": 30}]})
    with open_generator(load_reference("sg2_64"), backend="torch", device="cpu") as rt2:
        with pytest.raises(InputError, match=r"^key 2 \(time 1\.0\): StyleGAN2 has no input transform"):
            tl.bind(rt2)
    with pytest.raises(InputError, match=r"key 1 \(time 0\.0\): field 'cutoff' must be at most num_ws = 16"):
        KeyTimeline.from_dict({"key": [{"time": 0, "seed": 1, "cutoff": 17}]}).bind(rt3)
    with pytest.raises(InputError, match=r"key 1 \(time 0\.0\): field 'class'"):
        KeyTimeline.from_dict({"key": [{"time": 0, "seed": 1, "class": 0}]}).bind(rt3)
    with pytest.raises(InputError, match="^the timeline's size is 1920x1080 but the runtime renders 64x64"):
        KeyTimeline.from_dict(show_dict(size="1920x1080")).bind(rt3)
    assert KeyTimeline.from_dict(show_dict(size="64x64")).bind(rt3).frame_size == (64, 64)
    assert canvas_size(None, rt3) == (64, 64)


# ---- the command ---------------------------------------------------------------------------------


def mp4_frames(path) -> tuple[tuple[int, int], int]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    return tuple(meta["size"]), sum(1 for _ in reader)


def test_render_timeline_mp4_and_json_png(tmp_path):
    """The README's kind of file to MP4 (frames = fps * duration for a loop); its JSON twin renders the
    same PNG frames as the TOML."""
    import tomllib

    net = reference_file("sg3r_64.pkl")
    (tmp_path / "show.toml").write_text(SHOW_TOML)
    (tmp_path / "show.json").write_text(json.dumps(tomllib.loads(SHOW_TOML)))
    result = runner.invoke(app, ["render", "-n", str(net), "--timeline", str(tmp_path / "show.toml"),
                                 "-o", str(tmp_path / "show.mp4")])
    assert result.exit_code == 0, result.output
    assert "(3 frames, 64x64, 2 fps, 1.50 s)" in result.output
    assert mp4_frames(tmp_path / "show.mp4") == ((64, 64), 3)
    for name in ("show.toml", "show.json"):
        result = runner.invoke(app, ["render", "-n", str(net), "--timeline", str(tmp_path / name), "--batch", "3",
                                     "-o", str(tmp_path / name.replace(".", "_"))])
        assert result.exit_code == 0, result.output
    for i in range(3):
        a = iio.imread(tmp_path / "show_toml" / f"frame{i:06d}.png")
        assert np.array_equal(a, iio.imread(tmp_path / "show_json" / f"frame{i:06d}.png"))


@pytest.mark.parametrize("args, match", [
    (["--seeds", "3", "--fps", "12"], r"^error: --timeline sets the keys, timing and per-key settings: drop --seeds, --fps$"),
    (["--psi", "0.5"], r"drop --psi$"),
    ([], r"^error: .*typo\.toml: key 1 \(time 0\.0\): unknown field 'sed'"),
])
def test_render_timeline_errors_before_loading(tmp_path, args, match):
    (tmp_path / "typo.toml").write_text("[[key]]\ntime = 0\nsed = 1\n")
    result = runner.invoke(app, ["render", "-n", str(tmp_path / "missing.pkl"), "--timeline", str(tmp_path / "typo.toml"),
                                 "-o", str(tmp_path / "out.mp4"), *args])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(match, lines[0]), result.output
    assert not (tmp_path / "out.mp4").exists()


def test_render_timeline_on_its_canvas(tmp_path):
    """A timeline's size opens the runtime on that canvas (StyleGAN3); --size may not contradict it."""
    (tmp_path / "wide.toml").write_text('fps = 4\nsize = "96x64"\n[[key]]\ntime = 0\nseed = 1\n'
                                        '[[key]]\ntime = 0.5\nseed = 2\n')
    out = tmp_path / "wide.mp4"
    result = runner.invoke(app, ["render", "-n", str(reference_file("sg3r_64.pkl")), "--timeline",
                                 str(tmp_path / "wide.toml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert mp4_frames(out) == ((96, 64), 3)  # 0.5 s at 4 fps, one-way: last time x fps + 1 frames
    bad = runner.invoke(app, ["render", "-n", str(reference_file("sg3r_64.pkl")), "--timeline",
                              str(tmp_path / "wide.toml"), "--size", "128x64", "-o", str(tmp_path / "bad.mp4")])
    assert bad.exit_code == 2 and "differs from the timeline's size 96x64" in bad.output, bad.output
    assert not (tmp_path / "bad.mp4").exists()
