"""TensorFlow-era StyleGAN2 pickles (NVlabs stylegan2, stylegan2-ada TF) as an official PyTorch record.

Such a file is a pickled tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects. Each network's
state is a dict: version, name, static_kwargs (the build function's keyword arguments), components
(sub-networks, e.g. Gs's mapping and synthesis), build_module_src (the TensorFlow source that built
it), build_func_name and variables (a list of (name, numpy array) pairs). The restricted unpickler
turns each network into a `TFNetworkState`; the source is never compiled or run. This module reads
Gs (the moving average of G's weights, the one meant for inference) and maps its variables onto the
names and layouts of the official PyTorch StyleGAN2 generator, the network NVIDIA's own conversion
(stylegan2-ada-pytorch `legacy.py`) produces from it, so everything downstream treats it as that.

Layout facts of the TensorFlow graph:
- dense weights are [in, out]; convolution weights are [kh, kw, in, out]; the upsampling convs
  (`Conv0_up`) ran as transposed convolutions, so their kernels are also flipped spatially;
- the style affine adds 1 after its bias (`mod_bias`), so the PyTorch bias is `mod_bias + 1`;
- per-layer noise is `synthesis/noise{i}` [1, 1, R, R] in layer order; strengths are numpy scalars;
- channels at resolution R are min(fmap_base / (R / 2), fmap_max), i.e. channel_base = 2 * fmap_base.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import NetworkFileError, UnsupportedNetworkError
from .pickle_records import NetworkRecord, TFNetworkState, one_line as _one_line, plain as _plain
from .stylegan2 import setup_filter

__all__ = ["TF_PICKLE", "tf_generator_record"]

TF_PICKLE = "TensorFlow-era StyleGAN2 pickle"  # NetworkRecord.file_format of these files
STATE_VERSIONS = (4, 5)  # tflib Network state versions: 4 = NVlabs stylegan2, 5 = stylegan2-ada TF
TOP_NAMES = ("G", "D", "Gs")  # the pickled tuple, in order
DEFAULT_KEY = "Gs"  # the weights' moving average: what the official tools generate with
_STATE_KEYS = ("version", "name", "static_kwargs", "components", "build_module_src", "build_func_name", "variables")
_MAX_DEPTH = 4  # Gs -> mapping/synthesis is depth 1; anything much deeper is not a generator

# Build functions of the generator we implement: Gs itself, then its two components. stylegan2 calls
# its synthesis G_synthesis_stylegan2, stylegan2-ada TF calls it G_synthesis.
_MAIN_FUNCS = ("G_main",)
_COMPONENT_FUNCS = {"mapping": ("G_mapping",), "synthesis": ("G_synthesis_stylegan2", "G_synthesis")}
_STYLEGAN1_FUNCS = ("G_style",)  # StyleGAN1's generator: another architecture

# static_kwargs NVIDIA's conversion ignores: they choose nothing about the trained weights.
_IGNORED_KWARGS = ("truncation_psi", "truncation_cutoff", "style_mixing_prob", "structure", "conditioning",
                   "fused_modconv")
_ARCHITECTURES = ("skip", "orig")  # 'resnet' generators are not implemented


# ---------------------------------------------------------------------------------------------------
# The network tree: versions, build functions and variables, checked before anything is converted.


def _state(net: Any, where: str, path: Path) -> dict:
    """A network's state dict, with every key the format promises."""
    if not isinstance(net, TFNetworkState) or not hasattr(net, "state"):
        raise NetworkFileError(f"{path}: {where} is not a TensorFlow network")
    missing = [key for key in _STATE_KEYS if key not in net.state]
    if missing:
        raise NetworkFileError(f"{path}: TensorFlow network {where} lacks {missing[0]!r}")
    state = net.state
    kwargs, components = state["static_kwargs"], state["components"]
    if not (isinstance(kwargs, dict) and isinstance(components, dict)
            and all(isinstance(k, str) for k in [*kwargs, *components])):
        raise NetworkFileError(f"{path}: TensorFlow network {where} has malformed kwargs or components")
    if not isinstance(state["variables"], (list, tuple)):
        raise NetworkFileError(f"{path}: TensorFlow network {where} has malformed variables")
    version, func = state["version"], state["build_func_name"]
    if isinstance(version, bool) or not isinstance(version, int) or not isinstance(func, str):
        raise NetworkFileError(f"{path}: TensorFlow network {where} has a malformed version or build function")
    return state


