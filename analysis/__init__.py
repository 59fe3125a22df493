"""Analysis: the StyleGAN3 paper's equivariance metrics and texture-sticking check, over any runtime."""

from .backends import MAX_LOSS_DB, BackendRow, equivariance_by_backend, parse_backends
from .equivariance import METRICS, EquivarianceResult, equivariance_batches, measure_equivariance
from .sticking import StickingResult, side_by_side, texture_sticking

__all__ = [
    "METRICS",
    "MAX_LOSS_DB",
    "EquivarianceResult",
    "measure_equivariance",
    "equivariance_batches",
    "BackendRow",
    "equivariance_by_backend",
    "parse_backends",
    "StickingResult",
    "texture_sticking",
    "side_by_side",
]
