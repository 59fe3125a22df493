"""Generator architectures (StyleGAN3 R/T, StyleGAN2) and network files."""

from .files import load_generator, network_format, save_generator
from .frames import to_uint8_frames
from .generator import Generator, on_device
from .layers import set_fir_impl
from .stylegan3 import input_transform

__all__ = ["Generator", "on_device", "load_generator", "network_format", "save_generator", "input_transform",
           "set_fir_impl", "to_uint8_frames"]
