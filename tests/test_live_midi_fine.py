"""MIDI controllers as a VJ expects: soft takeover (a knob picks the value up instead of making it jump when
the page, OSC, a pad or another fader moved it), 14-bit CCs (MSB on CC n, LSB on CC n+32; an MSB alone
still reaches both ends) and pitch bend as a fader, each into a real session (the embedded network), with
the map keys refused in one line naming file, entry and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sg3rt.errors import InputError
from sg3rt.live import LiveSession, MidiControl
from sg3rt.live.controls import NetworkLimits
from sg3rt.live.midimap import (CC_MAX, FINE_MAX, PICKUP_TOLERANCE, Fader, MidiMap, cc_position, fader_value)

mido = pytest.importorskip("mido", reason="mido is not installed: pip install 'sg3rt[midi]'")

SG3 = NetworkLimits(num_ws=16, c_dim=0, is_stylegan3=True)
README = Path(__file__).resolve().parent.parent / "README.md"


def cc(number: int, value: int, channel: int = 0):
    return mido.Message("control_change", control=number, value=value, channel=channel)


def bend(pitch: int, channel: int = 0):
    return mido.Message("pitchwheel", pitch=pitch, channel=channel)


def control(session, entries: list[dict], section: str = "cc") -> MidiControl:
    return MidiControl(session, MidiMap.from_dict({section: entries}, "test map"))


@pytest.fixture(scope="module")
def embedded():
    from sg3rt.runtime import open_generator

    with open_generator(None, device="cpu") as rt:
        yield rt


@pytest.fixture
def session(embedded):
    s = LiveSession(embedded)  # not started: updates only
    yield s
    s.close()


def psi_at(value: int, top: int = CC_MAX, lo: float = 0.0, hi: float = 2.0) -> float:
    """What a psi fader on lo..hi gives for `value` (the mapping itself is tested in test_live_midi.py)."""
    return fader_value(Fader(1, "psi", range=(lo, hi)), value, top=top)


# -- soft takeover ---------------------------------------------------------------------------------


def test_pickup_ignores_a_far_knob_until_it_crosses_then_follows(session):
    midi = control(session, [{"number": 1, "control": "psi", "range": [0, 2]}])  # pickup: the default
    assert session.controls.psi == 1.0
    for value in (10, 20, 40, 60):  # below 1.0 (64): the value stays
        midi.handle(cc(1, value))
        assert session.controls.psi == 1.0, value
    midi.handle(cc(1, 70))  # crossed 1.0 between 60 and 70: the knob has it
    assert session.controls.psi == psi_at(70) != 1.0
    for value in (30, 0, 127, 90):  # from now on it follows, wherever it goes
        midi.handle(cc(1, value))
        assert session.controls.psi == psi_at(value)
    assert not midi.errors and midi.received == 9


def test_the_first_message_takes_over_only_near_the_value(session):
    """No previous position to cross from: only a knob within PICKUP_TOLERANCE of the value takes it."""
    tolerance = PICKUP_TOLERANCE * 2.0
    near, far = 66, 67  # psi 1.03 and 1.05 against 1.0, with a tolerance of 0.047
    assert abs(psi_at(near) - 1.0) <= tolerance < abs(psi_at(far) - 1.0)
    entry = {"number": 1, "control": "psi", "range": [0, 2]}
    control(session, [entry]).handle(cc(1, far))
    assert session.controls.psi == 1.0
    control(session, [entry]).handle(cc(1, near))  # a fresh binding: its first message
    assert session.controls.psi == psi_at(near)


def test_jump_mode_jumps(session):
    midi = control(session, [{"number": 1, "control": "psi", "range": [0, 2], "takeover": "jump"}])
    midi.handle(cc(1, 10))
    assert session.controls.psi == psi_at(10)
    session.update({"psi": 1.5})
    midi.handle(cc(1, 20))
    assert session.controls.psi == psi_at(20)


def test_a_value_moved_elsewhere_rearms_pickup(session):
    """The page or OSC (session.update), a pad and another CC on the same control each make the knob wait."""
    midi = MidiControl(session, MidiMap.from_dict({
        "cc": [{"number": 1, "control": "psi", "range": [0, 2]},
               {"number": 2, "control": "psi", "range": [0, 2], "takeover": "jump"}],
        "note": [{"number": 60, "set": {"psi": 0.25}}]}, "test map"))
    midi.handle(cc(1, 64))  # at the value: taken
    midi.handle(cc(1, 30))
    assert session.controls.psi == psi_at(30)
    session.update({"psi": 1.5})  # what the page's slider or an OSC message does
    for value in (35, 60, 90):  # the knob at 30 moves up, still below 1.5 (value 96 is 1.5)
        midi.handle(cc(1, value))
        assert session.controls.psi == 1.5, value
    midi.handle(cc(1, 110))  # crossed 1.5
    assert session.controls.psi == psi_at(110)
    midi.handle(mido.Message("note_on", note=60, velocity=100))  # a pad sets psi 0.25
    midi.handle(cc(1, 100))
    assert session.controls.psi == 0.25
    midi.handle(cc(1, 5))  # crossed 0.25 (value 16) on the way down
    assert session.controls.psi == psi_at(5)
    midi.handle(cc(2, 120))  # another CC on psi (jump) moves it away from knob 1
    midi.handle(cc(1, 10))
    assert session.controls.psi == psi_at(120)
    assert not midi.errors


def test_default_map_picks_up_and_encoders_and_switches_never_wait(session):
    midi = MidiControl(session)  # the default map: CC 1 = psi 0..2 (pickup, the Fader default)
    midi.handle(cc(1, 0))
    assert session.controls.psi == 1.0
    midi = control(session, [{"number": 3, "control": "rotate", "mode": "relative"},
                             {"number": 4, "control": "stabilize"}, {"number": 5, "control": "walk"}])
    session.update({"rotate": 90.0, "stabilize": False, "walk": "cubic"})
    midi.handle(cc(3, 1))  # one step up from 90, whatever the knob did before
    assert session.controls.rotate == pytest.approx(90.0 + 720.0 / CC_MAX)
    midi.handle(cc(4, 127))
    midi.handle(cc(5, 0))
    assert session.controls.stabilize and session.controls.walk == "off"


def test_an_unset_value_is_taken_at_once(session):
    """cutoff None (truncate every layer) has no position on the fader: the first message sets it."""
    midi = control(session, [{"number": 1, "control": "cutoff"}])
    assert session.controls.cutoff is None
    midi.handle(cc(1, CC_MAX))
    assert session.controls.cutoff == 16


# -- 14-bit CCs and pitch bend ----------------------------------------------------------------------


def test_fine_positions_keep_ends_and_middle_and_follow_the_plain_formula():
    positions = [cc_position(v, FINE_MAX) for v in range(FINE_MAX + 1)]
    assert positions[0] == 0.0 and positions[8192] == 0.5 and positions[FINE_MAX] == 1.0
    assert all(a < b for a, b in zip(positions, positions[1:]))
    worst = max(abs(p - v / FINE_MAX) for v, p in enumerate(positions))
    assert worst <= 0.5 / FINE_MAX + 1e-15  # within half a 14-bit step of (MSB << 7 | LSB) / 16383
    assert [cc_position(v) for v in (0, 64, 127)] == [0.0, 0.5, 1.0]  # 7 bits unchanged


def test_14_bit_cc_is_exact_at_both_ends_and_the_middle(session):
    midi = control(session, [{"number": 1, "control": "psi", "bits": 14, "takeover": "jump"}])  # psi -2..2
    for msb, lsb, psi in ((0, 0, -2.0), (127, 127, 2.0), (64, 0, 0.0)):
        midi.handle(cc(1, msb))
        midi.handle(cc(33, lsb))
        assert session.controls.psi == psi, (msb, lsb)
    midi.handle(cc(33, 1))  # one LSB step above the middle: a 14-bit step, far finer than a 7-bit one
    step = session.controls.psi
    assert step == pytest.approx(4.0 / (2 * 8191)) and 0 < step < psi_at(65, lo=-2, hi=2) / 100
    assert not midi.errors


def test_msb_alone_moves_at_7_bits_and_a_following_lsb_refines(session):
    midi = control(session, [{"number": 7, "control": "psi", "range": [0, 2], "bits": 14, "takeover": "jump",
                              "channel": 2}])
    midi.handle(cc(39, 100, channel=1))  # an LSB before any MSB refines nothing
    assert session.controls.psi == 1.0
    midi.handle(cc(7, 127, channel=1))  # an MSB-only controller still reaches the end
    assert session.controls.psi == 2.0
    midi.handle(cc(7, 100, channel=1))
    assert session.controls.psi == psi_at(100)
    midi.handle(cc(39, 64, channel=1))  # the LSB refines that MSB
    fine = psi_at(100 << 7 | 64, FINE_MAX)
    assert session.controls.psi == fine and abs(fine - psi_at(100)) < 2.0 / CC_MAX
    midi.handle(cc(39, 65, channel=1))  # LSB again, no new MSB (MIDI 1.0: a fine adjustment)
    assert session.controls.psi == psi_at(100 << 7 | 65, FINE_MAX) > fine
    midi.handle(cc(7, 10, channel=0))  # channel 1: not this fader's, and its MSB pairs with nothing here
    midi.handle(cc(39, 0, channel=0))
    assert session.controls.psi == psi_at(100 << 7 | 65, FINE_MAX)
    assert not midi.errors
    anywhere = control(session, [{"number": 7, "control": "psi", "range": [0, 2], "bits": 14, "takeover": "jump"}])
    anywhere.handle(cc(7, 20, channel=0))
    anywhere.handle(cc(39, 64, channel=5))  # an LSB pairs with the MSB of its own channel only
    assert session.controls.psi == psi_at(20)
    anywhere.handle(cc(39, 64, channel=0))
    assert session.controls.psi == psi_at(20 << 7 | 64, FINE_MAX)


def test_14_bit_pickup_crosses_between_msb_and_lsb_messages(session):
    midi = control(session, [{"number": 1, "control": "psi", "range": [0, 2], "bits": 14}])
    session.update({"psi": 1.5})
    for msb, lsb in ((60, 0), (70, 90), (80, 127)):  # 1.5 lies at about MSB 95.5: still below
        midi.handle(cc(1, msb))
        midi.handle(cc(33, lsb))
        assert session.controls.psi == 1.5
    midi.handle(cc(1, 100))  # crossed on the coarse message ...
    assert session.controls.psi == psi_at(100)
    midi.handle(cc(33, 5))  # ... then refined: the fader holds the value it set, so it follows
    assert session.controls.psi == psi_at(100 << 7 | 5, FINE_MAX)


def test_pitch_bend_ends_and_centre(session):
    midi = control(session, [{"control": "rotate_speed", "channel": 3, "takeover": "jump"}], "pitchbend")
    for pitch, speed in ((-8192, -720.0), (8191, 720.0), (0, 0.0), (1, 720.0 / 8191)):
        midi.handle(bend(pitch, channel=2))
        assert session.controls.rotate_speed == pytest.approx(speed, abs=0.0 if pitch != 1 else 1e-12), pitch
    midi.handle(bend(-8192, channel=0))  # another channel's wheel
    assert session.controls.rotate_speed == pytest.approx(720.0 / 8191)
    ranged = control(session, [{"control": "psi", "range": [0.5, 1.5]}], "pitchbend")  # pickup, any channel
    session.update({"psi": 0.6})
    ranged.handle(bend(0))  # the wheel at rest: 1.0, far from 0.6
    assert session.controls.psi == 0.6
    ranged.handle(bend(-8192))  # pulled down past 0.6: taken
    assert session.controls.psi == 0.5
    assert not midi.errors and not ranged.errors
    assert ranged.map.describe() == "test map: pitch bend psi"


def test_describe_and_readme_example(tmp_path):
    import re

    m = MidiMap.from_dict({"cc": [{"number": 1, "control": "psi", "bits": 14}, {"number": 2, "control": "speed"}],
                           "pitchbend": [{"control": "tx"}]}, "m")
    assert m.describe() == "m: CC 1/33 psi; CC 2 speed; pitch bend tx"
    block = re.search(r"```toml\n(# a MIDI map.*?)```", README.read_text(), re.S).group(1)
    (tmp_path / "example.toml").write_text(block)
    faders = MidiMap.load(tmp_path / "example.toml").bind(SG3).faders
    assert {f.bits for f in faders} == {7, 14} and {f.takeover for f in faders} == {"pickup", "jump"}
    assert "pitchbend" in {f.source for f in faders}


# -- bad maps ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("data, match", [
    ({"cc": [{"number": 1, "control": "psi", "bits": 12}]}, "cc[0].bits: must be 7 or 14, got 12"),
    ({"cc": [{"number": 1, "control": "psi", "bits": 14.0}]}, "cc[0].bits: must be 7 or 14, got 14.0"),
    ({"cc": [{"number": 1, "control": "psi", "bits": True}]}, "cc[0].bits: must be 7 or 14, got true"),
    ({"cc": [{"number": 32, "control": "psi", "bits": 14}]}, "cc[0].bits: a 14-bit CC is CC 0..31 (its LSB on "
                                                             "CC n+32), got CC 32"),
    ({"cc": [{"number": 1, "control": "psi", "bits": 14, "mode": "relative"}]}, "cc[0].bits: a relative encoder "
                                                                                "sends 7-bit steps"),
    ({"cc": [{"number": 1, "control": "walk", "bits": 14}]}, "cc[0].bits: walk is a choice: it takes no bits"),
    ({"cc": [{"number": 1, "control": "paused", "takeover": "jump"}]}, "cc[0].takeover: paused is a switch: it "
                                                                       "takes no takeover"),
    ({"cc": [{"number": 1, "control": "psi", "takeover": "soft"}]}, 'cc[0].takeover: must be one of pickup, jump, '
                                                                    'got "soft"'),
    ({"cc": [{"number": 1, "control": "psi", "mode": "relative", "takeover": "pickup"}]},
     "cc[0].takeover: a relative encoder steps from the value as it is: it takes no takeover"),
    ({"cc": [{"number": 1, "action": "next", "takeover": "jump"}]}, "cc[0]: range, curve, mode, bits and takeover "
                                                                    "belong to a fader"),
    ({"cc": [{"number": 1, "control": "psi", "bits": 14}, {"number": 33, "control": "speed", "channel": 4}]},
     "cc[1].number: CC 33 is the LSB of cc[0]'s 14-bit CC 1"),
    ({"cc": [{"number": 1, "control": "psi", "bits": 14, "channel": 2}, {"number": 33, "action": "next"}]},
     "cc[1].number: CC 33 is the LSB of cc[0]'s 14-bit CC 1"),
    ({"pitchbend": [{"number": 1, "control": "psi"}]}, "pitchbend[0].number: a pitch bend has no number (one wheel "
                                                       "per channel"),
    ({"pitchbend": [{"control": "psi", "mode": "relative"}]}, "pitchbend[0].mode: unknown key (known: control, "
                                                              "channel, range, curve, takeover)"),
    ({"pitchbend": [{"control": "psi", "bits": 14}]}, "pitchbend[0].bits: unknown key"),
    ({"pitchbend": [{"channel": 1}]}, "pitchbend[0].control: missing"),
    ({"pitchbend": [{"control": "volume"}]}, 'pitchbend[0].control: unknown control "volume"'),
    ({"pitchbend": [{"control": "psi", "channel": 17}]}, "pitchbend[0].channel: must be an integer 1..16, got 17"),
    ({"pitchbend": [{"control": "psi", "takeover": "catch"}]}, 'pitchbend[0].takeover: must be one of pickup, jump'),
    ({"pitchbend": {"control": "psi"}}, "pitchbend: must be a list of tables"),
])
def test_bad_map_entries_are_one_line_naming_file_entry_and_key(tmp_path, data, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as e:
        MidiMap.load(path)
    line = str(e.value)
    assert line.startswith(f"{path}: ") and match in line and "\n" not in line, line


def test_channels_apart_a_14_bit_lsb_cc_may_be_bound(tmp_path):
    m = MidiMap.from_dict({"cc": [{"number": 1, "control": "psi", "bits": 14, "channel": 1},
                                  {"number": 33, "control": "speed", "channel": 2}]}, "m")
    assert [f.number for f in m.faders] == [1, 33]


def test_pitch_bend_needs_what_the_network_has(tmp_path):
    sg2 = NetworkLimits(num_ws=12, c_dim=0, is_stylegan3=False)
    m = MidiMap.from_dict({"pitchbend": [{"control": "rotate"}]}, "m")
    with pytest.raises(InputError, match=r"^m: pitchbend\[0\]\.control: rotate needs a StyleGAN3 network"):
        m.bind(sg2)
