"""MIDI control of a live session: CC values onto each control's validated range (ends, middle, curves,
encoders, switches, choices), channel filtering, notes and buttons to actions, map files refused with
one line naming the file and key, messages into a running session on the embedded network (the frame
changes as the control says), a port through mido's backend machinery, and the CLI's one-line errors."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from live_command import interrupt, live_command
from waiting import wait_for

from sg3rt.errors import InputError, Sg3rtError
from sg3rt.live import Clocks, LiveSession, MidiControl
from sg3rt.live.controls import MAX_SEED, NetworkLimits, apply, initial_controls, numeric_range
from sg3rt.live.midi import find_input, midi_input_names
from sg3rt.live.midimap import (CC_MAX, DEFAULT_FADERS, DEFAULT_PADS, Fader, MidiMap, fader_value, relative_steps,
                                shape)

SG3 = NetworkLimits(num_ws=16, c_dim=0, is_stylegan3=True, edits=2)
SG2_COND = NetworkLimits(num_ws=12, c_dim=10, is_stylegan3=False)
WAIT_S = 60  # bound for anything that waits on the render thread (2 loaded cores)
README = Path(__file__).resolve().parent.parent / "README.md"


def bound(control: str, **kw) -> Fader:
    """A fader on `control`, bound to SG3 (its range resolved the way MidiControl does)."""
    return MidiMap((Fader(1, control, **kw),), (), "test").bind(SG3).faders[0]


# -- CC value -> control value ---------------------------------------------------------------------


@pytest.mark.parametrize("control", ["psi", "speed", "rotate", "rotate_speed", "tx", "translate_amplitude", "fps",
                                     "cutoff", "mix_to", "quality", "edits.1"])
def test_cc_covers_the_validated_range_with_64_in_the_middle(control):
    f = bound(control)
    key = f.key
    lo, hi = numeric_range(key, SG3)
    assert f.range == (lo, hi)
    # the range is exactly what validation accepts: both ends pass, one step beyond is refused
    base = initial_controls(SG3, mix_from=0)
    wrap = (lambda v: [0.0, v]) if key == "edits" else (lambda v: v)
    for end in (lo, hi):
        apply(base, {key: wrap(end)}, SG3)
    for beyond in (lo - 1, hi + 1):
        with pytest.raises(Sg3rtError):
            apply(base, {key: wrap(beyond)}, SG3)
    values = [fader_value(f, v) for v in range(CC_MAX + 1)]
    assert values[0] == lo and values[CC_MAX] == hi
    middle = (lo + hi) / 2
    assert values[64] == (round(middle) if isinstance(lo, int) else pytest.approx(middle, abs=1e-12))
    assert all(a <= b for a, b in zip(values, values[1:]))  # monotonic
    if isinstance(lo, float):
        assert values[32] == pytest.approx(lo + (hi - lo) * 32 / 128)  # linear between the ends and the middle
        assert values[96] == pytest.approx(middle + (hi - lo) * 32 / 126)


def test_range_and_curves_keep_their_ends():
    linear, exp, log, square = (bound("speed", range=(1.0, 9.0), curve=c) for c in ("linear", "exp", "log", 2))
    for f in (linear, exp, log, square):
        assert fader_value(f, 0) == 1.0 and fader_value(f, CC_MAX) == 9.0
    assert fader_value(exp, 64) < fader_value(linear, 64) == 5.0 < fader_value(log, 64)
    assert fader_value(square, 64) == pytest.approx(1.0 + 8.0 * 0.25)
    # exp and log are each other's inverse; exp's first step is much finer than linear's
    for t in np.linspace(0, 1, 11):
        assert shape(shape(t, "exp"), "log") == pytest.approx(t, abs=1e-12)
    assert fader_value(exp, 1) - 1.0 < (fader_value(linear, 1) - 1.0) / 10
    reverse = bound("psi", range=(1.5, 0.0))  # a reversed fader
    assert fader_value(reverse, 0) == 1.5 and fader_value(reverse, CC_MAX) == 0.0


def test_switches_choices_and_relative_encoders():
    stab = bound("stabilize")
    assert [fader_value(stab, v) for v in (0, 63, 64, 127)] == [False, False, True, True]
    walk = bound("walk")
    zones = [fader_value(walk, v) for v in range(CC_MAX + 1)]
    assert zones[0] == "off" and zones[CC_MAX] == "noise" and sorted(set(zones)) == ["cubic", "noise", "off"]
    assert [zones.count(w) for w in ("off", "cubic", "noise")] == [43, 43, 42]  # even zones
    anim = bound("translate_anim")
    assert [fader_value(anim, v) for v in (0, 31, 32, 64, 96, 127)] == ["off", "off", "line", "circle", "figure8",
                                                                         "figure8"]
    enc = bound("rotate", relative=True)
    step = 720.0 / CC_MAX
    assert [relative_steps(v) for v in (1, 5, 63, 64, 65, 127)] == [1, 5, 63, -64, -63, -1]
    assert fader_value(enc, 1, 10.0) == pytest.approx(10.0 + step)
    assert fader_value(enc, 127, 10.0) == pytest.approx(10.0 - step)
    assert fader_value(enc, 3, 359.0) == 360.0 and fader_value(enc, 100, -350.0) == -360.0  # clamped to the range
    cutoff = bound("cutoff", relative=True)  # 1..16: each tick moves one layer, not 1/127 of the range
    assert [fader_value(cutoff, v, 8) for v in (1, 2, 127, 126)] == [9, 10, 7, 6]
    assert fader_value(cutoff, 1, None) == 2  # unset (all layers) starts at the range's start


# -- maps: the default one, files, binding to a network ---------------------------------------------


def test_default_map_binds_what_each_network_has():
    sg3 = MidiMap.default().bind(SG3)  # StyleGAN3 with 2 edit directions
    assert [f.control for f in sg3.faders] == [c for _, c, _, _ in DEFAULT_FADERS][:10]
    assert len(sg3.pads) == len(DEFAULT_PADS)
    sg2 = MidiMap.default().bind(SG2_COND)  # StyleGAN2: no motion, no edits loaded
    assert [f.control for f in sg2.faders] == ["psi", "speed", "translate_amplitude", "translate_speed"]
    assert "stabilize" not in [p.trigger.toggle for p in sg2.pads] and len(sg2.pads) == len(DEFAULT_PADS) - 1
    for f in sg3.faders:  # every default range lies inside the validated one
        lo, hi = numeric_range(f.key, SG3)
        assert lo <= min(f.range) and max(f.range) <= hi


EXAMPLE = """
[[cc]]
number = 21
control = "psi"
range = [0.2, 1.2]
curve = "exp"
channel = 2

