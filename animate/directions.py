"""Editing directions found in the network itself, without labels: SeFa and GANSpace-style PCA.

SeFa (Shen & Zhou 2021): every style affine maps w to styles linearly, so the directions of w that
move the styles most are the top eigenvectors of A^T A, A = the stacked affine weights. PCA (Harkonen
et al. 2020, GANSpace): the principal axes of sampled w. Both are ranked by effect, largest first,
and written to a .npz (directions [K, w_dim] unit rows, effect [K], method, layers) that `--edit` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..fileio import atomic_write
from ..vocab import STYLEGAN2
from .paths import layer_range
from .seeds import MAX_SEED, class_labels

METHODS = ("sefa", "pca")
PCA_SAMPLES = 10_000  # sampled w for PCA: enough for stable leading axes of a 512-wide w
MAX_PCA_SAMPLES = 100_000  # PCA holds every sampled w (a few copies, float64): ~1.6 GB at w_dim 512
PCA_SEED = 0  # RandomState seed of PCA's z samples (deterministic directions)


@dataclass(frozen=True, eq=False)
class Directions:
    """Unit directions in W ranked by effect (SeFa eigenvalues or PCA explained variance)."""

    directions: np.ndarray  # [K, w_dim] float64, unit rows
    effect: np.ndarray  # [K] float64, descending
    method: str  # sefa | pca
    layers: str  # ws layers the directions were computed for ("all" or a --mix style range)

    def save(self, path: str | Path) -> Path:
        """Write the .npz atomically (a temp name, then rename)."""
        path = Path(path)
        if path.suffix != ".npz":
            raise InputError(f"{path}: directions are written to a .npz file")

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, directions=self.directions.astype(np.float32), effect=self.effect.astype(np.float32),
                         method=np.array(self.method), layers=np.array(self.layers))

        atomic_write(path, write)
        return path


def _fixed_signs(vectors: np.ndarray) -> np.ndarray:
    """[K, D] with each row's largest-magnitude entry positive: eigenvectors' signs are arbitrary, ours are not."""
    idx = np.argmax(np.abs(vectors), axis=1)
    signs = np.sign(vectors[np.arange(len(vectors)), idx])
    return vectors * np.where(signs == 0, 1.0, signs)[:, None]


def style_affines(G: Any) -> list[tuple[int, torch.nn.Module]]:
    """(ws index the affine reads, the affine) for every style affine of G's synthesis network."""
    syn = G.synthesis
    if G.kind != STYLEGAN2:  # ws[0] -> the Fourier input (rotation/translation), ws[i+1] -> layer i
        return [(0, syn.input.affine)] + [(i + 1, getattr(syn, n).affine) for i, n in enumerate(syn.layer_names)]
    found, w_idx = [], 0
    for res in syn.block_resolutions:  # StyleGAN2: conv0, conv1, torgb of a block read consecutive ws
        block = getattr(syn, f"b{res}")
        convs = [m for m in (getattr(block, "conv0", None), block.conv1) if m is not None]
        found += [(w_idx + k, m.affine) for k, m in enumerate(convs)]
        if block.num_torgb:
            found.append((w_idx + block.num_conv, block.torgb.affine))
        w_idx += block.num_conv
    return found


def _layer_window(layers: str | None, num_ws: int) -> tuple[int, int]:
    return (0, num_ws) if layers in (None, "all") else layer_range(layers, num_ws)


def sefa_directions(G: Any, layers: str | None = None, k: int | None = None) -> Directions:
    """Top-k eigenvectors of A^T A over the affines reading ws layers `layers` (None = all).

    As in SeFa's reference code, each style channel's weight row is normalised to unit length first,
    so every channel counts once however large its trained weights are.
    """
    start, stop = _layer_window(layers, G.num_ws)
    rows = []
    for idx, affine in style_affines(G):
        if start <= idx < stop:
            rows.append(affine.weight.detach().double().cpu().numpy() * affine.weight_gain)  # [out, w_dim]
    a = np.concatenate(rows, axis=0)  # [sum(out), w_dim]
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-30)
    values, vectors = np.linalg.eigh(a.T @ a)  # ascending; vectors in columns, orthonormal
    order = np.argsort(values)[::-1][: k or len(values)]
    return Directions(_fixed_signs(vectors[:, order].T), values[order], "sefa", layers or "all")


