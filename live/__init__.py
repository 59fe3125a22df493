"""The real-time session: controls as immutable snapshots, a self-paced render loop over a runtime, the frame
stream, the web server with its static page, OSC and MIDI. Takes a runtime object; never decides how a network runs.

    with LiveSession(open_generator(None)) as session:   # no web part needed
        session.update({"psi": 0.7, "rotate_speed": 30})
        frame = session.stream.wait_next(0)             # Frame(seq, version, jpeg, rgb [H, W, 3])
"""

from .controls import ControlError, Controls, NetworkLimits, SCHEMA, apply, initial_controls
from .scene import Clocks, LiveScene
from .session import Frame, FrameStream, LiveSession, Stats
from .midi import MidiControl
from .midimap import MidiMap
from .run import run_live

__all__ = ["Clocks", "ControlError", "Controls", "Frame", "FrameStream", "LiveScene", "LiveSession", "MidiControl",
           "MidiMap", "NetworkLimits", "SCHEMA", "Stats", "apply", "initial_controls", "run_live"]