def _check_function(state: dict, where: str, allowed: tuple[str, ...], path: Path) -> None:
    """The build function must be one whose graph we re-implement; its source is never looked at."""
    func = state["build_func_name"]
    if func in _STYLEGAN1_FUNCS:
        raise UnsupportedNetworkError(f"{path}: StyleGAN1 generator (build function {func}) is not supported")
    if func not in allowed:
        raise UnsupportedNetworkError(f"{path}: unsupported TensorFlow build function {func!r} for {where} "
                                      f"(expected {' or '.join(allowed)})")
    version = state["version"]
    if version not in STATE_VERSIONS:
        raise UnsupportedNetworkError(f"{path}: TensorFlow network version {version!r} is not supported "
                                      f"(versions {' and '.join(map(str, STATE_VERSIONS))} are)")


def _collect_variables(net: Any, prefix: str, path: Path, out: dict[str, np.ndarray], depth: int = 0) -> None:
    """Every variable of `net` and its components as "component/.../name" -> float32 array."""
    where = prefix.rstrip("/") or "the generator"
    if depth > _MAX_DEPTH:
        raise NetworkFileError(f"{path}: TensorFlow network {where} nests too deeply")
    state = _state(net, where, path)
    for item in state["variables"]:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise NetworkFileError(f"{path}: TensorFlow network {where} has a malformed variable entry")
        name, value = item
        if not isinstance(value, (np.ndarray, np.generic)) or value.dtype.kind != "f":
            raise NetworkFileError(f"{path}: TensorFlow variable {prefix}{name} is not a float array")
        out[prefix + name] = np.asarray(value, dtype=np.float32)
    for comp_name, comp in state["components"].items():
        _collect_variables(comp, f"{prefix}{comp_name}/", path, out, depth + 1)


def _check_tree(net: Any, name: str, path: Path) -> dict:
    """The generator's state, after checking it and its mapping/synthesis components are what we implement."""
    state = _state(net, name, path)
    _check_function(state, name, _MAIN_FUNCS, path)
    for comp_name, funcs in _COMPONENT_FUNCS.items():
        comp = state["components"].get(comp_name)
        if comp is None:
            raise NetworkFileError(f"{path}: TensorFlow network {name} has no {comp_name} component")
        _check_function(_state(comp, comp_name, path), comp_name, funcs, path)
    return state


# ---------------------------------------------------------------------------------------------------
# static_kwargs -> the official PyTorch generator's init kwargs (the names legacy.py gives them).


