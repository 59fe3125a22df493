"""The `sg3rt` command line: parses options and calls the library; no logic of its own.

Choices come from `vocab` and defaults equal the library's (precision None = the backend's or the
export's own). Every `Sg3rtError` becomes one line on stderr and exit code 2. Commands import the
library inside their bodies, so `--help` and option errors answer without loading torch.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from .errors import Sg3rtError
from .vocab import BACKENDS, CODECS, DEFAULT_EXPORT_TARGET, DEVICES_HELP, ENGINE_PRECISIONS, EXPORT_TARGETS, PRECISIONS

try:  # typer >= 0.2x vendors click; older typer uses click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions


class OneLineErrors(typer.core.TyperGroup):
    """Option and usage errors in the same style as every other error: one line, `error: ...`, exit 2."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click_exceptions.NoArgsIsHelpError as e:  # `sg3rt` alone: the help, as asked for
            typer.echo(e.ctx.get_help())
            sys.exit(0)
        except click_exceptions.ClickException as e:
            typer.echo(f"error: {e.format_message().replace('Value error, ', '')}", err=True)
            sys.exit(2)
        except typer.Abort:  # (click's Abort; typer >= 0.2x's vendored click has none of its own)
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="sg3rt",
    cls=OneLineErrors,
    help="StyleGAN3/StyleGAN2 generators: inspect, convert, export, and render smooth video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: fits 80 columns, no boxes, no <bool> metavars on flags
)


