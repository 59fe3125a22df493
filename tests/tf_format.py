"""TensorFlow-era pickles made in tests, without TensorFlow: a (G, D, Gs) tuple of `dnnlib.tflib.network.Network`.

A network is a plain state dict here ({"version", "name", "static_kwargs", "components",
"build_module_src", "build_func_name", "variables"}, components holding state dicts in turn).
`tf_pickle_bytes` pickles states the way tflib did: NEWOBJ of the Network class, then BUILD with the
state. `reference_states` reads the reference pickle with a loader of its own (our file, numpy only).
"""

from __future__ import annotations

import copy
import copyreg
import functools
import pickle
import sys
import types
from pathlib import Path
from typing import Any

NETWORK_MODULE = "dnnlib.tflib.network"


class _LoadedNetwork:
    """What the test loader builds for a Network: just its state."""

    def __setstate__(self, state: dict) -> None:
        self.state = state


class _TrustedLoader(pickle.Unpickler):
    """Loads the reference file (ours, trusted) with numpy and a stand-in Network, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == (NETWORK_MODULE, "Network"):
            return _LoadedNetwork
        if module.split(".")[0] == "numpy":
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name}")


def _plain_state(net: _LoadedNetwork) -> dict:
    state = dict(net.state)
    state["components"] = {k: _plain_state(v) for k, v in state["components"].items()}
    return state


@functools.lru_cache(maxsize=None)
def _reference_states(path: str) -> tuple[dict, ...]:
    with open(path, "rb") as f:
        top = _TrustedLoader(f).load()
    return tuple(_plain_state(net) for net in top)


def reference_states(path: Path) -> list[dict]:
    """[G, D, Gs] of a TF-format reference pickle as plain state dicts (a fresh deep copy each call)."""
    return copy.deepcopy(list(_reference_states(str(path))))


def variable(state: dict, name: str) -> Any:
    """The value of variable "component/.../name" of a network state."""
    head, _, rest = name.partition("/")
    if rest and head in state["components"]:
        return variable(state["components"][head], rest)
    return dict(state["variables"])[name]


def set_variable(state: dict, name: str, value: Any) -> None:
    """Replace (or add) variable "component/.../name" of a network state."""
    head, _, rest = name.partition("/")
    if rest and head in state["components"]:
        set_variable(state["components"][head], rest, value)
        return
    pairs = [(k, v) for k, v in state["variables"] if k != name]
    state["variables"] = pairs + [(name, value)]


def drop_variable(state: dict, name: str) -> None:
    head, _, rest = name.partition("/")
    if rest and head in state["components"]:
        drop_variable(state["components"][head], rest)
        return
    state["variables"] = [(k, v) for k, v in state["variables"] if k != name]


def all_networks(state: dict):
    """A network state and every component state below it."""
    yield state
    for comp in state["components"].values():
        yield from all_networks(comp)


def _network_class() -> type:
    """A class that pickles under the name dnnlib.tflib.network.Network (its module is registered)."""

    class Network:
        def __init__(self, state: dict) -> None:
            self.state = state

        def __reduce_ex__(self, protocol: int) -> tuple:
            return copyreg.__newobj__, (type(self),), self.state

    Network.__module__ = NETWORK_MODULE
    Network.__qualname__ = "Network"
    return Network


def tf_pickle_bytes(top: Any, monkeypatch) -> bytes:
    """Pickle `top` (a tuple/list of state dicts, or any object holding them) as a TF-era file would be.

    State dicts are recognised by their "build_func_name" key; everything else pickles as itself.
    """
    cls = _network_class()
    for name in ("dnnlib", "dnnlib.tflib", NETWORK_MODULE):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules[NETWORK_MODULE].Network = cls  # type: ignore[attr-defined]

    def wrap(value: Any) -> Any:
        if isinstance(value, dict) and "build_func_name" in value:
            state = dict(value)
            state["components"] = {k: wrap(v) for k, v in state["components"].items()}
            return cls(state)
        if isinstance(value, (list, tuple)):
            return type(value)(wrap(v) for v in value)
        return value

    return pickle.dumps(tuple(wrap(top)) if isinstance(top, list) else wrap(top), protocol=4)
