"""A mido backend for tests: in-process loopback ports, what a virtual ALSA port gives without a sound system.

    mido.Backend("midi_loopback").open_output("Loopback Pads").send(msg)   # reaches every open input of that name

An input delivers its messages to the callback on a thread of its own, as python-rtmidi delivers a
hardware port's; closing it stops that thread and deregisters the port.
"""

from __future__ import annotations

import queue
import threading

from mido.ports import BaseInput, BaseOutput

PORTS = ["Loopback Fader Box", "Loopback Pads"]  # the names this backend reports (tests may change the list)
_open_inputs: dict[str, list["Input"]] = {}
_registry_lock = threading.Lock()


def get_devices(**kwargs) -> list[dict]:
    return [{"name": name, "is_input": True, "is_output": True} for name in PORTS]


class Input(BaseInput):
    def _open(self, callback=None, virtual=False, **kwargs):
        if self.name not in PORTS:
            raise OSError(f"unknown MIDI port {self.name!r}")
        self.callback = callback
        self._inbox: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._deliver, name="loopback-midi-in", daemon=True)
        self._thread.start()
        with _registry_lock:
            _open_inputs.setdefault(self.name, []).append(self)

    def _deliver(self) -> None:
        while (msg := self._inbox.get()) is not None:
            if self.callback is not None:
                self.callback(msg)
            else:
                self._messages.append(msg)

    def _close(self) -> None:
        with _registry_lock:
            _open_inputs[self.name].remove(self)
        self._inbox.put(None)
        self._thread.join()


class Output(BaseOutput):
    def _open(self, **kwargs):
        if self.name not in PORTS:
            raise OSError(f"unknown MIDI port {self.name!r}")

    def _send(self, msg) -> None:
        with _registry_lock:
            targets = list(_open_inputs.get(self.name, []))
        for port in targets:
            port._inbox.put(msg.copy())