[[cc]]
number = 22
control = "rotate"
mode = "relative"

[[cc]]
number = 45
action = "record_toggle"

[[note]]
number = 60
action = "next"

[[note]]
number = 61
toggle = "paused"

[[note]]
number = 62
set = { walk = "noise", speed = 0.3 }
"""


def test_toml_and_json_maps_read_the_same(tmp_path):
    import tomllib

    (tmp_path / "m.toml").write_text(EXAMPLE)
    (tmp_path / "m.json").write_text(json.dumps(tomllib.loads(EXAMPLE)))
    a, b = MidiMap.load(tmp_path / "m.toml"), MidiMap.load(tmp_path / "m.json")
    assert (a.faders, a.pads) == (b.faders, b.pads) and a.source.endswith("m.toml")
    psi, rot = a.faders
    assert (psi.number, psi.channel, psi.range, psi.curve, psi.relative) == (21, 2, (0.2, 1.2), "exp", False)
    assert rot.relative and rot.range is None
    assert [(p.source, p.number) for p in a.pads] == [("cc", 45), ("note", 60), ("note", 61), ("note", 62)]
    assert a.pads[3].trigger.set == {"walk": "noise", "speed": 0.3}


def test_defaults_true_keeps_the_default_map_except_where_the_file_rebinds(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('defaults = true\n[[cc]]\nnumber = 1\ncontrol = "mix_seed"\nrange = [0, 127]\n'
                    '[[note]]\nnumber = 36\naction = "random"\n')
    m = MidiMap.load(path)
    assert [f.control for f in m.faders if f.number == 1] == ["mix_seed"]
    assert [p.trigger.action for p in m.pads if p.number == 36] == ["random"]
    assert len(m.faders) == len(DEFAULT_FADERS) and len(m.pads) == len(DEFAULT_PADS)
    assert len(MidiMap.default().bind(SG2_COND).faders) == len(m.bind(SG2_COND).faders)  # defaults stay optional


def test_readme_example_map_loads(tmp_path):
    text = README.read_text()
    block = re.search(r"```toml\n(# a MIDI map.*?)```", text, re.S)
    assert block, "README: the MIDI map example (a ```toml block starting '# a MIDI map') is missing"
    (tmp_path / "example.toml").write_text(block.group(1))
    m = MidiMap.load(tmp_path / "example.toml").bind(SG3)
    assert m.faders and m.pads


@pytest.mark.parametrize("text, match", [
    ('[[cc]]\nnumber = 1\ncontrol = "psy"', 'cc[0].control: unknown control "psy"'),
    ('[[cc]]\nnumber = 128\ncontrol = "psi"', "cc[0].number: must be an integer 0..127, got 128"),
    ('[[cc]]\ncontrol = "psi"', "cc[0].number: must be an integer 0..127, got null"),
    ('[[cc]]\nnumber = 1\ncontrol = "psi"\nchannel = 0', "cc[0].channel: must be an integer 1..16, got 0"),
    ('[[cc]]\nnumber = 1\ncontrol = "psi"\nrange = [0, 1, 2]', "cc[0].range: must be [value at 0, value at 127]"),
    ('[[cc]]\nnumber = 1\ncontrol = "psi"\nrange = [1, 1]', "cc[0].range: must be [value at 0, value at 127]"),
    ('[[cc]]\nnumber = 1\ncontrol = "psi"\ncurve = "cubic"', "cc[0].curve: must be one of linear, exp, log"),
    ('[[cc]]\nnumber = 1\ncontrol = "psi"\ncurve = -2', "cc[0].curve: must be one of linear, exp, log"),
    ('[[cc]]\nnumber = 1\ncontrol = "psi"\nmode = "spin"', "cc[0].mode: must be absolute or relative"),
    ('[[cc]]\nnumber = 1\ncontrol = "walk"\nrange = [0, 1]', "cc[0].range: walk is a choice: it takes no range"),
    ('[[cc]]\nnumber = 1\ncontrol = "seeds"', "cc[0].control: seeds takes a list"),
    ('[[cc]]\nnumber = 1\ncontrol = "edits.x"', 'cc[0].control: unknown control "edits.x"'),
    ('[[cc]]\nnumber = 1\ncontrol = "psi"\naction = "next"', "cc[0]: give either control (a fader) or action"),
    ('[[cc]]\nnumber = 1\naction = "next"\ncurve = "exp"', "cc[0]: range, curve, mode, bits and takeover belong "
                                                        "to a fader"),
    ('[[note]]\nnumber = 36\naction = "jump"', 'note[0].action: must be one of random, next, prev, record, stop, '
                                               'record_toggle, got "jump"'),
    ('[[note]]\nnumber = 36\ntoggle = "psi"', 'note[0].toggle: toggles a switch: paused, stabilize, got "psi"'),
    ('[[note]]\nnumber = 36\nset = { psy = 1 }', "note[0].set.psy: unknown control"),
    ('[[note]]\nnumber = 36\naction = "next"\ntoggle = "paused"', "note[0]: give exactly one of action, toggle or "
                                                                    "set (got action, toggle)"),
    ('[[note]]\nnumber = 36', "note[0]: give exactly one of action, toggle or set"),
    ('[[note]]\nnumber = 36\nvelocity = 3\naction = "next"', "note[0].velocity: unknown key"),
    ('[[pads]]\nnumber = 36', "pads: unknown key (known: cc, note, pitchbend, defaults)"),
    ('cc = 3', "cc: must be a list of tables"),
    ('defaults = "yes"\n[[note]]\nnumber = 36\naction = "next"', 'defaults: must be true or false, got "yes"'),
    ("", "the map binds nothing"),
    ("[[cc]\n", "not valid TOML"),
])
def test_bad_map_files_are_one_line_naming_file_and_key(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        MidiMap.load(path)
    line = str(e.value)
    assert line.startswith(f"{path}: ") and match in line and "\n" not in line


def test_map_file_names_and_suffixes(tmp_path):
    with pytest.raises(InputError, match=r"a MIDI map is a .toml or .json file, not '.yaml'"):
        MidiMap.load(tmp_path / "m.yaml")
    with pytest.raises(InputError, match=r"nowhere.toml: cannot read the MIDI map"):
        MidiMap.load(tmp_path / "nowhere.toml")
    (tmp_path / "m.json").write_text('{"cc": [{"number": 1, "control": "psi"}],}')
    with pytest.raises(InputError, match=r"m.json: not valid JSON"):
        MidiMap.load(tmp_path / "m.json")


@pytest.mark.parametrize("entry, limits, match", [
    ('[[cc]]\nnumber = 1\ncontrol = "psi"\nrange = [0, 5]', SG3, "cc[0].range: [0, 5] is outside psi's -2..2"),
    ('[[cc]]\nnumber = 1\ncontrol = "cutoff"\nrange = [1, 40]', SG3, "cc[0].range: [1, 40] is outside cutoff's 1..16"),
    ('[[cc]]\nnumber = 1\ncontrol = "rotate"', SG2_COND, "cc[0].control: rotate needs a StyleGAN3 network"),
    ('[[cc]]\nnumber = 1\ncontrol = "edits.2"', SG3, "cc[0].control: edits.2 needs at least 3 --edit directions "
                                                    "(2 loaded)"),
    ('[[cc]]\nnumber = 1\ncontrol = "class"', SG3, "cc[0].control: class: this network is unconditional"),
    ('[[note]]\nnumber = 1\ntoggle = "stabilize"', SG2_COND, "note[0].toggle: stabilize needs a StyleGAN3 network"),
    ('[[note]]\nnumber = 1\nset = { seed = -1 }', SG3, "note[0].set.seed: seed must be between 0 and"),
    ('[[note]]\nnumber = 1\nset = { class = 10 }', SG2_COND, "note[0].set.class: class must be an integer between "
                                                             "0 and 9"),
])
def test_a_map_file_asking_what_the_network_lacks_is_refused(tmp_path, entry, limits, match):
    path = tmp_path / "net.toml"
    path.write_text(entry)
    m = MidiMap.load(path)  # valid on its own
    with pytest.raises(InputError) as e:
        m.bind(limits)
    assert str(e.value).startswith(f"{path}: ") and match in str(e.value)


# -- messages into a session ----------------------------------------------------------------------

try:
    import mido
except ImportError:  # the tests above need no mido; those below send its messages
    mido = None
needs_mido = pytest.mark.skipif(mido is None, reason="mido is not installed: pip install 'sg3rt[midi]'")


def cc(number: int, value: int, channel: int = 0):
    return mido.Message("control_change", control=number, value=value, channel=channel)


def note(number: int, velocity: int = 100, channel: int = 0):
    return mido.Message("note_on", note=number, velocity=velocity, channel=channel)


@pytest.fixture(scope="module")
def embedded():
    from sg3rt.runtime import open_generator

    with open_generator(None, device="cpu") as rt:
        yield rt


@pytest.fixture
def session(embedded, tmp_path):
    s = LiveSession(embedded, record_dir=tmp_path / "rec")  # not started: updates and actions only
    yield s
    s.close()


@needs_mido
def test_channels_notes_and_buttons_reach_the_session(session):
    m = MidiMap.from_dict({"cc": [{"number": 20, "control": "psi", "channel": 2, "range": [0, 1]},
                                  {"number": 45, "action": "next"}],
                           "note": [{"number": 60, "channel": 10, "action": "next"},
                                    {"number": 61, "toggle": "paused"},
                                    {"number": 62, "set": {"walk": "noise", "speed": 0.25}}]}, "test map")
    midi = MidiControl(session, m)
    psi, seed = session.controls.psi, session.controls.seed
    midi.handle(cc(20, 127, channel=0))  # channel 1: not this fader's
    assert session.controls.psi == psi
    midi.handle(cc(20, 127, channel=1))  # channel 2
    assert session.controls.psi == 1.0
    midi.handle(cc(20, 64, channel=1))
    assert session.controls.psi == 0.5
    midi.handle(note(60, channel=0))
    midi.handle(note(60, velocity=0, channel=9))  # a note_on with velocity 0 is a release
    midi.handle(mido.Message("note_off", note=60, channel=9))
    assert session.controls.seed == seed
    midi.handle(note(60, channel=9))
    assert session.controls.seed == seed + 1
    for value in (127, 127, 100, 0, 90):  # a button fires when pressed (reaching 64), once per press
        midi.handle(cc(45, value))
    assert session.controls.seed == seed + 3
    midi.handle(note(61))
    assert session.controls.paused
    midi.handle(note(61))
    assert not session.controls.paused
    midi.handle(note(62))
    assert (session.controls.walk, session.controls.speed) == ("noise", 0.25)
    midi.handle(mido.Message("clock"))  # not mapped: ignored
    midi.handle(mido.Message("pitchwheel", pitch=100))
    assert not midi.errors and midi.received == 17


@needs_mido
def test_default_map_pads_and_edit_sliders(embedded, tmp_path):
    """Notes 36-43 and CC 9 (the first --edit slider) of the default map, on a session with two edits."""
    from sg3rt.animate.edits import Edit

    rng = np.random.default_rng(0)
    for k in range(2):
        np.save(tmp_path / f"d{k}.npy", rng.standard_normal(embedded.w_dim).astype(np.float32))
    edits = tuple(Edit.parse(f"{tmp_path / f'd{k}.npy'}:1.5") for k in range(2))
    s = LiveSession(embedded, edits=edits, controls={"seed": 10})
    midi = MidiControl(s)
    assert [f.control for f in midi.map.faders][-2:] == ["edits.0", "edits.1"]  # CC 9, 10; CC 11-16 left out
    for value in (70, 0):  # the knob sweeps through the start amount 1.5 (soft takeover), then down to 0
        midi.handle(cc(10, value))
    for value in (60, 96):
        midi.handle(cc(9, value))
    assert s.controls.edits == (pytest.approx(20.0 * 32 / 63), -20.0)
    for n, check in [(36, lambda c: c.seed == 9), (37, lambda c: c.seed == 10), (40, lambda c: c.paused),
                     (41, lambda c: c.stabilize), (43, lambda c: c.walk == "noise"), (42, lambda c: c.walk == "cubic"),
                     (40, lambda c: not c.paused), (41, lambda c: not c.stabilize)]:
        midi.handle(note(n))
        assert check(s.controls), n
    seeds = set()
    for _ in range(3):
        midi.handle(note(38))  # random
        seeds.add(s.controls.seed)
    assert len(seeds) == 3 and all(0 <= x <= MAX_SEED for x in seeds)
    midi.handle(note(39))  # record_toggle without a record_dir: refused, kept in errors
    assert len(midi.errors) == 1 and "recording is off" in midi.errors[0] and s.recording is None


@needs_mido
def test_a_refused_update_changes_nothing_and_is_kept(session):
    midi = MidiControl(session, MidiMap.from_dict({"cc": [{"number": 1, "control": "mix_from", "takeover": "jump"},
                                                          {"number": 1, "control": "psi", "takeover": "jump"}]},
                                                  "test map"))
    before = session.controls
    midi.handle(cc(1, CC_MAX))  # mix_from 15 is after mix_to 3: the whole message is refused (psi too)
    assert session.controls == before
    assert len(midi.errors) == 1 and midi.errors[0].startswith("CC 1 = 127 (channel 1): mix_from (15) must not be after")


@needs_mido
def test_messages_drive_a_running_session_and_the_frames_follow(embedded, tmp_path):
    """Rotation by MIDI turns the picture; a pad steps the seed; record on, record off gives a playable MP4."""
    with LiveSession(embedded, record_dir=tmp_path / "rec", controls={"walk": "off"}) as s:
        still = wait_for(lambda: s.stream.wait_next(0, 1.0), WAIT_S, what="a first frame")
        midi = MidiControl(s)
        midi.read([cc(4, 64), cc(4, CC_MAX)]).wait(WAIT_S)  # default map: CC 4 = rotate, -180..180, picked up at 0
        assert s.controls.rotate == 180.0 and not midi.errors
        version = s.version
        turned = wait_for(lambda: (f := s.stream.wait_next(0, 1.0)) and f.version >= version and f, WAIT_S, what="rotated frame")
        assert np.array_equal(turned.rgb, s.render_frame(s.controls, Clocks()))  # the frame shows these controls
        a, b = still.rgb.astype(float), turned.rgb.astype(float)
        err_same, err_rot = np.abs(b - a).mean(), np.abs(b - np.rot90(a, 2)).mean()
        assert err_rot < 0.1 * err_same, (err_rot, err_same)  # turned half a turn, not just changed
        midi.read([note(37), note(37), note(39)]).wait(WAIT_S)  # next, next, record
        assert s.controls.seed == 2 and s.recording is not None
        version = s.version
        n = wait_for(lambda: (f := s.stream.wait_next(0, 1.0)) and f.version >= version and f.seq, WAIT_S, what="seed 2")
        wait_for(lambda: (f := s.stream.wait_next(n + 3, 1.0)) and f, WAIT_S, what="frames to record")
        midi.read([note(39)]).wait(WAIT_S)  # record_toggle again: stop
        assert s.recording is None and not midi.errors
        (name, path), = s.recordings.items()
        assert path.exists() and path.stat().st_size > 0


# -- ports ------------------------------------------------------------------------------------------


@needs_mido
def test_a_port_through_mido_backend_machinery(session, monkeypatch):
    """The same path as a hardware port: name lookup, mido's open_input with our callback, delivery on the
    port's own thread, close stops delivery (tests/midi_loopback.py is a mido backend module)."""
    import midi_loopback

    backend = "midi_loopback"
    assert midi_input_names(backend) == midi_loopback.PORTS
    assert find_input(None, backend) == "Loopback Fader Box" and find_input("PADS", backend) == "Loopback Pads"
    with pytest.raises(InputError, match=r"no MIDI input port matches 'nano' \(ports: Loopback Fader Box; Loopback Pads\)"):
        find_input("nano", backend)
    out = mido.Backend(backend, load=True).open_output("Loopback Pads")
    midi = MidiControl(session).open_port("pads", backend=backend)
    try:
        assert midi.port_name == "Loopback Pads"
        out.send(cc(1, 64))  # default map: CC 1 = psi 0..2, picked up at 1 (the start value), then down to 0
        out.send(cc(1, 0))
        out.send(note(37))
        wait_for(lambda: midi.received == 3, 10, "three messages through the port")
        assert session.controls.psi == 0.0 and session.controls.seed == 1
    finally:
        midi.close()
    out.send(note(37))
    time.sleep(0.2)
    assert midi.received == 3 and session.controls.seed == 1 and midi.port.closed
    monkeypatch.setattr(midi_loopback, "PORTS", [])
    with pytest.raises(InputError, match="no MIDI input port found: connect a controller"):
        find_input(None, backend)


