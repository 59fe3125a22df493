"""The equivariance table, as text (the CLI) and markdown (benchmarks/ and the README): one layout."""

from __future__ import annotations

from typing import Iterable

from .backends import BASELINE, BackendRow
from .equivariance import LABELS, METRICS


def _cells(row: BackendRow) -> tuple[list[str], str, str]:
    """(metric cells 'dB (delta)', parity, verdict) of one measured row."""
    base = (row.backend, row.precision) == BASELINE
    metrics = [f"{row.db[m]:.2f}" + ("" if base else f" ({row.delta[m]:+.2f})") for m in METRICS]
    return metrics, "-" if base else f"{row.parity_db:.1f}", row.verdict()


def eq_text(rows: Iterable[BackendRow]) -> list[str]:
    """Fixed-width lines: backend, precision, EQ-T / EQ-T_frac / EQ-R in dB (difference from torch fp32), parity, verdict."""
    lines = [f"{'backend':<12} {'prec':<5} " + " ".join(f"{LABELS[m]:>17}" for m in METRICS) + f" {'parity':>7}  verdict"]
    for row in rows:
        if row.status != "ok":
            lines.append(f"{row.backend:<12} {row.precision:<5} {row.status}: {row.reason}")
            continue
        metrics, parity, verdict = _cells(row)
        lines.append(f"{row.backend:<12} {row.precision:<5} " + " ".join(f"{c:>17}" for c in metrics)
                     + f" {parity:>7}  {verdict}")
    return lines


def eq_markdown_header() -> list[str]:
    return [f"| network | backend | precision | {' | '.join(LABELS[m] + ' (dB)' for m in METRICS)} | parity (dB) | verdict |",
            "|" + " --- |" * (len(METRICS) + 5)]


def eq_markdown_row(network: str, row: BackendRow) -> str:
    """One table row (a skipped or failed backend says why)."""
    if row.status != "ok":
        return f"| {network} | {row.backend} | {row.precision} | {row.status}: {row.reason} |"
    metrics, parity, verdict = _cells(row)
    return (f"| {network} | {row.backend} | {row.precision} | {' | '.join(metrics)} | {parity} | "
            f"{verdict.replace('FLAGGED', '**FLAGGED**')} |")
