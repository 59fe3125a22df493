"""The package version, defined once at the bottom (the front door and model.json read it)."""

__version__ = "0.1.0"