def _choices(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A str Enum over a vocab tuple: typer lists and checks the choices."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


Backend = _choices("Backend", BACKENDS)
Precision = _choices("Precision", PRECISIONS)
EnginePrecision = _choices("EnginePrecision", ENGINE_PRECISIONS)
Codec = _choices("Codec", CODECS)
ExportTarget = _choices("ExportTarget", EXPORT_TARGETS)


class ExportNoise(str, Enum):
    const = "const"
    none = "none"


def _value(choice: Optional[Enum]) -> Optional[str]:
    return None if choice is None else choice.value


# Shared option aliases: one name, one meaning, in every command --------------------------------------
NetworkArg = Annotated[Path, typer.Argument(help="Network file: official .pkl or sg3rt .safetensors.")]
OptionalNetwork = Annotated[
    Optional[Path],
    typer.Option("--network", "-n", help="Network file (.pkl/.safetensors) or export dir; default: the embedded network."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SeedsOpt = Annotated[Optional[str], typer.Option(
    "--seeds", "-s", metavar="SEEDS", help="Seeds: '0-7,12,42' (official z = RandomState(seed).randn); default 0-3 unless --w-file.")]
WFileOpt = Annotated[Optional[Path], typer.Option(
    "--w-file", help="Keyframes from saved ws instead of seeds: .npz (key w, e.g. the projector's projected_w.npz) or .npy.")]
SaveWOpt = Annotated[Optional[Path], typer.Option(
    "--save-w", help="Also write the keyframes' ws here (.npz key w, [N, num_ws, w_dim]) for --w-file.")]
DEFAULT_SEEDS = "0-3"  # the seeds when neither --seeds nor --w-file is given
PsiOpt = Annotated[float, typer.Option("--psi", help="Truncation psi (1 = none).")]
CutoffOpt = Annotated[Optional[int], typer.Option("--cutoff", help="Truncate only the first N layers.")]
ClassOpt = Annotated[Optional[int], typer.Option("--class", help="Class index for a conditional network.")]
MixOpt = Annotated[Optional[list[str]], typer.Option(
    "--mix", metavar="LAYERS:SEED", help="Style mixing LAYERS:SEED, LAYERS = coarse|middle|fine|a-b; repeatable.")]
EditOpt = Annotated[Optional[list[str]], typer.Option(
    "--edit", metavar="SPEC", help="Shift w along a direction: FILE.npz:K:AMOUNT, FILE.npz:K:A..B (a sweep, render only), "
    "FILE.npy:AMOUNT; optional @LAYERS; repeatable.")]
StabilizeOpt = Annotated[bool, typer.Option(
    "--stabilize", help="Freeze the input layer at w_avg: a StyleGAN3 walk changes content without turning or sliding.")]
TranslateHelp = "X,Y: a fixed shift in image widths (StyleGAN3)"
BackendOpt = Annotated[Backend, typer.Option("--backend", help="Runtime backend (auto: measured best for the device).")]
DeviceOpt = Annotated[str, typer.Option("--device", help=f"{DEVICES_HELP}.")]
PrecisionOpt = Annotated[Optional[Precision], typer.Option(
    "--precision", help="Compute precision; default: fp32 for networks, the export's own for export dirs.")]
BatchOpt = Annotated[int, typer.Option("--batch", help="Images per runtime call.")]
SizeOpt = Annotated[Optional[str], typer.Option(
    "--size", metavar="WxH", help="StyleGAN3 canvas, e.g. 1920x1080: more of the picture's plane around the "
    "network's square, not a stretch or a crop (even sizes; default: the network's own).")]
CudaGraphsOpt = Annotated[bool, typer.Option(
    "--cuda-graphs", help="PyTorch on CUDA: replay synthesis from CUDA graphs (H100, 256 px fp16: 40 -> 55 frames/s at batch 1).")]

_DEFAULT_NETWORK_NOTE = "the embedded default network (untrained StyleGAN3-R, random weights: abstract patterns)"


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C is: a playable partial video, temp files removed, a message."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal's number, as shells report it (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)


def _interrupted(interrupt: KeyboardInterrupt) -> str:
    return f"interrupted ({interrupt.args[0]})" if isinstance(interrupt, Terminated) else "interrupted"


def _raise_terminated(signum: int, frame) -> None:
    raise Terminated(signum)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings as one `warning: ...` line (not Python's file:line: Category: form)."""
    typer.echo(f"warning: {message}", err=True)


class Bar:
    """Progress on stderr: the click bar on a terminal; without one (CI logs, pipes) a plain line
    every PLAIN_STEP of the way, so a long run is never silent."""

    PLAIN_STEP = 0.1  # fraction of the total between plain lines

    def __init__(self, total: int, label: str):
        self.total, self.label, self.shown, self.next_plain = max(int(total), 1), label, 0, 0.0
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self.bar = typer.progressbar(length=self.total, label=label, file=sys.stderr) if self.tty else None
        if self.bar is not None:
            self.bar.__enter__()

    def update(self, done: int, note: str = "") -> None:
        done = min(int(done), self.total)
        if self.bar is not None:
            self.bar.label = f"{self.label} {note}".rstrip()
            self.bar.update(done - self.shown)
        elif done / self.total >= self.next_plain or done == self.total:
            rate = done / max(time.perf_counter() - self.start, 1e-9)
            typer.echo(f"{self.label} {done}/{self.total} ({100 * done // self.total}%, {rate:.1f}/s) {note}".rstrip(),
                       err=True)
            self.next_plain = done / self.total + self.PLAIN_STEP
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fail(message: str) -> None:
    """Print one error line and exit 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def domain_errors(fn: Callable) -> Callable:
    """Turn library errors into a one-line message and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Sg3rtError as e:
            fail(str(e))
        except KeyboardInterrupt as e:
            typer.echo(_interrupted(e), err=True)
            raise typer.Exit(_exit_code(e)) from None

    return wrapper


def _load(network: Optional[Path]):
    from .networks import load_generator
    from .networks.default import default_generator

    return default_generator() if network is None else load_generator(network)


def _network_note(network: Optional[Path]) -> str:
    return str(network) if network is not None else _DEFAULT_NETWORK_NOTE


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        fail(f"{what} must be a comma-separated list of positive integers, got {text!r}")
    return values


def _keyframes(seeds: Optional[str], w_file: Optional[Path]):
    """(seed list, None) or (None, the w file's array): --seeds and --w-file exclude each other."""
    from .animate import parse_seeds, read_w_file

    if w_file is None:
        return parse_seeds(DEFAULT_SEEDS if seeds is None else seeds), None
    if seeds is not None:
        fail("give --seeds or --w-file, not both (the w file's ws are the keyframes)")
    return None, read_w_file(w_file)


def _canvas(size: Optional[str]) -> Optional[tuple[int, int]]:
    """--size WxH -> (width, height), checked before any work (whether the network can: when it loads)."""
    from .vocab import parse_size

    return None if size is None else parse_size(size)


def _check_batch(batch: int) -> None:
    if batch < 1:
        fail(f"--batch must be at least 1, got {batch}")


# info / convert -------------------------------------------------------------------------------------


@app.command()
@domain_errors
def info(
    network: Annotated[Optional[Path], typer.Argument(help="Network file; default: the embedded network.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show a network's kind, resolution, dims, num_ws, parameters and layers.

    Example: sg3rt info stylegan3-r-afhqv2-512x512.pkl
    """
    import json

    G = _load(network)
    summary = G.summary()
    summary["source"] = str(network) if network else "embedded default network (untrained StyleGAN3-R, random weights)"
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    rows = [("source", summary["source"]), ("format", summary["format"]), ("kind", summary["kind"]),
            ("resolution", f"{summary['img_resolution']} x {summary['img_resolution']} x {summary['img_channels']}"),
            ("z_dim / c_dim / w_dim", f"{summary['z_dim']} / {summary['c_dim']} / {summary['w_dim']}"),
            ("num_ws", summary["num_ws"]), ("mapping layers", summary["mapping_layers"]),
            ("parameters", f"{summary['params']:,}")]
    for key, value in rows:
        typer.echo(f"{key:<22} {value}")
    typer.echo("")
    typer.echo(f"{'layer':<14} {'channels':>8} {'size':>6} {'up':>3} {'down':>4} {'fp16':>5}")
    for layer in summary["layers"]:
        typer.echo(f"{layer['name']:<14} {layer['channels']:>8} {layer['size']:>6} {layer.get('up', '-'):>3} "
                   f"{layer.get('down', '-'):>4} {'yes' if layer.get('fp16') else 'no':>5}")


@app.command()
@domain_errors
def doctor(
    as_json: JsonFlag = False,
    probe: Annotated[bool, typer.Option("--probe/--no-probe", help="Run test jobs too (a 2-frame NVENC encode).")] = True,
) -> None:
    """Show what this machine can run: GPU, fused kernels, ONNX Runtime, TensorRT, encoders, live extras.

    Example: sg3rt doctor
    """
    import json

    from .doctor import run_checks

    rows = run_checks(probe=probe)
    if as_json:
        typer.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return
    for r in rows:
        typer.echo(f"{r.name:<15} {'yes' if r.ok else 'no':<4} {r.detail}")


@app.command()
@domain_errors
def convert(
    network: NetworkArg,
    output: Annotated[Path, typer.Argument(help="Output .safetensors file.")],
    key: Annotated[Optional[str], typer.Option(help="Pickle entry to read (default: G_ema, else G).")] = None,
) -> None:
    """Convert an official network pickle to sg3rt's .safetensors format (exact, no pickle needed to load).

    Example: sg3rt convert stylegan3-t-ffhq-1024x1024.pkl ffhq-t.safetensors
    """
    from .fileio import check_can_write
    from .networks import load_generator, save_generator

    if output.suffix != ".safetensors":
        fail(f"{output}: output must end in .safetensors")
    check_can_write(output)  # a folder in the way, a read-only place: now, not after reading the network
    G = load_generator(network, key=key)
    save_generator(G, output)
    typer.echo(f"wrote {output} ({G.kind}, {G.img_resolution}px, {G.summary()['params']:,} parameters)")


# export / build / bench -----------------------------------------------------------------------------


@app.command()
@domain_errors
def export(
    network: Annotated[Optional[Path], typer.Argument(help="Network file (.pkl/.safetensors); default: the embedded network.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output directory (mapping.onnx, synthesis.onnx, model.json).")] = Path("sg3rt-export"),
    precision: Annotated[Precision, typer.Option(help="Synthesis compute precision (inputs/outputs stay float32).")] = Precision("fp32"),
    frames: Annotated[bool, typer.Option("--frames", help="Also output uint8 frames [B,H,W,C] from synthesis.onnx.")] = False,
    noise: Annotated[ExportNoise, typer.Option(help="StyleGAN2 noise baked into the graph.")] = ExportNoise.const,
    opset: Annotated[Optional[int], typer.Option(help="ONNX opset (default 17).")] = None,
    size: SizeOpt = None,
    target: Annotated[ExportTarget, typer.Option(help="Runtime the graph's ops are chosen for.")] = ExportTarget(DEFAULT_EXPORT_TARGET),
) -> None:
    """Export a network to ONNX (dynamic batch), check it, and verify it against PyTorch.

    Example: sg3rt export stylegan3-r-afhqv2-512x512.pkl -o afhq-onnx --precision fp16
    (--size 1920x1080: a StyleGAN3 canvas as the graph's fixed image shape)
    """
    from .export import check_export_dir, export_onnx

    canvas = _canvas(size)
    check_export_dir(output)  # a file or someone's folder in the way: before the network loads (export_onnx checks again)
    G = _load(network)
    result = export_onnx(G, output, precision=precision.value, frames=frames, noise_mode=noise.value,
                         opset=opset, source=network, size=canvas, target=target.value)
    for path in result.paths:
        typer.echo(f"wrote {path}")
    from .export.contract import FRAMES_TOL

    errors = {k: v for k, v in result.max_errors.items() if k != "frames"}
    line = ", ".join(f"{k} {v:.2e}" for k, v in errors.items()) + f" (tolerance {result.contract.tolerance:g})"
    if "frames" in result.max_errors:
        line += f"; uint8 frames within {result.max_errors['frames']:.0f} level (tolerance {FRAMES_TOL})"
    typer.echo(f"verified with ONNX Runtime (batch 1 and 3): max abs error {line}")


@app.command()
@domain_errors
def build(
    export_dir: Annotated[Path, typer.Argument(help="Export directory written by `sg3rt export`.")],
    precision: Annotated[EnginePrecision, typer.Option(help="Engine compute precision.")] = EnginePrecision("fp16"),
    batch: Annotated[str, typer.Option(help="Optimisation profile on the batch axis, MIN:OPT:MAX.")] = "1:4:16",
    cache_dir: Annotated[Optional[Path], typer.Option(help="Engine cache (default: $SG3RT_CACHE_DIR/tensorrt).")] = None,
) -> None:
    """Build TensorRT engines from an export (cached by ONNX hash, TensorRT, GPU, precision, profile).

    Example: sg3rt build afhq-onnx --precision fp16 --batch 1:4:16
    """
    from .export.tensorrt_build import BatchProfile, load_or_build_engines

    profile = BatchProfile.parse(batch)
    records = load_or_build_engines(export_dir, precision.value, profile, cache_dir)
    for record in records.values():
        typer.echo(f"{'built' if record.built else 'cached'} {record.graph}: {record.path}")


@app.command()
@domain_errors
def bench(
    network: Annotated[Optional[Path], typer.Argument(help="Network file or export dir; default: the embedded network.")] = None,
    backend: Annotated[str, typer.Option(help="Comma-separated backends: torch, onnxruntime, tensorrt.")] = "torch,onnxruntime",
    batch: Annotated[str, typer.Option(help="Comma-separated batch sizes.")] = "1,4,16",
    res: Annotated[Optional[int], typer.Option(help="Use a random-weight official StyleGAN3 config at this resolution (256/512/1024) instead of NETWORK.")] = None,
    kind: Annotated[Optional[str], typer.Option(help="Official config for --res: stylegan3-r (default) or stylegan3-t.")] = None,
    precision: Annotated[Optional[EnginePrecision], typer.Option(help="Default per backend (bf16: tensorrt).")] = None,
    device: DeviceOpt = "auto",
    iters: Annotated[int, typer.Option(help="Timed iterations per configuration (median reported).")] = 5,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON here.")] = None,
    cuda_graphs: CudaGraphsOpt = False,
) -> None:
    """Frames/s, ms/frame and peak memory per backend and batch size (frames() incl. copy to host).

    Example: sg3rt bench --res 1024 --backend torch,tensorrt --batch 1,16 --precision fp16
    """
    from .fileio import check_can_write, write_json
    from .runtime.bench import bench_backends
    from .vocab import check_choice

    if json_path is not None:
        check_can_write(json_path)  # before the runs, not after them
    if kind is not None and res is None:
        fail("--kind picks the official config of --res; it does not apply to NETWORK")
    kind = kind or "stylegan3-r"
    backends = [check_choice(b.strip(), BACKENDS, "backend") for b in backend.split(",") if b.strip()]
    if not backends:
        fail(f"--backend names no backend: {backend!r} (e.g. torch,onnxruntime)")
    batches = _int_list(batch, "--batch")
    if iters < 1:
        fail("--iters must be at least 1")
    target = network
    if res is not None:
        if network is not None:
            fail("give either NETWORK or --res, not both")
        from .networks.configs import random_official_generator

        target = random_official_generator(kind, res)
    lines, results = [], []
    with Bar(len(backends) * len(batches), "configurations") as bar:
        for r in bench_backends(target, backends, batches, device=device, precision=_value(precision), iters=iters,
                                cuda_graphs=cuda_graphs):
            results.append(r.to_json())
            split = f"  ({r.chunk} per call: out of memory at {r.batch})" if r.chunk < r.batch and r.device != "cpu" else ""
            lines.append(f"{r.backend:<12} {r.device:<7} {r.precision:<5} {r.batch:>5} {r.frames_per_s:>9.2f} "
                         f"{r.ms_per_frame:>9.2f} {r.peak_mem_mib:>9.0f}{split}")
            bar.update(len(results), f"{r.backend} batch {r.batch}")
    # the table after the runs: an error on the way is one line, not a header with nothing under it
    typer.echo(f"{'backend':<12} {'device':<7} {'prec':<5} {'batch':>5} {'frames/s':>9} {'ms/frame':>9} {'peak MiB':>9}")
    for line in lines:
        typer.echo(line)
    if json_path is not None:
        write_json(json_path, {"network": str(network) if network else (f"{kind}-{res} random" if res else "default"),
                               "results": results})
        typer.echo(f"wrote {json_path}")


# render / image -------------------------------------------------------------------------------------

TimelineOpt = Annotated[Optional[Path], typer.Option(
    "--timeline", help="Render a keyframe timeline (.toml or .json; see README 'Timelines') instead of seeds and a path.")]
# render options a timeline file replaces (its keys, timing and per-key settings): refused beside --timeline
TIMELINE_REPLACES = ("seeds", "w_file", "save_w", "path", "space", "loop", "duration", "frames_per_transition", "frames",
                     "fps", "psi", "cutoff", "rotate", "rotate_speed", "translate", "mix", "edit", "stabilize", "grid",
                     "class_idx")


def _load_timeline(ctx: typer.Context, path: Path):
    """The timeline file, checked before any network loads; options it replaces are refused in one line."""
    from .animate.timeline import load_timeline

    def typed(name: str) -> bool:  # by name: typer may vendor its own click, with its own enum
        source = ctx.get_parameter_source(name)
        return source is not None and source.name == "COMMANDLINE"

    given = [p.opts[0] for p in ctx.command.params if p.name in TIMELINE_REPLACES and typed(p.name)]
    if given:
        fail(f"--timeline sets the keys, timing and per-key settings: drop {', '.join(given)}")
    return load_timeline(path)


@app.command(epilog=(
    "Examples:\n\n"
    "  sg3rt render --seeds 0-7 --path cubic --duration 10 --psi 0.7 -o loop.mp4\n\n"
    "  sg3rt render -n net.pkl --seeds 3 --rotate 360 --translate circle:0.1 --duration 4 -o spin.mp4\n\n"
    "  sg3rt render -n net.pkl --seeds 0-31 --grid 4x2 --path cubic --mix coarse:5 -o grid.mp4\n\n"
    "  sg3rt render --seeds 1,2 --path noise --grid 2x1 --frames 48 -o noise.gif\n\n"
    "  sg3rt render --seeds 0-3 --path slerp --no-loop --frames-per-transition 30 -o frames/\n\n"
    "  sg3rt render -n net.pkl --w-file keys.npz --duration 8 -o cut.mov     (ProRes 422 HQ)\n\n"
    "  sg3rt render -n net.pkl --device cuda --seeds 0-7 --codec hevc-nvenc -o fast.mp4   (NVIDIA GPU encoder)\n\n"
    "  sg3rt render -n stylegan3-r.pkl --size 1920x1080 --seeds 0-3 -o wide.mp4   (16:9 canvas, StyleGAN3)\n\n"
    "  sg3rt render -n net.pkl --timeline show.toml -o show.mp4     (keyframes: README 'Timelines')\n\n"
    "  sg3rt render -n net.pkl --seeds 0-7 --audio song.mp3 --react pulse=0.5,rotate=10 -o clip.mp4"))
@domain_errors
def render(
    ctx: typer.Context,
    output: Annotated[str, typer.Option("--output", "-o", help="Output: .mp4, .mov, .webm, .gif, or a folder/ for PNG frames.")],
    timeline: TimelineOpt = None,
    seeds: SeedsOpt = None,
    network: OptionalNetwork = None,
    w_file: WFileOpt = None,
    save_w: SaveWOpt = None,
    path: Annotated[str, typer.Option("--path", help="Latent path: linear, slerp, cubic (Catmull-Rom) or noise (loop).")] = "cubic",
    space: Annotated[Optional[str], typer.Option("--space", help="Interpolate in w or z (default: w; z for slerp and noise).")] = None,
    loop: Annotated[bool, typer.Option("--loop/--no-loop", help="Close the path back to its first seed (as the official gen_video).")] = True,
    duration: Annotated[Optional[float], typer.Option("--duration", help="Video length in seconds.")] = None,
    frames_per_transition: Annotated[Optional[int], typer.Option("--frames-per-transition", help="Frames between neighbouring seeds (default 60).")] = None,
    frames: Annotated[Optional[int], typer.Option("--frames", help="Total frames.")] = None,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second.")] = 30.0,
    psi: PsiOpt = 1.0,
    cutoff: CutoffOpt = None,
    rotate: Annotated[Optional[float], typer.Option("--rotate", help="Total rotation over the video, degrees (StyleGAN3).")] = None,
    rotate_speed: Annotated[Optional[float], typer.Option("--rotate-speed", help="Rotation in degrees per second (StyleGAN3).")] = None,
    translate: Annotated[Optional[str], typer.Option("--translate", help=f"{TranslateHelp}, or a path SHAPE[:AMPLITUDE[:CYCLES]]: line, circle, figure8.")] = None,
    mix: MixOpt = None,
    edit: EditOpt = None,
    stabilize: StabilizeOpt = False,
    grid: Annotated[Optional[str], typer.Option("--grid", help="COLSxROWS tiles, each its own group of seeds.")] = None,
    class_idx: ClassOpt = None,
    backend: BackendOpt = Backend("auto"),
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = None,
    batch: BatchOpt = 8,
    codec: Annotated[Optional[Codec], typer.Option(
        "--codec", help="Codec (default by suffix: .mp4 h264, .mov prores 422 HQ, .webm vp9, .gif gif, folder png); "
                        ".mp4/.mov also h264-nvenc or hevc-nvenc (NVIDIA GPU encoder, where ffmpeg and the driver have it).")] = None,
    crf: Annotated[Optional[int], typer.Option(
        "--crf", help="Quality of h264 (0 lossless .. 51, default 18), vp9 (0 .. 63, default 24) and "
                      "h264-nvenc/hevc-nvenc (NVENC -cq 1 .. 51, default 19).")] = None,
    cuda_graphs: CudaGraphsOpt = False,
    size: SizeOpt = None,
    audio: Annotated[Optional[Path], typer.Option(
        "--audio", help="A sound track (.wav, .mp3, .flac, ...): drives the video, which lasts as long (or --duration; "
                        "a --timeline keeps its own length), "
                        "and is muxed into .mp4/.mov (AAC) or .webm (Opus).")] = None,
    react: Annotated[Optional[str], typer.Option(
        "--react", help="Reaction amounts NAME=X,...: speed (0.5), pulse (0.3), loudness (0), pitch (0), "
                        "rotate (0 degrees per beat), translate (0).")] = None,
    bpm: Annotated[Optional[float], typer.Option("--bpm", help="Tempo of the beat grid (default: detected).")] = None,
    loop_bars: Annotated[Optional[int], typer.Option(
        "--loop-bars", help="The path loops once every N bars of 4 beats, closing on a beat.")] = None,
    react_plot: Annotated[Optional[Path], typer.Option(
        "--react-plot", help="Also write a PNG of the audio features and per-frame controls over time.")] = None,
) -> None:
    """Render a latent interpolation (with rotation/translation for StyleGAN3) to MP4, MOV, WebM, GIF or PNG frames."""
    import contextlib

    from . import Animation, Grid, Motion, PathSpec, StyleMix, Translation, open_generator, open_writer
    from . import render as render_frames
    from .animate import Edit, Timeline, output_codec, takes_audio
    from .animate.audio import plot_reaction
    from .animate.latents import StagedWs, as_keyframes
    from .animate.paths import check_w_keyframes
    from .animate.scene import check_save_w
    from .animate.writers import check_beside
    from .fileio import FileSet

    # Everything that needs no network is checked first, so a typo fails in a blink.
    show = None if timeline is None else _load_timeline(ctx, timeline)  # (the other checks then see defaults)
    fps = fps if show is None else show.fps
    seed_list, w_array = _keyframes(seeds, w_file)
    canvas = _canvas(size)
    if show is not None and show.size is not None:
        if canvas is not None and canvas != show.size:
            fail(f"--size {size} differs from the timeline's size {show.size[0]}x{show.size[1]}: give one")
        canvas = show.size
    spec = PathSpec(path, space, loop, psi, cutoff, class_idx, tuple(StyleMix.parse(m) for m in mix or ()),
                    tuple(Edit.parse(e) for e in edit or ()), stabilize)
    if w_array is not None:
        check_w_keyframes(spec)
    motion = Motion(rotate, rotate_speed, Translation.parse(translate) if translate else None)
    tiles = Grid.parse(grid)
    keys = seed_list if w_array is None else list(range(len(w_array) if w_array.ndim == 3 else 1))
    Timeline.build(len(tiles.split_seeds(keys)[0]), spec.loops, fps, duration, frames_per_transition, frames)
    if audio is None and (react or bpm or loop_bars or react_plot):
        fail("--react, --bpm, --loop-bars and --react-plot need --audio")
    if show is not None and loop_bars is not None:
        fail("--loop-bars loops a seed path: a timeline's keys set its timing (drop --loop-bars)")
    _check_batch(batch)
    output_codec(output, _value(codec), crf, fps)  # (the path as typed: "frames.v2/" is a folder)
    for option, beside in (("--save-w", save_w), ("--react-plot", react_plot)):
        if beside is not None:
            check_beside(beside, output, option)  # (not inside a PNG output folder)
    if save_w is not None:
        check_save_w(spec)
    staged = None if save_w is None else StagedWs(save_w)  # (checks the place now; writes nothing yet)
    features, reaction = _audio_reaction(audio, react, bpm, loop_bars, react_plot, fps, output)
    writer = anim = None
    with staged or contextlib.nullcontext(), FileSet() as plot:  # staged files not committed below are removed
        try:
            with open_writer(output, fps, crf, _value(codec), audio if features and takes_audio(output) else None) as writer, \
                    open_generator(network, backend=backend.value, device=device, precision=_value(precision),
                                   size=canvas, cuda_graphs=cuda_graphs) as runtime:
                ws = None if w_array is None else as_keyframes(w_array, runtime.num_ws, runtime.w_dim, str(w_file))
                if show is not None:
                    anim = show.bind(runtime, features, reaction)  # (features fit to the timeline's length)
                else:
                    anim = Animation(runtime, seed_list, spec, fps, motion=motion, grid=tiles, duration=duration,
                                     frames_per_transition=frames_per_transition, frames=frames, ws=ws,
                                     audio=features, reaction=reaction)
                if react_plot is not None:  # staged like the w file: it appears with the finished video only
                    plot.write(react_plot, lambda tmp: plot_reaction(tmp, features, anim.reactive.controls))
                if staged is not None:  # written before the first frame, renamed once the video is complete
                    staged.stage(anim.keyframe_ws().cpu().numpy())  # [N, num_ws, w_dim]
                h, w = anim.frame_size
                writer.check_frame_size(h, w)  # (render() checks too; here before the "rendering" line)
                typer.echo(f"rendering {anim.num_frames} frames {w}x{h} at {fps:g} fps with {_network_note(network)} "
                           f"[{runtime.backend}, {runtime.device}, {runtime.precision}]", err=True)
                with Bar(anim.num_frames, "frames") as bar, \
                        contextlib.closing(render_frames(runtime, anim, writer, batch)) as events:
                    for p in events:
                        bar.update(p.done)
        except KeyboardInterrupt as e:  # (an interrupted render saves no ws)
            if writer is not None and writer.kept:
                total = f" of {anim.num_frames}" if anim is not None else ""
                beside = writer.kept_path != writer.path  # (an existing output stays; the partial goes beside it)
                where = f"{writer.kept_path} ({output} is unchanged)" if beside else output
                typer.echo(f"{_interrupted(e)}: kept the first {writer.count}{total} frames in {where}", err=True)
            else:
                typer.echo(f"{_interrupted(e)}: nothing written", err=True)
            raise typer.Exit(_exit_code(e)) from None
        if staged is not None:
            staged.commit(output)
        try:
            plot.commit()
        except Sg3rtError as e:
            raise type(e)(f"{e}; {output} was written, without its plot") from None
    typer.echo(f"wrote {output} ({writer.count} frames, {w}x{h}, {fps:g} fps, {writer.count / fps:.2f} s) "
               f"from {_network_note(network)}")


def _audio_reaction(audio: Optional[Path], react: Optional[str], bpm: Optional[float], loop_bars: Optional[int],
                    react_plot: Optional[Path], fps: float, output: str):
    """(AudioFeatures, AudioReaction) of --audio (read now: a bad file fails before any frame), or (None, None)."""
    if audio is None:
        return None, None
    from .animate import AudioFeatures, AudioReaction, check_writable, output_format, takes_audio

    reaction = AudioReaction.parse(react, bpm=bpm, loop_bars=loop_bars)
    if react_plot is not None:
        if Path(react_plot).suffix.lower() != ".png":
            fail(f"--react-plot {react_plot}: give a .png file")
        check_writable(react_plot)
    features = AudioFeatures.from_file(audio, fps)
    typer.echo(f"audio: {features.duration:.2f} s, tempo {features.tempo:.1f} bpm, {len(features.beats)} beats, "
               f"{len(features.onsets)} onsets", err=True)
    if not takes_audio(output):
        typer.echo(f"note: {output_format(output).upper()} output has no sound: the audio drives the video only", err=True)
    return features, reaction


@app.command(epilog=(
    "Examples:\n\n"
    "  sg3rt image --seeds 0-7 -o images/            (images/seed0000.png ...)\n\n"
    "  sg3rt image -n net.pkl --seeds 42 --psi 0.7 --rotate 10 --translate 0.1,0 -o face.png\n\n"
    "  sg3rt image -n net.pkl --seeds 0-7 --psi 0.7 --save-w keys.npz -o images/\n\n"
    "  sg3rt image -n net.pkl --w-file projected_w.npz -o images/    (images/w0000.png ...)\n\n"
    "  sg3rt image -n stylegan3-t.pkl --seeds 42 --size 1920x1080 -o wide.png   (16:9 canvas, StyleGAN3)"))
@domain_errors
def image(
    output: Annotated[str, typer.Option("--output", "-o", help="A folder (seedNNNN.png or wNNNN.png inside) or a .png file.")],
    seeds: SeedsOpt = None,
    network: OptionalNetwork = None,
    w_file: WFileOpt = None,
    save_w: SaveWOpt = None,
    psi: PsiOpt = 1.0,
    cutoff: CutoffOpt = None,
    class_idx: ClassOpt = None,
    mix: MixOpt = None,
    edit: EditOpt = None,
    stabilize: StabilizeOpt = False,
    rotate: Annotated[float, typer.Option("--rotate", help="Rotation in degrees (StyleGAN3).")] = 0.0,
    translate: Annotated[Optional[str], typer.Option("--translate", help=f"{TranslateHelp}.")] = None,
    backend: BackendOpt = Backend("auto"),
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = None,
    batch: BatchOpt = 8,
    size: SizeOpt = None,
) -> None:
    """Write one PNG per seed (as the official gen_images: same seeds, same images) or per w of a w file."""
    import os

    import numpy as np

    from . import StyleMix, Translation, open_generator
    from .animate import Edit, check_writable, still_batches
    from .animate.edits import check_still
    from .animate.latents import as_keyframes, check_w_output, ws_bytes
    from .fileio import FileSet, check_can_write, is_dir, png_bytes, write_bytes

    seed_list, w_array = _keyframes(seeds, w_file)
    canvas = _canvas(size)
    if w_array is not None and (psi != 1.0 or cutoff is not None):
        fail("--psi/--cutoff truncate the mapping of seeds; a w file's ws are used as they are")
    mixes = tuple(StyleMix.parse(m) for m in mix or ())
    edits = tuple(Edit.parse(e) for e in edit or ())
    check_still(edits)
    shift = Translation.parse(translate) if translate else None
    if shift is not None and not shift.fixed:
        fail(f"bad --translate {translate!r}: a still image takes a fixed shift X,Y in image widths, e.g. 0.1,-0.2")
    keys = seed_list if w_array is None else list(range(len(w_array) if w_array.ndim == 3 else 1))
    tag = "seed" if w_array is None else "w"  # seed0042.png, or w0000.png for the first w of a w file
    folder = output.endswith(("/", os.sep))  # as typed: "shots.v2/" is a folder (Path() drops the slash)
    output = Path(output)
    if not folder and output.name.lower() == ".png":  # a bare suffix, not a hidden folder's name (as render)
        fail(f"{output}: give a name before the suffix (e.g. out.png), or end it with / for a folder named .png")
    if not folder and output.suffix.lower() == ".png":
        names = {k: output if len(keys) == 1 else output.with_name(f"{output.stem}-{tag}{k:04d}.png") for k in keys}
    elif not folder and output.suffix:
        fail(f"{output}: unknown image type {output.suffix!r} (use a .png file or a folder; a folder name with a dot "
             f"ends with /, e.g. {output.name}/)")
    else:
        names = {k: output / f"{tag}{k:04d}.png" for k in keys}
    check_writable(next(iter(names.values())))
    check_can_write(next(iter(names.values())))  # a probe file where the folder exists (every name shares it)
    taken = next((path for path in names.values() if is_dir(path)), None)  # e.g. -o shot.png, a folder
    if taken is not None:
        fail(f"{taken} is a folder: give a file name")
    if save_w is not None:
        check_w_output(save_w)
    _check_batch(batch)
    with open_generator(network, backend=backend.value, device=device, precision=_value(precision),
                        size=canvas) as runtime, FileSet() as files:  # all images (and the w file) appear together, or none
        ws = None if w_array is None else as_keyframes(w_array, runtime.num_ws, runtime.w_dim, str(w_file))
        shown = []  # [B, num_ws, w_dim] per batch, for --save-w
        for group, group_ws, images in still_batches(
                runtime, seed_list, ws=ws, psi=psi, cutoff=cutoff, class_idx=class_idx, mixes=mixes, rotate=rotate,
                translate=shift.offset if shift else (0.0, 0.0), batch=batch,
                edits=edits, stabilize=stabilize):
            for key, img in zip(group, images):
                data = png_bytes(img)
                files.write(names[key], lambda tmp, data=data: write_bytes(tmp, data))
            if save_w is not None:
                shown.append(group_ws.cpu().numpy())
        if save_w is not None:
            data = ws_bytes(np.concatenate(shown), save_w)
            files.write(save_w, lambda tmp: write_bytes(tmp, data))
        files.commit()
    first = names[keys[0]]
    where = first if len(names) == 1 else f"{first.parent}/ ({first.name} .. {names[keys[-1]].name})"
    typer.echo(f"wrote {len(names)} image{'s' if len(names) > 1 else ''} to {where} from {_network_note(network)}")


@app.command(epilog=(
    "Examples:\n\n"
    "  sg3rt directions net.pkl -o dirs.npz                 (SeFa over every layer)\n\n"
    "  sg3rt directions net.pkl -o coarse.npz --layers coarse --count 10\n\n"
    "  sg3rt render -n net.pkl --seeds 3 --edit dirs.npz:0:-3..3 --frames 90 -o tweak.mp4"))
@domain_errors
def directions(
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .npz (directions [K, w_dim], effect [K], method, layers).")],
    network: Annotated[Optional[Path], typer.Argument(
        help="Network file (.pkl/.safetensors); default: the embedded network.")] = None,
    method: Annotated[str, typer.Option("--method", help="sefa (closed form, from the style affines) or pca (of sampled w, GANSpace).")] = "sefa",
    layers: Annotated[Optional[str], typer.Option("--layers", help="ws layers: coarse|middle|fine|a-b (default: all); edits use them by default.")] = None,
    count: Annotated[Optional[int], typer.Option("--count", help="Keep the K strongest directions (default: all w_dim).")] = None,
    samples: Annotated[Optional[int], typer.Option("--samples", help="PCA: sampled w (default 10000, at most 100000).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="PCA: seed of the sampled z (default 0).")] = None,
    class_idx: ClassOpt = None,
) -> None:
    """Find editing directions in a network (SeFa or PCA), strongest first, for --edit FILE.npz:K:AMOUNT."""
    from .animate.directions import METHODS, compute_directions
    from .fileio import check_can_write
    from .vocab import check_choice

    check_choice(method, METHODS, "--method")
    if output.suffix != ".npz":
        fail(f"{output}: output must end in .npz")
    check_can_write(output)  # before the network loads and the directions are computed
    G = _load(network)
    found = compute_directions(G, method, layers, count, samples, seed, class_idx)
    found.save(output)
    top = ", ".join(f"{v:.3g}" for v in found.effect[:3])
    typer.echo(f"wrote {output} ({len(found.directions)} {method} directions over layers {found.layers}; "
               f"strongest effects {top})")


# eq / sticking --------------------------------------------------------------------------------------


@app.command(epilog="Example: sg3rt eq stylegan3-r-afhqv2-512x512.pkl --backend torch,onnxruntime --samples 64")
@domain_errors
def eq(
    network: NetworkArg,
    backend: Annotated[str, typer.Option("--backend", help="Comma-separated backends, optionally name:precision "
                                         "(onnxruntime = fp32 and fp16, tensorrt = fp16); torch-fused / torch-matmul / torch-conv force PyTorch's "
                                         "FIR form. torch fp32 is always the baseline.")] = "torch,onnxruntime",
    samples: Annotated[int, typer.Option("--samples", help="Latents per metric (paper: 50k). 64: about +-1 dB seed to seed; backends share the seed.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Seed of latents and transforms (same for every backend).")] = 0,
    batch: BatchOpt = 8,
    device: DeviceOpt = "auto",
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON here.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also write a bar chart PNG here.")] = None,
) -> None:
    """Equivariance of StyleGAN3 (EQ-T, EQ-T_frac, EQ-R in dB, paper appendix E) per backend.

    Flags (exit 1) an exported backend that loses more than 0.5 dB against PyTorch at its precision.
    """
    from .analysis.backends import MAX_LOSS_DB, equivariance_by_backend, parse_backends, unavailable, with_references
    from .analysis.equivariance import LABELS, METRICS
    from .analysis.report import eq_text
    from .fileio import check_can_write, write_json, write_png
    from .runtime.registry import resolve_device

    for path, suffixes in ((json_path, ()), (plot, (".png",))):  # before minutes of measuring, not after
        if path is not None:
            check_can_write(path, suffixes)
    # On a CPU, fp16 is emulated (19 min against 56 s for 16 samples on a 64 px network): fp32 unless named.
    pairs = parse_backends(backend, cpu=resolve_device(device).type == "cpu")
    for name, precision, why in unavailable(pairs, device):  # before the minutes of the torch baseline
        fail(f"{name} {precision} cannot run here: {why}")
    runs = with_references(pairs)
    rows = []
    with Bar(len(runs) * samples, "latents") as bar:
        def progress(done: int) -> None:
            b, p = runs[min(len(rows), len(runs) - 1)]
            bar.update(len(rows) * samples + done, f"{b} {p}")

        for row in equivariance_by_backend(network, pairs, device=device, samples=samples, seed=seed,
                                           batch_size=batch, progress=progress):
            rows.append(row)
            bar.update(len(rows) * samples, f"{row.backend} {row.precision}: {row.status}")
    for line in eq_text(rows):
        typer.echo(line)
    typer.echo(f"dB (difference from torch fp32); {samples} latents, seed {seed}; parity = PSNR of plain images vs torch fp32;\n"
               f"an export is judged against torch at its precision (at most {MAX_LOSS_DB:g} dB lower)")
    if json_path is not None:
        write_json(json_path, {"network": str(network), "samples": samples, "seed": seed, "device": device,
                               "max_loss_db": MAX_LOSS_DB, "rows": [r.to_dict() for r in rows]})
    if plot is not None:
        from .analysis.plot import bar_chart

        series = {f"{r.backend} {r.precision}": [r.db[m] for m in METRICS] for r in rows if r.status == "ok"}
        write_png(plot, bar_chart([LABELS[m] for m in METRICS], series, title=f"equivariance, {network.name}"))
    skipped = [r for r in rows if r.status == "skipped"]
    if skipped:  # a backend the user asked for did not run: not a success
        fail(f"{skipped[0].backend} {skipped[0].precision} was not measured: {skipped[0].reason}")
    if any(r.flagged or r.status == "error" for r in rows):
        raise typer.Exit(1)


@app.command(epilog="Example: sg3rt sticking stylegan2-ffhq-1024x1024.pkl -o sticking.png --frames 64")
@domain_errors
def sticking(
    network: Annotated[Path, typer.Argument(help="Network file (or an export directory with --backend).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG: one frame | the average of the walk.")] = Path("sticking.png"),
    frames: Annotated[int, typer.Option("--frames", help="Frames of the latent walk to average.")] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Central latent (official seed convention).")] = 0,
    radius: Annotated[float, typer.Option("--radius", help="Std of the latent steps around the centre.")] = 0.2,
    class_idx: ClassOpt = None,
    backend: BackendOpt = Backend("auto"),
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = None,
    batch: BatchOpt = 8,
) -> None:
    """Texture sticking: average a small latent walk. Stuck detail stays sharp (StyleGAN2), moving detail blurs (StyleGAN3).

    Prints the score: high-frequency energy of the average / of a single frame (1 = stuck, ~1/frames = none).
    """
    from . import open_generator
    from .analysis.sticking import side_by_side, texture_sticking
    from .fileio import check_can_write, write_png

    if output.suffix.lower() != ".png":
        fail(f"{output}: output must end in .png")
    check_can_write(output)  # before the walk is rendered
    with open_generator(network, backend=backend.value, device=device, precision=_value(precision)) as rt:
        result = texture_sticking(rt, frames=frames, seed=seed, radius=radius, batch_size=batch, class_idx=class_idx)
    write_png(output, side_by_side(result))
    typer.echo(f"sticking score {result.score:.3f} over {frames} frames "
               f"(1 = detail glued to the pixel grid, ~{1 / frames:.3f} = none); wrote {output}")


# live ----------------------------------------------------------------------------------


@app.command(epilog=(
    "Examples:\n\n"
    "  sg3rt live --open\n\n"
    "  sg3rt live net.pkl --device cuda --stream-size 512 --osc-port 9000\n\n"
    "  sg3rt live stylegan3-r.pkl --device cuda --size 1280x720   (16:9 canvas, StyleGAN3)\n\n"
    "  sg3rt live net.pkl --edit dirs.npz:0:0 --edit dirs.npz:1:0   (a slider per editing direction)\n\n"
    "  sg3rt live --audio track.wav --react pulse=0.5,speed=0.8   (the page plays the track in sync)\n\n"
    "  sg3rt live --audio-in default --react pulse=0.5,rotate=10   (the sound in the room: microphone, line-in)\n\n"
    "  sg3rt live --midi   (the first MIDI input, the default map: CC 1-8 faders, notes 36-43 pads)\n\n"
    "  sg3rt live --midi-port nano --midi-map my-map.toml\n\n"
    "  sg3rt live --host 0.0.0.0 --token s3cret   (reachable from other machines: give a token)"))
@domain_errors
def live(
    network: Annotated[Optional[Path], typer.Argument(help="Network file or export dir; default: the embedded network.")] = None,
    backend: BackendOpt = Backend("auto"),
    device: DeviceOpt = "auto",
    precision: Annotated[Optional[EnginePrecision], typer.Option("--precision", help="Default per backend (bf16: tensorrt).")] = None,
    size: SizeOpt = None,
    stream_size: Annotated[Optional[int], typer.Option(
        "--stream-size", help="Streamed frame width in pixels, scaled (default: the image's; the height keeps the aspect).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="HTTP port (0: any free port).")] = 8765,
    osc_port: Annotated[Optional[int], typer.Option("--osc-port", help="Also listen for OSC (UDP) on this port.")] = None,
    token: Annotated[Optional[str], typer.Option("--token", help="Require ?token=... in the URL and the WebSocket.")] = None,
    record_dir: Annotated[Path, typer.Option("--record-dir", help="Where recordings (MP4) are written.")] = Path("sg3rt-live"),
    open_page: Annotated[bool, typer.Option("--open", help="Open the page in the default browser.")] = False,
    edit: Annotated[Optional[list[str]], typer.Option(
        "--edit", metavar="SPEC", help="An editing direction with a slider: FILE.npz:K:AMOUNT or FILE.npy:AMOUNT "
                                       "(AMOUNT: the start), optionally @LAYERS; repeatable.")] = None,
    audio: Annotated[Optional[Path], typer.Option(
        "--audio", help="A sound track (.wav, .mp3, ...) that drives the reactions; the page plays it in sync, looping.")] = None,
    react: Annotated[Optional[str], typer.Option(
        "--react", help="Reaction amounts NAME=X,... as render's: speed (0.5), pulse (0.3), loudness, pitch, rotate, translate.")] = None,
    audio_in: Annotated[Optional[str], typer.Option(
        "--audio-in", metavar="DEVICE", help="A sound input (microphone, line-in, loopback) that drives the reactions "
                                             "as it sounds: 'default', an index or part of a name (--audio-devices).")] = None,
    audio_devices: Annotated[bool, typer.Option("--audio-devices", help="List the sound input devices and exit.")] = False,
    midi: Annotated[bool, typer.Option("--midi", help="MIDI control from the first MIDI input (needs sg3rt[midi]).")] = False,
    midi_port: Annotated[Optional[str], typer.Option(
        "--midi-port", metavar="NAME", help="MIDI control from the first input whose name contains NAME.")] = None,
    midi_map: Annotated[Optional[Path], typer.Option(
        "--midi-map", help="A MIDI map (.toml/.json: CC or pitch bend -> control, range, curve, 14-bit, pickup; notes -> actions); default: README's.")] = None,
    midi_ports: Annotated[bool, typer.Option("--midi-ports", help="List the MIDI input ports and exit.")] = False,
    cuda_graphs: CudaGraphsOpt = False,
) -> None:
    """Serve a live, controllable walk in the browser (and over OSC); prints the URL. Ctrl-C stops it."""
    from .live import run_live

    if midi_ports:
        from .live.midi import midi_input_names

        names = midi_input_names()
        for name in names:
            typer.echo(name)
        if not names:
            typer.echo("no MIDI input ports", err=True)
        return
    if audio_devices:
        from .live.audio_in import input_devices

        devices = input_devices()
        for d in devices:
            typer.echo(d.describe())
        if not devices:
            typer.echo("no sound input devices", err=True)
        return
    run_live(network, backend=backend.value, device=device, precision=_value(precision), size=_canvas(size),
             stream_size=stream_size, host=host, port=port, osc_port=osc_port, token=token, open_page=open_page,
             record_dir=record_dir, edits=tuple(edit or ()), audio=audio, react=react,
             midi=midi_port if midi_port is not None else midi, midi_map=midi_map, audio_in=audio_in,
             cuda_graphs=cuda_graphs)


def _version(value: bool) -> None:
    if value:
        from .version import __version__

        typer.echo(f"sg3rt {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """StyleGAN3/StyleGAN2 generators: inspect, convert, export, and render smooth video."""


class _Notices(logging.Handler):
    """A library log record as one plain line on (the current) stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(record.getMessage(), err=True)


def show_notices() -> None:
    """The library's notices (its `logging` INFO lines, e.g. the CPU kernels compiling on a first run) as
    plain lines on stderr; a library user gets them with logging.basicConfig(level=logging.INFO)."""
    log = logging.getLogger(__package__ or "sg3rt")
    if not any(isinstance(h, _Notices) for h in log.handlers):
        log.addHandler(_Notices())
    log.setLevel(logging.INFO)


def main() -> None:
    """Console-script entry point: SIGTERM and SIGHUP stop a command as Ctrl-C does."""
    import warnings

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_terminated)
    warnings.showwarning = _show_warning
    show_notices()
    app(prog_name="sg3rt")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