def sample_w(G: Any, samples: int = PCA_SAMPLES, seed: int = PCA_SEED, class_idx: int | None = None,
             batch: int = 1000) -> np.ndarray:  # [samples, w_dim] float64
    """w = mapping(z), z ~ N(0, I) from RandomState(seed), untruncated (the first ws layer: all are equal).

    z is drawn batch by batch: the same numbers as one randn(samples, z_dim), without holding them all.
    """
    rng = np.random.RandomState(seed)
    c1 = class_labels(G.c_dim, class_idx, 1)
    out = []
    with torch.no_grad():
        for i in range(0, samples, batch):
            zb = torch.from_numpy(rng.randn(min(batch, samples - i), G.z_dim).astype(np.float32))
            c = None if c1 is None else torch.from_numpy(np.repeat(c1, len(zb), axis=0))
            out.append(G.mapping(zb, c)[:, 0].double().cpu().numpy())
    return np.concatenate(out)


def pca_directions(w: np.ndarray, k: int | None = None, layers: str | None = None) -> Directions:
    """Principal axes of sampled w [N, w_dim], ranked by explained variance: the k strongest (None = all),
    and never more than N - 1: N centred samples span at most N - 1 dimensions, so any further axis is an
    arbitrary vector of the null space (variance 0), not a direction of the network."""
    if w.ndim != 2 or len(w) < 2:
        raise InputError(f"PCA needs at least two samples of w [N, w_dim], got shape {tuple(w.shape)}")
    centred = w - w.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)  # s descending
    variance = s**2 / (len(w) - 1)
    n = min(k or len(s), len(s), len(w) - 1)
    return Directions(_fixed_signs(vt[:n]), variance[:n], "pca", layers or "all")


def compute_directions(G: Any, method: str = "sefa", layers: str | None = None, k: int | None = None,
                       samples: int | None = None, seed: int | None = None, class_idx: int | None = None) -> Directions:
    """SeFa or PCA directions of a torch Generator (what `sg3rt directions` writes).

    `samples` (2..MAX_PCA_SAMPLES, default PCA_SAMPLES) and `seed` (0..MAX_SEED, default PCA_SEED) are PCA's:
    with SeFa, any value is an error rather than silently unused. PCA gives at
    most samples - 1 directions (see pca_directions).
    """
    if method not in METHODS:
        raise InputError(f"unknown --method {method!r} (choose from {', '.join(METHODS)})")
    if k is not None and k < 1:
        raise InputError(f"--count must be at least 1, got {k}")
    if method != "pca":
        given = [f"--{name} {v}" for name, v in (("samples", samples), ("seed", seed)) if v is not None]
        if given:
            raise InputError(f"--samples and --seed apply to --method pca, not {method} (got {', '.join(given)})")
    samples = PCA_SAMPLES if samples is None else samples
    seed = PCA_SEED if seed is None else seed
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or not 2 <= samples <= MAX_PCA_SAMPLES:
        raise InputError(f"--samples must be an integer from 2 to {MAX_PCA_SAMPLES} (PCA holds every sampled w in "
                         f"memory; the default {PCA_SAMPLES} is plenty for the leading axes), got {samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"--seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    _layer_window(layers, G.num_ws)  # a bad range fails before any work
    if class_idx is not None:  # a class the network does not have fails too (SeFa itself needs none)
        class_labels(G.c_dim, class_idx, 1)
    if method == "sefa":
        return sefa_directions(G, layers, k)
    return pca_directions(sample_w(G, samples, seed, class_idx), k, layers)
