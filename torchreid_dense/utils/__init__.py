"""Small utilities shared by the plugin."""
from .io import atomic_torch_save, atomic_write, save_png
