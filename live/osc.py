"""OSC control (python-osc): every control is an address, `/sg3rt/<control> VALUE`, plus the actions.

    /sg3rt/psi 0.7          /sg3rt/rotate_speed 30        /sg3rt/seeds 1 5 9 (a walk list)
    /sg3rt/stabilize 1      /sg3rt/class 3                /sg3rt/mix_seed -1 (a negative number clears it)
    /sg3rt/random           /sg3rt/next  /sg3rt/prev      /sg3rt/record   /sg3rt/stop

Controllers send floats for everything (TouchDesigner, Resolume, MIDI bridges), so an integral float
is taken for an integer and 0/1 for a switch; the values then pass the same validation as a page's.
OSC over UDP has no reply: a refused message is counted and kept in `errors` (the last few).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from ..errors import BackendUnavailableError, InputError, Sg3rtError
from .controls import coerce_osc
from .protocol import ACTIONS
from .session import LiveSession

PREFIX = "/sg3rt/"
ERRORS_KEPT = 20  # last refused OSC messages kept for inspection


def import_osc():
    try:
        from pythonosc import dispatcher, osc_server
    except ImportError:
        raise BackendUnavailableError("OSC control needs python-osc: pip install 'sg3rt[live]'") from None
    return dispatcher, osc_server


class OscControl:
    """A UDP OSC server on its own thread that turns messages into session updates and actions."""

    def __init__(self, session: LiveSession, host: str = "127.0.0.1", port: int = 9000):
        dispatcher_mod, osc_server = import_osc()
        if not 0 <= port <= 65535:
            raise InputError(f"--osc-port must be between 0 and 65535, got {port}")
        self.session = session
        self.errors: deque[str] = deque(maxlen=ERRORS_KEPT)
        self.received = 0  # messages handled (applied or refused)
        d = dispatcher_mod.Dispatcher()
        d.set_default_handler(self.handle)
        try:
            self.server = osc_server.ThreadingOSCUDPServer((host, port), d)
        except OSError as e:
            raise InputError(f"cannot listen for OSC on {host}:{port}: {e.strerror}") from None
        self.port = self.server.server_address[1]
        self._thread: threading.Thread | None = None

    def handle(self, address: str, *args: Any) -> None:
        """One OSC message -> update or action; a bad one changes nothing and is recorded in `errors`."""
        try:
            if not address.startswith(PREFIX):
                raise InputError(f"unknown OSC address {address!r} (use {PREFIX}<control>)")
            key = address[len(PREFIX):]
            if key in ACTIONS:
                if key in ("record", "stop") and args and not args[0]:  # a toggle's 0 means stop
                    key = "stop" if key == "record" else key
                self.session.action(key)
            elif key == "record_toggle":
                self.session.action("record" if self.session.recording is None else "stop")
            else:
                if not args:
                    raise InputError(f"{address} needs a value")
                self.session.update({key: coerce_osc(key, args)})
        except Sg3rtError as e:
            self.errors.append(f"{address}: {e}")
        finally:
            self.received += 1

    def start(self) -> "OscControl":
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="sg3rt-live-osc", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()
