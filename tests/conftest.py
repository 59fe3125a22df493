"""Shared fixtures: the reference networks (loaded once per session) and the GPU marker."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `from refdata import ...` in every test

from refdata import reference_file  # noqa: E402


def _triton_language_for_the_interpreter() -> None:
    """Without CUDA, triton.language's own @jit helpers must be made in interpreter mode, which triton reads
    once, when it is first imported. Import it so now, before any test: otherwise whichever test first
    imports it (torch.compile does; torch's meta-device ops do through torch._dynamo) decides for the
    interpreter tests (triton_cpu.py), whose kernels then fail to call those helpers."""
    if torch.cuda.is_available():
        return
    before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        import triton.language  # noqa: F401
    except ImportError:  # no triton: its tests skip with the reason
        pass
    finally:
        if before is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = before


_triton_language_for_the_interpreter()


@pytest.fixture(scope="session", autouse=True)
def export_cache(tmp_path_factory):
    """ONNX exports and engines made by the tests go to a temp folder, never to ~/.cache/sg3rt."""
    path = tmp_path_factory.mktemp("sg3rt-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("SG3RT_CACHE_DIR", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="session")
def load_reference():
    """name -> Generator loaded from the official pickle (cached for the session)."""
    from sg3rt import load_generator

    cache = {}

    def load(name: str):
        if name not in cache:
            cache[name] = load_generator(reference_file(f"{name}.pkl"))
        return cache[name]

    return load


@pytest.fixture(scope="session")
def exported(tmp_path_factory, load_reference):
    """(name, export_onnx options...) -> export dir (the tests of export and its forms); each network and option set is exported once per session."""
    cache = {}

    def export(name: str, **options):
        key = (name, tuple(sorted(options.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp("export") / name
            from sg3rt.export import export_onnx

            export_onnx(load_reference(name), out, source=reference_file(f"{name}.pkl"), **options)
            cache[key] = out
        return cache[key]

    return export


@pytest.fixture
def official_modules(monkeypatch) -> list[Any]:
    """Stand-ins for `torch_utils.persistence` so pickle can name it while writing test files.

    Returns the list of calls the stand-in saw: the reader must never call it.
    """
    calls: list[Any] = []

    def _reconstruct_persistent_obj(meta: Any) -> None:
        calls.append(meta)

    package = types.ModuleType("torch_utils")
    persistence = types.ModuleType("torch_utils.persistence")
    _reconstruct_persistent_obj.__module__ = persistence.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj  # type: ignore[attr-defined]
    package.persistence = persistence  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch_utils", package)
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    return calls


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip cleanly, with the reason, where torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
