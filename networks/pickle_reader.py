"""Official StyleGAN network pickles (NVlabs stylegan3, stylegan2-ada-pytorch) read as plain data.

TensorFlow-era pickles (NVlabs stylegan2, stylegan2-ada TF) pass through the same allow-list; their
variables are mapped onto the official PyTorch names in tf_pickle.py.

The official files are pickles whose modules rebuild themselves by exec'ing Python source stored in
the file (`torch_utils.persistence`). We never run that source, nor any other code named by the
file: a restricted unpickler maps the few globals an official pickle needs onto small functions of
ours and refuses every other global before it is imported. What comes out is the generator's class
name, its constructor kwargs and its state dict under the official names.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import NetworkFileError, UnsafePickleError
from .pickle_records import PYTORCH_PICKLE, NetworkRecord, TFNetworkState, one_line as _one_line, plain as _plain
from .tf_pickle import tf_generator_record

try:  # numpy >= 2 moved the pickle helpers to numpy._core; numpy 1 files name numpy.core.
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - numpy 1
    from numpy.core import multiarray as _np_multiarray  # type: ignore[no-redef]

__all__ = ["NetworkRecord", "PYTORCH_PICKLE", "TFNetworkState", "read_network_pickle"]

_GENERATOR_KEYS = ("G_ema", "G")  # preferred first: G_ema holds the averaged weights used for inference


# ---------------------------------------------------------------------------------------------------
# What the pickle stream may build. Every callable here accepts untrusted arguments.


class _Refused(Exception):
    """Content that would be unsafe to load; reported as UnsafePickleError at the file boundary."""


@dataclass(frozen=True, slots=True)
class _PersistentRecord:
    """Stands in for an official persistent module: its class name and `__dict__`, nothing run.

    Slots and frozen make a BUILD opcode aimed at a record fail instead of changing it.
    """

    class_name: str
    state: dict


def _reconstruct_persistent_obj(meta: Any) -> _PersistentRecord:
    """Replaces `torch_utils.persistence._reconstruct_persistent_obj`, which execs `module_src`."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        kind = meta.get("type") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"persistent object of type {kind!r}, expected 'class'")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise ValueError("persistent object without a class name or state")
    return _PersistentRecord(class_name, state)


def _load_storage_bytes(data: Any) -> torch.storage.TypedStorage:
    """Replaces `torch.storage._load_from_bytes`, which calls torch.load with weights_only=False."""
    if not isinstance(data, bytes):
        raise ValueError("tensor storage payload is not bytes")
    try:
        storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise _Refused(f"tensor storage payload: {_torch_refusal(exc)}") from exc
    if not isinstance(storage, torch.storage.TypedStorage):
        raise ValueError(f"tensor storage payload holds {type(storage).__name__}, not a storage")
    return storage


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_ignored: Any) -> torch.Tensor:
    """Replaces `torch._utils._rebuild_tensor(_v2)`; hooks and metadata are dropped on purpose."""
    if not isinstance(storage, torch.storage.TypedStorage):
        raise ValueError("tensor rebuilt from something that is not a storage")
    empty = torch.empty((0,), dtype=storage.dtype)
    untyped = storage._untyped_storage  # what torch's own rebuild uses; .untyped() warns deprecated
    return empty.set_(untyped, offset, size, stride)  # set_ checks the bounds


def _rebuild_parameter(data: Any, *_ignored: Any) -> torch.Tensor:
    """Replaces `torch._utils._rebuild_parameter`: a plain tensor is all we need."""
    if not isinstance(data, torch.Tensor):
        raise ValueError("parameter rebuilt from something that is not a tensor")
    return data


def _numpy_dtype(spec: Any, *args: Any) -> np.dtype:
    """Replaces `numpy.dtype`, refusing object dtypes so no object array can be smuggled in."""
    if not isinstance(spec, str):
        raise ValueError(f"numpy dtype from {type(spec).__name__}, expected a type code")
    dtype = np.dtype(spec, *args)
    if dtype.hasobject:
        raise _Refused(f"numpy object dtype {spec!r}")
    return dtype


def _numpy_scalar(dtype: Any, *args: Any) -> Any:
    """Replaces `numpy.core.multiarray.scalar` for the dtypes `_numpy_dtype` lets through."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise ValueError("numpy scalar without a plain dtype")
    return _np_multiarray.scalar(dtype, *args)


_NDARRAY = object()  # what `numpy.ndarray` resolves to: usable only as `_reconstruct`'s subtype


def _numpy_reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    """Replaces `numpy.core.multiarray._reconstruct`; the array's contents arrive by BUILD later."""
    if subtype is not _NDARRAY:
        raise ValueError("numpy array of a type other than ndarray")
    return _np_multiarray._reconstruct(np.ndarray, shape, dtype_code)


_ALLOWED: dict[str, Any] = {
    "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
    "torch.storage._load_from_bytes": _load_storage_bytes,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch.Size": torch.Size,
    "collections.OrderedDict": collections.OrderedDict,
    "dnnlib.util.EasyDict": dict,  # created by NEWOBJ + SETITEMS: a dict without attribute access
    "dnnlib.EasyDict": dict,
    "dnnlib.tflib.network.Network": TFNetworkState,  # TF-era pickles: NEWOBJ + BUILD, see TFNetworkState
    "numpy.dtype": _numpy_dtype,
    "numpy.ndarray": _NDARRAY,
    "numpy._core.multiarray.scalar": _numpy_scalar,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray._reconstruct": _numpy_reconstruct,
    "numpy.core.multiarray._reconstruct": _numpy_reconstruct,
}