@needs_mido
def test_a_virtual_rtmidi_port_end_to_end(session):
    """A real virtual port (python-rtmidi, ALSA sequencer); skipped where the system has no MIDI."""
    pytest.importorskip("rtmidi", reason="python-rtmidi is not installed")
    from sg3rt.live.midi import backend_errors

    try:
        with backend_errors():
            out = mido.Backend("mido.backends.rtmidi", load=True).open_output("sg3rt-test-virtual", virtual=True)
    except Sg3rtError as e:
        pytest.skip(f"no virtual MIDI port here: {e}")
    try:
        midi = MidiControl(session).open_port("sg3rt-test-virtual", backend="mido.backends.rtmidi")
        try:
            out.send(cc(3, 64))  # default map: CC 3 = rotate_speed -90..90, picked up at 0
            out.send(cc(3, 127))
            wait_for(lambda: midi.received >= 2, 10, "two messages through the virtual port")
            assert session.controls.rotate_speed == 90.0
        finally:
            midi.close()
    finally:
        out.close()


# -- the command -------------------------------------------------------------------------------------


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_cli_midi_without_a_usable_port_is_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sg3rt.cli import app

    try:
        ports = midi_input_names()
    except Sg3rtError:
        ports = []
    if ports:
        pytest.skip(f"this machine has MIDI inputs ({ports[0]}): --midi would start serving")
    monkeypatch.chdir(tmp_path)
    line = _one_error_line(CliRunner().invoke(app, ["live", "--port", "0", "--midi"]))
    assert "MIDI" in line  # no backend (install hint), no ALSA sequencer, or no port: one line each
    line = _one_error_line(CliRunner().invoke(app, ["live", "--port", "0", "--midi-port", "nano"]))
    assert "MIDI" in line


