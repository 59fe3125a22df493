"""The `sg3rt` command line: parses options and calls the library; no logic of its own.

Every `Sg3rtError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from .errors import Sg3rtError

app = typer.Typer(
    name="sg3rt",
    help="StyleGAN3/StyleGAN2 generators: inspect, convert, export, and render smooth video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Shared option aliases -----------------------------------------------------------------------------
NetworkArg = Annotated[Path, typer.Argument(help="Network file: official .pkl or sg3rt .safetensors.")]
OptionalNetwork = Annotated[
    Optional[Path],
    typer.Option("--network", "-n", help="Network file (.pkl/.safetensors) or export dir; default: the embedded network."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


def _load(network: Optional[Path]):
    from .networks import load_generator
    from .networks.default import default_generator

    return default_generator() if network is None else load_generator(network)


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
    path = network
    G = _load(path)
    summary = G.summary()
    summary["source"] = str(path) if path else "embedded default network (untrained StyleGAN3-R, random weights)"
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    rows = [("source", summary["source"]), ("kind", summary["kind"]),
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
def convert(
    network: NetworkArg,
    output: Annotated[Path, typer.Argument(help="Output .safetensors file.")],
    key: Annotated[Optional[str], typer.Option(help="Pickle entry to read (default: G_ema, else G).")] = None,
) -> None:
    """Convert an official network pickle to sg3rt's .safetensors format (exact, no pickle needed to load).

    Example: sg3rt convert stylegan3-t-ffhq-1024x1024.pkl ffhq-t.safetensors
    """
    from .networks import load_generator, save_generator

    if output.suffix != ".safetensors":
        fail(f"{output}: output must end in .safetensors")
    G = load_generator(network, key=key)
    save_generator(G, output)
    typer.echo(f"wrote {output} ({G.kind}, {G.img_resolution}px, {G.summary()['params']:,} parameters)")


# export / build / bench (runtime issue) -------------------------------------------------------------


# render / image (animate issue) ---------------------------------------------------------------------


# eq / sticking (equivariance issue) -----------------------------------------------------------------


def main() -> None:
    """Console-script entry point."""
    app(prog_name="sg3rt")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
