"""Official-format pickles made in tests, without the official code (see conftest `official_modules`)."""

from __future__ import annotations

import sys
from typing import Any


class Persistent:
    """Pickles the way `torch_utils.persistence` pickles an official module."""

    def __init__(self, meta: dict) -> None:
        self.meta = meta

    def __reduce__(self) -> tuple[Any, tuple[dict]]:
        return sys.modules["torch_utils.persistence"]._reconstruct_persistent_obj, (self.meta,)


def module_meta(class_name: str, **state: Any) -> dict:
    """An official persistence record around a module state."""
    return {"type": "class", "version": 6, "module_src": "raise SystemExit", "class_name": class_name,
            "state": state}