def _allowed_global(module: str, name: str) -> Any:
    """The stand-in for one global, or _Refused; never imports anything the file names."""
    qualified = f"{module}.{name}"
    if qualified in _ALLOWED:
        return _ALLOWED[qualified]
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)  # dtypes such as torch.float16: values, not callables
    raise _Refused(f"global {qualified} is not on the allow-list")


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals only through the allow-list and has no persistent ids."""

    def find_class(self, module: str, name: str) -> Any:
        return _allowed_global(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not used by network pickles")


# ---------------------------------------------------------------------------------------------------
# The file boundary: every failure becomes one line that names the file.


def _torch_refusal(exc: BaseException) -> str:
    """The line of torch's many-line weights-only refusal that names the global it refused."""
    for line in str(exc).splitlines():
        if "GLOBAL" in line:
            detail = line.split("error:", 1)[-1].strip()
            return detail.split(". ", 1)[0][:200]
    return "refused by torch's weights-only loader"


def _open_checked(path: Path) -> io.BufferedReader:
    """Opens the file for reading, or says in one line why it cannot be read."""
    if not path.exists():
        raise NetworkFileError(f"{path}: no such file")
    if path.is_dir():
        raise NetworkFileError(f"{path}: is a directory, not a network file")
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise NetworkFileError(f"{path}: cannot be read ({_one_line(exc)})") from exc
    if os.fstat(handle.fileno()).st_size == 0:
        handle.close()
        raise NetworkFileError(f"{path}: is empty")
    return handle


def _unpickle(path: Path) -> Any:
    """The file's top object, built only from allow-listed globals."""
    with _open_checked(path) as handle:
        try:
            return _RestrictedUnpickler(handle).load()
        except _Refused as exc:
            raise UnsafePickleError(f"{path}: unsafe pickle refused, nothing was run: {exc}") from exc
        except Exception as exc:  # any failure inside the stream means a corrupt or foreign file
            raise NetworkFileError(
                f"{path}: not a network pickle, or truncated or corrupt ({_one_line(exc)})"
            ) from exc


# ---------------------------------------------------------------------------------------------------
# From the record tree to plain data.


def _pick_generator(top: Any, key: str | None, path: Path) -> _PersistentRecord:
    """G_ema (else G) by default, or exactly the network the caller named."""
    if not isinstance(top, dict):
        raise NetworkFileError(f"no generator (G_ema or G) in {path}")
    if key is None:
        key = next((k for k in _GENERATOR_KEYS if k in top), None)
        if key is None:
            raise NetworkFileError(f"no generator (G_ema or G) in {path}")
    elif key not in top:
        held = ", ".join(sorted(str(k) for k in top))
        raise NetworkFileError(f"no network {key!r} in {path} (it holds: {held})")
    record = top[key]
    if not isinstance(record, _PersistentRecord):
        raise NetworkFileError(f"{path}: {key!r} is {type(record).__name__}, not an official network")
    return record


def _init_kwargs(record: _PersistentRecord, path: Path) -> dict:
    """The top module's constructor kwargs; official networks take no positional arguments."""
    kwargs = record.state.get("_init_kwargs")
    if not isinstance(kwargs, dict):
        raise NetworkFileError(f"{path}: {record.class_name} has no _init_kwargs")
    if record.state.get("_init_args"):
        raise NetworkFileError(f"{path}: {record.class_name} was built with positional arguments")
    return _plain(kwargs)


def _named(state: dict, slot: str, path: Path) -> dict:
    """One of a module's name -> value tables (`_parameters`, `_buffers`, `_modules`)."""
    table = state.get(slot, {})
    if not isinstance(table, dict):
        raise NetworkFileError(f"{path}: module {slot} is {type(table).__name__}, not a dict")
    return table


def _as_weight(value: Any, name: str, path: Path) -> torch.Tensor:
    """A loaded tensor as an independent CPU tensor, keeping its dtype."""
    if not isinstance(value, torch.Tensor):
        raise NetworkFileError(f"{path}: {name} is {type(value).__name__}, not a tensor")
    return value.detach().to("cpu").contiguous()


def _walk(
    record: _PersistentRecord,
    prefix: str,
    path: Path,
    tensors: dict[str, torch.Tensor],
    classes: dict[str, str],
) -> None:
    """Collects tensors and class names under `prefix`, in the order torch's state_dict uses."""
    state = record.state
    non_persistent = state.get("_non_persistent_buffers_set", set())
    for name, value in _named(state, "_parameters", path).items():
        if value is not None:
            tensors[prefix + name] = _as_weight(value, prefix + name, path)
    for name, value in _named(state, "_buffers", path).items():
        if value is not None and name not in non_persistent:
            tensors[prefix + name] = _as_weight(value, prefix + name, path)
    for name, child in _named(state, "_modules", path).items():
        if child is None:
            continue
        if not isinstance(child, _PersistentRecord):
            raise NetworkFileError(f"{path}: module {prefix + name} is not an official network module")
        classes[prefix + name] = child.class_name
        _walk(child, f"{prefix}{name}.", path, tensors, classes)


def read_network_pickle(path: str | os.PathLike[str], key: str | None = None) -> NetworkRecord:
    """Reads one network from an official pickle without running code from the file.

    `key=None` takes "G_ema" (else "G"), or "Gs" of a TensorFlow-era (G, D, Gs) pickle; any other key
    must be present in the file.
    """
    path = Path(path)
    top = _unpickle(path)
    if isinstance(top, TFNetworkState) or isinstance(top, tuple) and any(isinstance(n, TFNetworkState) for n in top):
        return tf_generator_record(top, key, path)
    record = _pick_generator(top, key, path)
    init_kwargs = _init_kwargs(record, path)
    tensors: dict[str, torch.Tensor] = {}
    classes: dict[str, str] = {}
    _walk(record, "", path, tensors, classes)
    return NetworkRecord(record.class_name, init_kwargs, tensors, classes)
