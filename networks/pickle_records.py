"""What the restricted unpickler produces and its readers share: the network record, the data-only
stand-in of TensorFlow-era networks, and two small helpers (below pickle_reader.py and tf_pickle.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PYTORCH_PICKLE = "official PyTorch pickle"  # NetworkRecord.file_format of stylegan3 / stylegan2-ada-pytorch files


@dataclass(frozen=True)
class NetworkRecord:
    """One official network as data: enough to build our module and load its weights."""

    class_name: str  # official class name of the top module, e.g. "Generator"
    init_kwargs: dict  # the module's constructor kwargs, plain dicts all the way down
    state_dict: dict[str, torch.Tensor]  # official names, e.g. "mapping.w_avg"
    child_classes: dict[str, str]  # module path -> official class name, e.g. "synthesis.input"
    file_format: str = PYTORCH_PICKLE  # what the file was, in words (shown by `sg3rt info`)


class TFNetworkState:
    """Stands in for `dnnlib.tflib.network.Network` of TensorFlow-era pickles: data only, nothing run.

    The stream creates it empty (NEWOBJ) and fills it once by BUILD with the network's state dict;
    the state's `build_module_src` stays an unread string. Slots make any other attribute fail.
    """

    __slots__ = ("state",)

    def __setstate__(self, state: Any) -> None:
        if hasattr(self, "state"):
            raise ValueError("TensorFlow network state set twice")
        if not isinstance(state, dict):
            raise ValueError(f"TensorFlow network state is {type(state).__name__}, not a dict")
        object.__setattr__(self, "state", state)


def one_line(exc: BaseException) -> str:
    """The exception's type and the first line of its message, short enough for a CLI error."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def plain(value: Any) -> Any:
    """Kwargs as plain Python: dict subclasses to dict, numpy scalars to numbers, recursively."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value