def _shown(value: Any) -> str:
    """A kwarg value for a one-line message: its repr on one line, cut short."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class _Kwargs:
    """Reads static_kwargs with defaults, remembering which names it was asked about."""

    given: dict
    path: Path
    asked: set

    def get(self, name: str, default: Any = None, none: Any = None) -> Any:
        """The value of `name` (absent -> default; an explicit None -> `none`)."""
        self.asked.add(name)
        value = self.given.get(name, default)
        return none if value is None else value

    def count(self, name: str, default: int, minimum: int = 0) -> int:
        """An integer kwarg (sizes, channel counts), refusing anything else in one line."""
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise UnsupportedNetworkError(f"{self.path}: TensorFlow kwarg {name}={_shown(value)} is not supported "
                                          f"(expected an integer >= {minimum})")
        return value

    def number(self, name: str, default: float | None, none: float | None = None) -> float | None:
        """A real-valued kwarg (multipliers, clamps); None where the format allows it (no clamp)."""
        value = self.get(name, default, none)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UnsupportedNetworkError(f"{self.path}: TensorFlow kwarg {name}={_shown(value)} is not supported "
                                          "(expected a number)")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise UnsupportedNetworkError(f"{self.path}: TensorFlow kwarg {name}={_shown(value)} is not supported "
                                          "(expected True or False)")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.get(name, default)
        if not isinstance(value, str) or value not in allowed:
            raise UnsupportedNetworkError(f"{self.path}: TensorFlow kwarg {name}={_shown(value)} is not supported "
                                          f"(sg3rt runs {', '.join(map(repr, allowed))})")
        return value


def _init_kwargs(static_kwargs: dict, path: Path) -> dict[str, Any]:
    """The official PyTorch StyleGAN2 Generator kwargs of a Gs; any kwarg we cannot honour is an error."""
    kw = _Kwargs(_plain(static_kwargs), path, set())
    resolution = kw.count("resolution", 1024, minimum=4)
    if resolution & (resolution - 1):
        raise UnsupportedNetworkError(f"{path}: TensorFlow kwarg resolution={resolution} is not supported "
                                      "(a power of two)")
    resample = kw.get("resample_kernel", [1, 3, 3, 1])
    if not (isinstance(resample, (list, tuple)) and resample
            and all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in resample)):
        raise UnsupportedNetworkError(f"{path}: TensorFlow kwarg resample_kernel={_shown(resample)} is not supported")
    mapping_fmaps = kw.get("mapping_fmaps")
    label_fmaps = kw.get("label_fmaps")
    for name, value in (("mapping_fmaps", mapping_fmaps), ("label_fmaps", label_fmaps)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UnsupportedNetworkError(f"{path}: TensorFlow kwarg {name}={_shown(value)} is not supported")
    init_kwargs = {
        "z_dim": kw.count("latent_size", 512),
        "c_dim": kw.count("label_size", 0),
        "w_dim": kw.count("dlatent_size", 512, minimum=1),
        "img_resolution": resolution,
        "img_channels": kw.count("num_channels", 3, minimum=1),
        "channel_base": kw.count("fmap_base", 16384, minimum=1) * 2,  # TF halves it per stage from 4x4
        "channel_max": kw.count("fmap_max", 512, minimum=1),
        "num_fp16_res": kw.count("num_fp16_res", 0),
        "conv_clamp": kw.number("conv_clamp", None),
        "architecture": kw.choice("architecture", "skip", _ARCHITECTURES),
        "resample_filter": list(resample),
        "use_noise": kw.flag("use_noise", True),
        "activation": kw.choice("nonlinearity", "lrelu", ("lrelu",)),
        "mapping_kwargs": {
            "num_layers": kw.count("mapping_layers", 8, minimum=1),
            "embed_features": label_fmaps,
            "layer_features": mapping_fmaps,
            "activation": kw.choice("mapping_nonlinearity", "lrelu", ("lrelu",)),
            "lr_multiplier": kw.number("mapping_lrmul", 0.01),
            "w_avg_beta": kw.number("w_avg_beta", 0.995, none=1),
        },
    }
    if init_kwargs["z_dim"] + init_kwargs["c_dim"] == 0:
        raise UnsupportedNetworkError(f"{path}: TensorFlow kwargs latent_size and label_size are both 0")
    for name in _IGNORED_KWARGS:
        kw.get(name)
    unknown = sorted(set(kw.given) - kw.asked)
    if unknown:
        raise UnsupportedNetworkError(f"{path}: unsupported TensorFlow kwarg {unknown[0]!r}")
    return init_kwargs


# ---------------------------------------------------------------------------------------------------
# Variables -> the official state dict: one table row per PyTorch tensor.


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _dense(a: np.ndarray) -> np.ndarray:  # [in, out] -> [out, in]
    return a.T


def _conv(a: np.ndarray) -> np.ndarray:  # [kh, kw, in, out] -> [out, in, kh, kw]
    return a.transpose(3, 2, 0, 1)


def _up_conv(a: np.ndarray) -> np.ndarray:  # transposed-conv kernel: also flipped in both spatial axes
    return a[::-1, ::-1].transpose(3, 2, 0, 1)


def _style_bias(a: np.ndarray) -> np.ndarray:  # TF adds the 1 after the bias; PyTorch keeps it in the bias
    return a + np.float32(1)


def _const(a: np.ndarray) -> np.ndarray:  # [1, C, 4, 4] -> [C, 4, 4]
    return a[0]


def _noise(a: np.ndarray) -> np.ndarray:  # [1, 1, R, R] -> [R, R]
    return a[0, 0]


@dataclass(frozen=True)
class _Source:
    """Where one official tensor comes from: a TF variable of a known shape, and how to re-lay it."""

    tf_name: str  # e.g. "synthesis/8x8/Conv0_up/weight"
    tf_shape: tuple[int, ...]  # the shape the kwargs imply
    convert: Callable[[np.ndarray], np.ndarray]


def _layer_sources(out: dict[str, _Source], name: str, scope: str, w_dim: int, cin: int, cout: int,
                   kernel: int, weight: Callable, noise: tuple[str, int] | None) -> None:
    """A modulated conv (SynthesisLayer or ToRGBLayer) `name` from the TF scope `scope`."""
    out[f"{name}.weight"] = _Source(f"{scope}/weight", (kernel, kernel, cin, cout), weight)
    out[f"{name}.bias"] = _Source(f"{scope}/bias", (cout,), _same)
    out[f"{name}.affine.weight"] = _Source(f"{scope}/mod_weight", (w_dim, cin), _dense)
    out[f"{name}.affine.bias"] = _Source(f"{scope}/mod_bias", (cin,), _style_bias)
    if noise is not None:
        noise_name, res = noise
        out[f"{name}.noise_const"] = _Source(f"synthesis/{noise_name}", (1, 1, res, res), _noise)
        out[f"{name}.noise_strength"] = _Source(f"{scope}/noise_strength", (), _same)


def _sources(kwargs: dict[str, Any]) -> dict[str, _Source]:
    """Official tensor name -> its TF source, for the generator `kwargs` describe (legacy.py's table)."""
    out: dict[str, _Source] = {}
    z_dim, c_dim, w_dim = kwargs["z_dim"], kwargs["c_dim"], kwargs["w_dim"]
    mapping = kwargs["mapping_kwargs"]
    embed = (mapping["embed_features"] or w_dim) if c_dim > 0 else 0
    hidden = mapping["layer_features"] or w_dim
    out["mapping.w_avg"] = _Source("dlatent_avg", (w_dim,), _same)
    if c_dim > 0:
        out["mapping.embed.weight"] = _Source("mapping/LabelEmbed/weight", (c_dim, embed), _dense)
        out["mapping.embed.bias"] = _Source("mapping/LabelEmbed/bias", (embed,), _same)
    widths = [z_dim + embed] + [hidden] * (mapping["num_layers"] - 1) + [w_dim]
    for i in range(mapping["num_layers"]):
        out[f"mapping.fc{i}.weight"] = _Source(f"mapping/Dense{i}/weight", (widths[i], widths[i + 1]), _dense)
        out[f"mapping.fc{i}.bias"] = _Source(f"mapping/Dense{i}/bias", (widths[i + 1],), _same)

    res_max, img_channels = kwargs["img_resolution"], kwargs["img_channels"]
    use_noise, skip = kwargs["use_noise"], kwargs["architecture"] == "skip"

    def channels(res: int) -> int:
        return min(kwargs["channel_base"] // res, kwargs["channel_max"])

    res, noise_idx = 4, 0
    while res <= res_max:
        block, scope = f"synthesis.b{res}", f"synthesis/{res}x{res}"
        if res == 4:
            out[f"{block}.const"] = _Source(f"{scope}/Const/const", (1, channels(4), 4, 4), _const)
            convs = [("conv1", "Conv", channels(4), _conv)]
        else:
            convs = [("conv0", "Conv0_up", channels(res // 2), _up_conv), ("conv1", "Conv1", channels(res), _conv)]
        for layer, tf_layer, cin, weight in convs:
            noise = (f"noise{noise_idx}", res) if use_noise else None
            _layer_sources(out, f"{block}.{layer}", f"{scope}/{tf_layer}", w_dim, cin, channels(res), 3, weight, noise)
            noise_idx += 1
        if skip or res == res_max:
            _layer_sources(out, f"{block}.torgb", f"{scope}/ToRGB", w_dim, channels(res), img_channels, 1, _conv, None)
        res *= 2
    return out


def _filters(kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The fixed low-pass `resample_filter` buffers: set by the kwargs, not stored by TensorFlow."""
    f = setup_filter(kwargs["resample_filter"])
    out = {}
    res = 4
    while res <= kwargs["img_resolution"]:
        out[f"synthesis.b{res}.resample_filter"] = f.clone()
        if res > 4:
            out[f"synthesis.b{res}.conv0.resample_filter"] = f.clone()
        out[f"synthesis.b{res}.conv1.resample_filter"] = f.clone()
        res *= 2
    return out


_CLASS_OF_MODULE = (  # official class of a module, from the last part of its path
    (r"mapping", "MappingNetwork"),
    (r"synthesis", "SynthesisNetwork"),
    (r"b\d+", "SynthesisBlock"),
    (r"conv[01]", "SynthesisLayer"),
    (r"torgb", "ToRGBLayer"),
    (r"fc\d+|embed|affine", "FullyConnectedLayer"),
)


def _child_classes(names: list[str]) -> dict[str, str]:
    """Module path -> official class for every module the tensor names pass through."""
    classes = {}
    for name in names:
        parts = name.split(".")[:-1]
        for depth in range(1, len(parts) + 1):
            last = parts[depth - 1]
            classes[".".join(parts[:depth])] = next(c for p, c in _CLASS_OF_MODULE if re.fullmatch(p, last))
    return classes


def _state_dict(variables: dict[str, np.ndarray], kwargs: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """Official name -> float32 CPU tensor, checking each TF variable is present with its shape."""
    if kwargs["c_dim"] > 0 and "mapping/LabelConcat/weight" in variables:
        raise UnsupportedNetworkError(f"{path}: conditional TensorFlow StyleGAN2 with label concatenation "
                                      "(mapping/LabelConcat) is not supported")
    tensors = {}
    for name, source in _sources(kwargs).items():
        value = variables.get(source.tf_name)
        if value is None:
            raise NetworkFileError(f"{path}: TensorFlow variable {source.tf_name} is missing")
        if value.shape != source.tf_shape:
            raise NetworkFileError(f"{path}: TensorFlow variable {source.tf_name} has shape {list(value.shape)}, "
                                   f"expected {list(source.tf_shape)}")
        tensors[name] = torch.from_numpy(np.array(source.convert(value), dtype=np.float32, order="C"))
    tensors.update(_filters(kwargs))
    return tensors


# ---------------------------------------------------------------------------------------------------
# The entry point, called by pickle_reader.read_network_pickle for a tuple of TensorFlow networks.


def _pick(top: Any, key: str | None, path: Path) -> tuple[str, Any]:
    """Gs by default (or G when asked); D is a discriminator."""
    if not isinstance(top, tuple):
        raise NetworkFileError(f"{path}: a single TensorFlow network, not the (G, D, Gs) tuple of a training "
                               "pickle")
    if len(top) != len(TOP_NAMES) or not all(isinstance(net, TFNetworkState) for net in top):
        raise NetworkFileError(f"{path}: TensorFlow-era pickle holds {len(top)} objects, expected the networks "
                               f"({', '.join(TOP_NAMES)}); no Gs")
    key = DEFAULT_KEY if key is None else key
    if key == "D":
        raise NetworkFileError(f"{path}: network 'D' is the discriminator, not a generator")
    if key not in TOP_NAMES:
        raise NetworkFileError(f"no network {key!r} in {path} (it holds: {', '.join(TOP_NAMES)})")
    return key, top[TOP_NAMES.index(key)]


def tf_generator_record(top: Any, key: str | None, path: Path) -> NetworkRecord:
    """The official PyTorch StyleGAN2 record of a TensorFlow-era pickle's Gs (or G); nothing is run."""
    name, net = _pick(top, key, path)
    state = _check_tree(net, name, path)
    try:
        kwargs = _init_kwargs(state["static_kwargs"], path)
        variables: dict[str, np.ndarray] = {}
        _collect_variables(net, "", path, variables)
        tensors = _state_dict(variables, kwargs, path)
    except (RecursionError, TypeError, ValueError) as exc:  # odd values the checks above did not foresee
        raise NetworkFileError(f"{path}: malformed TensorFlow network state ({_one_line(exc)})") from None
    return NetworkRecord("Generator", kwargs, tensors, _child_classes(list(tensors)), TF_PICKLE)
