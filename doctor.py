"""`sg3rt doctor`: what this machine can run, in one table (devices, backends, fused kernels, encoders, live extras).

Every optional part of sg3rt fails with a one-line hint when it is used; this module asks all of them at once,
before a render or a live show, so that a user sees "fused kernels: not used: ..." or "NVENC: does not open"
up front. Each check imports or probes one part and never raises: a missing or broken part is a row that
says why, with the install hint its own code gives. Nothing here changes any setting.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Callable

import torch

FFMPEG_ENCODERS = {"h264": "libx264", "prores": "prores_ks", "vp9": "libvpx-vp9", "gif": "gif",
                   "h264-nvenc": "h264_nvenc", "hevc-nvenc": "hevc_nvenc"}  # --codec -> the ffmpeg encoder it needs


@dataclass(frozen=True)
class Check:
    """One row: whether a part of sg3rt can run here, and what was found (or why not, with the install hint)."""

    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict:
        return asdict(self)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _torch() -> tuple[bool, str]:
    cuda = f", built for CUDA {torch.version.cuda}" if torch.version.cuda else ", CPU build"
    return True, f"torch {torch.__version__}{cuda}, {torch.get_num_threads()} CPU threads"


def _cuda() -> tuple[bool, str]:
    if not torch.cuda.is_available():
        why = "torch is a CPU build" if torch.version.cuda is None else "torch sees no GPU (driver or device missing)"
        return False, f"none: {why}; rendering runs on the CPU"
    names = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        names.append(f"cuda:{i} {p.name} (compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB)")
    return True, "; ".join(names)


def _fused() -> tuple[bool, str]:
    from .networks.filtered_lrelu import fused_reason, triton_import_error

    if not torch.cuda.is_available():
        error = triton_import_error()
        if error is not None:
            return False, f"not available: {error}"
        return False, (f"not used: no CUDA GPU (Triton {_version('triton')} imports; the plain PyTorch path runs, "
                       "as it does for ONNX export)")
    reasons = {name: fused_reason(torch.empty(1, device="cuda", dtype=dtype))
               for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16), ("fp32", torch.float32))}
    usable = [name for name, reason in reasons.items() if reason is None]
    if not usable:
        return False, f"not used: {next(iter(reasons.values()))}"
    others = [f"{name}: {reason}" for name, reason in reasons.items() if reason is not None]
    return True, (f"used on cuda:0 by fir_impl auto (Triton {_version('triton')}; {', '.join(usable)})"
                  + (f"; not for {'; '.join(others)}" if others else ""))


def _cpu_kernels() -> tuple[bool, str]:
    from .networks.filtered_lrelu_cpu import cpu_reason

    reason = cpu_reason(torch.empty(1), None)
    if reason is not None:
        return False, f"not used: {reason}; the plain PyTorch convolutions run"
    return True, f"numba {_version('numba')}: the fused filtered activation runs on CPU tensors (fir_impl auto, fp32)"


def _onnxruntime() -> tuple[bool, str]:
    from .runtime.onnxruntime_backend import _import_onnxruntime

    ort = _import_onnxruntime()
    return True, f"onnxruntime {ort.__version__}: {', '.join(ort.get_available_providers())}"


def _tensorrt() -> tuple[bool, str]:
    from .export.tensorrt_build import import_tensorrt

    return True, f"tensorrt {import_tensorrt().__version__}"


def _ffmpeg() -> tuple[bool, str]:
    import imageio_ffmpeg

    from .animate.writers import ffmpeg_encoders

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    listed = ffmpeg_encoders(exe)
    have = [codec for codec, encoder in FFMPEG_ENCODERS.items() if encoder in listed]
    missing = [codec for codec in FFMPEG_ENCODERS if codec not in have]
    return "h264" in have, (f"{exe}: --codec {', '.join(have)}" + (f" (not in this build: {', '.join(missing)})"
                                                                     if missing else ""))


def _nvenc() -> tuple[bool, str]:
    from .animate.writers import check_encoder

    check_encoder("h264-nvenc")  # the render's own probe: is it in ffmpeg, then a 2-frame test encode
    check_encoder("hevc-nvenc")
    return True, "h264-nvenc and hevc-nvenc open (a test encode ran)"


def _web() -> tuple[bool, str]:
    from .live.server import import_web

    import_web()
    return True, f"starlette {_version('starlette')}, uvicorn {_version('uvicorn')}, websockets {_version('websockets')}"


def _osc() -> tuple[bool, str]:
    from .live.osc import import_osc

    import_osc()
    return True, f"python-osc {_version('python-osc')} (sg3rt live --osc-port N)"


def _midi() -> tuple[bool, str]:
    from .live.midi import midi_input_names

    ports = midi_input_names()
    return True, f"mido {_version('mido')}: {len(ports)} input port(s)" + (f": {', '.join(ports)}" if ports else "")


def _audio() -> tuple[bool, str]:
    from importlib.util import find_spec

    if find_spec("librosa") is None:
        return False, "librosa is not installed: pip install 'sg3rt[audio]' (render --audio, live --audio)"
    return True, f"librosa {_version('librosa')} (render --audio, live --audio)"


def _sound_input() -> tuple[bool, str]:
    from .live.audio_in import input_devices

    devices = input_devices()
    return bool(devices), (f"sounddevice {_version('sounddevice')}: {len(devices)} input device(s)"
                           + (": " + "; ".join(d.describe() for d in devices) if devices else
                              " (live --audio-in needs one)"))


CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {
    "PyTorch": _torch, "CUDA GPU": _cuda, "fused kernels": _fused, "CPU kernels": _cpu_kernels,
    "ONNX Runtime": _onnxruntime,
    "TensorRT": _tensorrt, "ffmpeg": _ffmpeg, "NVENC": _nvenc, "live (web)": _web, "OSC": _osc, "MIDI": _midi,
    "audio analysis": _audio, "sound input": _sound_input,
}
PROBES = ("NVENC",)  # checks that run a test job (an encode), skipped with probe=False


def run_checks(probe: bool = True, only: tuple[str, ...] | None = None) -> list[Check]:
    """Every check of CHECKS (or `only` those), in order; `probe=False` skips the ones that run a test job."""
    rows = []
    for name, check in CHECKS.items():
        if only is not None and name not in only:
            continue
        if name in PROBES and not probe:
            rows.append(Check(name, False, "not probed (--no-probe)"))
            continue
        try:
            ok, detail = check()
        except Exception as e:  # each part's own one-line error (BackendUnavailableError, InputError) or anything broken
            lines = str(e).strip().splitlines()
            ok, detail = False, (lines[0] if lines else type(e).__name__)
        rows.append(Check(name, ok, detail))
    return rows
