"""Generator architectures (StyleGAN3 R/T, StyleGAN2) and network files."""

from .files import load_generator, save_generator
from .generator import KINDS, Generator
from .stylegan3 import input_transform

__all__ = ["Generator", "KINDS", "load_generator", "save_generator", "input_transform"]
