"""Network files: official pickles (read as data) and sg3rt's native `.safetensors` format.

A native file is one safetensors file: the official state dict under the official names, and in
its metadata the config as JSON ({"format": "sg3rt", "version": 1, "kind": ..., "init_kwargs": ...}).
Loading it needs no pickle at all; `convert` turns a pickle into it once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import NetworkFileError, OutputError, UnsupportedNetworkError
from ..fileio import atomic_write, write_bytes
from ..vocab import KINDS, torch_device
from .configs import check_config
from .generator import Generator, kind_of
from .pickle_reader import NetworkRecord, read_network_pickle

FORMAT_NAME = "sg3rt"  # metadata["format"] of native files
FORMAT_VERSION = 1  # bumped when the metadata layout changes
NATIVE_FILE = "sg3rt .safetensors"  # Generator.file_format of native files

# Official classes that make up the generators we implement; anything else is another architecture.
_STYLEGAN3_CLASSES = {"Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisInput", "SynthesisLayer",
                      "FullyConnectedLayer"}
_STYLEGAN2_CLASSES = {"Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer",
                      "ToRGBLayer", "FullyConnectedLayer", "Conv2dLayer"}


def network_format(path: Path) -> str:
    """'pickle' or 'safetensors' from the first bytes (extensions lie; contents do not)."""
    if not path.exists():
        raise NetworkFileError(f"{path}: no such file")
    if path.is_dir():
        raise NetworkFileError(f"{path}: is a directory, not a network file")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise NetworkFileError(f"{path}: cannot read ({e.strerror})") from None
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"
    if not head:
        raise NetworkFileError(f"{path}: file is empty")
    raise NetworkFileError(f"{path}: not a network pickle or .safetensors file")


def config_from_record(record: NetworkRecord, path: Path) -> tuple[str, dict[str, Any]]:
    """(kind, init_kwargs) of an official generator, refusing architectures we do not implement."""
    classes = set(record.child_classes.values()) | {record.class_name}
    is_stylegan3 = record.child_classes.get("synthesis.input") == "SynthesisInput"
    is_stylegan2 = record.child_classes.get("synthesis.b4") == "SynthesisBlock"
    known = _STYLEGAN3_CLASSES if is_stylegan3 else _STYLEGAN2_CLASSES
    if record.class_name != "Generator" or not (is_stylegan3 or is_stylegan2) or not classes <= known:
        odd = sorted(classes - known) or [record.class_name]
        raise UnsupportedNetworkError(f"{path}: unsupported architecture (classes {', '.join(odd)})")
    return kind_of(record.init_kwargs, is_stylegan3), record.init_kwargs


META_CHECK_WEIGHTS = 400_000_000  # configs that may hold more weights (1.6 GB in fp32) are checked on meta first


def _construct(kind: str, init_kwargs: dict[str, Any], source: str, device: str | None = None) -> Generator:
    """Generator(kind, init_kwargs) (on `device`, e.g. meta: shapes only), any failure of a file's options a
    one-line error naming the file: a crafted config reaches arithmetic and torch calls no check foresees."""
    try:
        with np.errstate(divide="raise", over="raise", invalid="raise"):  # NaN/inf in the filters: an error, not a warning
            if device is None:
                return Generator(kind, init_kwargs)
            with torch.device(device):
                return Generator(kind, init_kwargs)
    except UnsupportedNetworkError as e:
        raise UnsupportedNetworkError(f"{source}: {e}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UnsupportedNetworkError(f"{source}: unsupported network options ({first})") from None


def weight_bound(kind: str, init_kwargs: dict[str, Any]) -> int:
    """A generous upper bound of the weights a (check_config'ed) config builds, from its widths alone: the
    official networks stay under 0.1 G (StyleGAN2 1024: 24 layers of 512 x 512 x 3 x 3)."""
    mapping = init_kwargs.get("mapping_kwargs") or {}
    w = int(init_kwargs.get("w_dim", 512))
    width = max(int(init_kwargs.get("z_dim", 512)) + int(init_kwargs.get("c_dim", 0)), w,
                int(mapping.get("layer_features") or w), int(mapping.get("embed_features") or w))
    channels, kernel = int(init_kwargs.get("channel_max", 512)), int(init_kwargs.get("conv_kernel", 3))
    if kind == "stylegan2":
        layers = 2 * int(init_kwargs.get("img_resolution", 1024)).bit_length() + 2
    else:
        layers = int(init_kwargs.get("num_layers", 14)) + 2
    return (int(mapping.get("num_layers", 8)) + 2) * width * width + layers * (channels * channels * kernel * kernel +
                                                                               (w + 1) * channels)


def build_generator(kind: str, init_kwargs: dict[str, Any], state_dict: dict[str, torch.Tensor], source: str) -> Generator:
    """Our Generator with the given weights; a mismatching state dict is a file error, not a crash.

    The config is checked against limits first. One that could ask for more than META_CHECK_WEIGHTS is
    built on the meta device (shapes, no memory) and compared with the weights before the real network is
    built: memory then follows the weights the file holds, not what its config asks for. (Not for every
    file: the meta build imports torch's compiler stack, 1.5 s more per load.)
    """
    try:
        check_config(kind, init_kwargs)
    except UnsupportedNetworkError as e:
        raise UnsupportedNetworkError(f"{source}: unsupported network options ({e})") from None
    G = _construct(kind, init_kwargs, source) if weight_bound(kind, init_kwargs) <= META_CHECK_WEIGHTS else None
    ours = (G if G is not None else _construct(kind, init_kwargs, source, device="meta")).state_dict()
    missing = sorted(set(ours) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(ours))
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise NetworkFileError(f"{source}: weights do not match the config ({what})")
    for name, tensor in state_dict.items():
        if tuple(tensor.shape) != tuple(ours[name].shape):
            raise NetworkFileError(f"{source}: {name} has shape {list(tensor.shape)}, expected {list(ours[name].shape)}")
        if not tensor.is_floating_point():  # an integer or bool copy would be cast silently into other weights
            dtype = str(tensor.dtype).removeprefix("torch.")
            raise NetworkFileError(f"{source}: {name} has dtype {dtype}, expected a floating-point tensor")
    G = G if G is not None else _construct(kind, init_kwargs, source)
    G.load_state_dict({k: v.to(torch.float32) for k, v in state_dict.items()})  # fp16/bf16 widen exactly, fp64 rounds
    return G.eval().requires_grad_(False)


def _read_safetensors(path: Path) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise NetworkFileError(f"{path}: corrupt .safetensors file ({str(e).splitlines()[0]})") from None
    if metadata.get("format") != FORMAT_NAME:
        raise NetworkFileError(f"{path}: .safetensors file without sg3rt metadata (convert it with `sg3rt convert`)")
    try:
        version = int(metadata.get("version", "0"))
        kind = metadata["kind"]
        init_kwargs = json.loads(metadata["init_kwargs"])
    except (KeyError, ValueError) as e:
        raise NetworkFileError(f"{path}: broken sg3rt metadata ({e})") from None
    if version > FORMAT_VERSION:
        raise NetworkFileError(f"{path}: written by a newer sg3rt (format {version}); upgrade sg3rt")
    if kind not in KINDS or not isinstance(init_kwargs, dict):
        raise NetworkFileError(f"{path}: broken sg3rt metadata (kind {kind!r})")
    return kind, init_kwargs, tensors


def load_generator(path: str | os.PathLike[str], device: str | torch.device = "cpu", key: str | None = None) -> Generator:
    """Load an official pickle (G_ema, or `key`; Gs of a TensorFlow-era pickle) or a native .safetensors file.

    Nothing in the file is executed: pickles go through a restricted unpickler. `device` (auto, cpu,
    cuda, cuda:N) is checked first: an unusable one fails in one line before the file is read.
    """
    device = torch_device(device)
    path = Path(path)
    if network_format(path) == "pickle":
        record = read_network_pickle(path, key=key)
        kind, init_kwargs = config_from_record(record, path)
        G = build_generator(kind, init_kwargs, record.state_dict, str(path))
        G.file_format = record.file_format
    else:
        kind, init_kwargs, tensors = _read_safetensors(path)
        G = build_generator(kind, init_kwargs, tensors, str(path))
        G.file_format = NATIVE_FILE
    return G.to(device)


def save_generator(G: Generator, path: str | os.PathLike[str]) -> Path:
    """Write G as a native .safetensors file (atomically); returns the path."""
    from safetensors import SafetensorError
    from safetensors.torch import save

    path = Path(path)
    G = G.with_canvas(G.img_resolution, G.img_resolution)  # the network itself, not a canvas view of it
    metadata = {
        "format": FORMAT_NAME,
        "version": str(FORMAT_VERSION),
        "kind": G.kind,
        "init_kwargs": json.dumps(G.init_kwargs, sort_keys=True),
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in G.state_dict().items()}
    def write(tmp: Path) -> None:
        try:
            data = save(tensors, metadata=metadata)
        except SafetensorError as e:
            raise OutputError(f"{path}: cannot serialise ({str(e).splitlines()[0]})") from None
        write_bytes(tmp, data)  # our own closed-on-error file: OSError -> OutputError in atomic_write

    atomic_write(path, write)
    return path