@needs_mido
def test_cli_map_errors_and_port_listing(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sg3rt.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text('[[cc]]\nnumber = 1\ncontrol = "volume"\n')
    line = _one_error_line(CliRunner().invoke(app, ["live", "--port", "0", "--midi-map", "bad.toml"]))
    assert line == f'error: bad.toml: cc[0].control: unknown control "volume" (known: {line.split("(known: ")[1]}'
    monkeypatch.setattr(mido, "backend", mido.Backend("midi_loopback", load=True))
    result = CliRunner().invoke(app, ["live", "--midi-ports"])
    assert result.exit_code == 0 and result.output.splitlines() == ["Loopback Fader Box", "Loopback Pads"]


def test_cli_with_midi_serves_and_stops_cleanly_on_ctrl_c(tmp_path):
    """`sg3rt live --midi-port pads` on the loopback backend (MIDO_BACKEND): the port is named at start and
    Ctrl-C closes it with the session, without a traceback."""
    import os

    if mido is None:
        pytest.skip("mido is not installed: pip install 'sg3rt[midi]'")
    tests = str(Path(__file__).resolve().parent)
    env = {"MIDO_BACKEND": "midi_loopback",
           "PYTHONPATH": os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p)}
    with live_command(["--port", "0", "--device", "cpu", "--midi-port", "pads"], tmp_path, env) as (proc, _):
        time.sleep(0.5)
        err = interrupt(proc, WAIT_S)
    assert "MIDI from 'Loopback Pads' (the default map: CC 1 psi; CC 2 speed;" in err
