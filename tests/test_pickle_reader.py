"""The restricted pickle reader: official pickles become exact data, and nothing in a file runs."""

from __future__ import annotations

import io
import json
import os
import pickle
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sg3rt.errors import NetworkFileError, UnsafePickleError
from sg3rt.networks.pickle_reader import NetworkRecord, read_network_pickle

from official_format import Persistent as _Persistent, module_meta
from refdata import REFERENCES, reference_file



def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    """A file under tmp_path holding `data`."""
    target = tmp_path / name
    target.write_bytes(data)
    return target


def global_call_pickle(module: str, name: str, arg: Any) -> bytes:
    """A protocol-0 pickle that calls `module.name(arg)` when an unrestricted unpickler loads it."""
    return f"c{module}\n{name}\n(".encode() + pickle.dumps(arg, protocol=0)[:-1] + b"tR."


# ---------------------------------------------------------------------------------------------------
# The reference pickles made with the official implementation.


@pytest.fixture(scope="module", params=REFERENCES)
def reference(request: pytest.FixtureRequest) -> tuple[str, NetworkRecord]:
    name = request.param
    return name, read_network_pickle(reference_file(f"{name}.pkl"))


def test_reference_state_dict_is_exact(reference: tuple[str, NetworkRecord]) -> None:
    name, record = reference
    expected = np.load(reference_file(f"{name}.npz"))
    assert set(record.state_dict) == set(expected.files)
    for key in expected.files:
        got = record.state_dict[key].numpy()
        assert got.dtype == expected[key].dtype, key
        assert got.tobytes() == expected[key].tobytes(), key  # bit-identical, shape included below
        assert got.shape == expected[key].shape, key


def test_reference_init_kwargs_and_class(reference: tuple[str, NetworkRecord]) -> None:
    name, record = reference
    expected = json.loads(reference_file(f"{name}.json").read_text())
    assert record.init_kwargs == expected["init_kwargs"]
    assert type(record.init_kwargs) is dict
    assert all(type(v) is dict for v in record.init_kwargs.values() if isinstance(v, dict))
    assert record.class_name == expected["class_name"].rsplit(".", 1)[-1] == "Generator"


def test_reference_tensors_are_plain_cpu(reference: tuple[str, NetworkRecord]) -> None:
    _, record = reference
    for key, tensor in record.state_dict.items():
        assert type(tensor) is torch.Tensor, key
        assert tensor.device.type == "cpu" and tensor.is_contiguous() and not tensor.requires_grad, key


def test_reference_child_classes(reference: tuple[str, NetworkRecord]) -> None:
    name, record = reference
    assert record.child_classes["synthesis"] == "SynthesisNetwork"
    assert record.child_classes["mapping"] == "MappingNetwork"
    if name.startswith("sg3"):
        assert record.child_classes["synthesis.input"] == "SynthesisInput"
        assert "SynthesisBlock" not in record.child_classes.values()
    else:
        assert record.child_classes["synthesis.b4"] == "SynthesisBlock"
        assert "SynthesisInput" not in record.child_classes.values()


def test_explicit_key_g() -> None:
    path = reference_file("sg2_64.pkl")
    record = read_network_pickle(path, key="G")
    assert record.class_name == "Generator"
    assert set(record.state_dict) == set(read_network_pickle(path).state_dict)


def test_missing_key_is_an_error() -> None:
    with pytest.raises(NetworkFileError, match=r"no network 'nope' in .*sg2_64\.pkl"):
        read_network_pickle(reference_file("sg2_64.pkl"), key="nope")


# ---------------------------------------------------------------------------------------------------
# Hostile pickles: refused by name, and nothing in them runs.


class _RunsShellCommand:
    """Pickles as a call of os.system, the classic pickle exploit."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """A file that exists only if a hostile pickle managed to run its command."""
    return tmp_path / f"PWNED_{uuid.uuid4().hex}"


def test_os_system_is_refused_and_not_run(tmp_path: Path, marker: Path) -> None:
    path = write_bytes(tmp_path, "evil.pkl", global_call_pickle("os", "system", f"touch {marker}"))
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*os\.system"):
        read_network_pickle(path)
    assert not marker.exists()


def test_reduce_exploit_is_refused_and_not_run(tmp_path: Path, marker: Path) -> None:
    evil = {"G_ema": _RunsShellCommand(f"touch {marker}")}
    path = write_bytes(tmp_path, "evil.pkl", pickle.dumps(evil, protocol=4))
    with pytest.raises(UnsafePickleError, match=r"(os|posix)\.system"):  # os.system lives in posix
        read_network_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("module", "name", "arg"),
    [
        ("builtins", "eval", "__import__('os').getcwd()"),
        ("subprocess", "Popen", ["true"]),
        ("torch", "load", "x.pt"),  # a torch attribute that is not a dtype
        ("sg3rt_never_imported", "boom", 1),  # refused before any import is tried
    ],
)
def test_other_globals_are_refused(tmp_path: Path, module: str, name: str, arg: Any) -> None:
    path = write_bytes(tmp_path, "evil.pkl", global_call_pickle(module, name, arg))
    with pytest.raises(UnsafePickleError, match=rf"{module}\.{name} is not on the allow-list"):
        read_network_pickle(path)
    assert "sg3rt_never_imported" not in sys.modules


class _StoragePayload:
    """Pickles as torch's storage loader applied to bytes that are a torch.save of an exploit."""

    def __init__(self, command: str) -> None:
        buffer = io.BytesIO()
        torch.save(_RunsShellCommand(command), buffer, _use_new_zipfile_serialization=False)
        self.payload = buffer.getvalue()

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return torch.storage._load_from_bytes, (self.payload,)


def test_storage_payload_with_code_is_refused(tmp_path: Path, marker: Path) -> None:
    evil = {"G_ema": _StoragePayload(f"touch {marker}")}
    path = write_bytes(tmp_path, "evil.pkl", pickle.dumps(evil, protocol=4))
    with pytest.raises(UnsafePickleError, match=r"tensor storage payload.*system"):
        read_network_pickle(path)
    assert not marker.exists()


def test_numpy_object_array_is_refused(tmp_path: Path) -> None:
    data = pickle.dumps({"G_ema": np.array([1, "a"], dtype=object)}, protocol=4)
    with pytest.raises(UnsafePickleError, match="numpy object dtype"):
        read_network_pickle(write_bytes(tmp_path, "objects.pkl", data))


# ---------------------------------------------------------------------------------------------------
# Files that are not network pickles.


def test_random_bytes(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "random.bin", np.random.default_rng(0).bytes(4096))
    with pytest.raises(NetworkFileError, match=r"random\.bin: not a network pickle"):
        read_network_pickle(path)


def test_text_file(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "notes.txt", b"hello, this is not a pickle\n")
    with pytest.raises(NetworkFileError, match=r"notes\.txt: not a network pickle"):
        read_network_pickle(path)


def test_truncated_pickle(tmp_path: Path) -> None:
    data = reference_file("sg3r_64.pkl").read_bytes()
    path = write_bytes(tmp_path, "half.pkl", data[: len(data) // 2])
    with pytest.raises(NetworkFileError, match=r"half\.pkl: .*truncated"):
        read_network_pickle(path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(NetworkFileError, match=r"empty\.pkl: is empty"):
        read_network_pickle(write_bytes(tmp_path, "empty.pkl", b""))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NetworkFileError, match=r"absent\.pkl: no such file"):
        read_network_pickle(tmp_path / "absent.pkl")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(NetworkFileError, match="is a directory"):
        read_network_pickle(tmp_path)


@pytest.mark.parametrize("top", [{"D": 1, "training_set_kwargs": {}}, [1, 2, 3], None])
def test_no_generator(tmp_path: Path, top: Any) -> None:
    path = write_bytes(tmp_path, "nogen.pkl", pickle.dumps(top, protocol=4))
    with pytest.raises(NetworkFileError, match=r"no generator \(G_ema or G\) in .*nogen\.pkl"):
        read_network_pickle(path)


def test_errors_are_one_line(tmp_path: Path) -> None:
    evil = {"G_ema": _StoragePayload("true")}
    path = write_bytes(tmp_path, "evil.pkl", pickle.dumps(evil, protocol=4))
    with pytest.raises(NetworkFileError) as caught:
        read_network_pickle(path)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------------------------------------
# Hand-made official-format pickles: persistence records built without the official code.


def test_hand_made_generator(tmp_path: Path, official_modules: list[Any]) -> None:
    weight = torch.arange(6, dtype=torch.float16).reshape(2, 3)
    child = _Persistent(module_meta(
        "FullyConnectedLayer", _parameters={"weight": torch.nn.Parameter(weight), "bias": None},
        _buffers={"kept": torch.ones(2), "dropped": torch.zeros(2), "unset": None},
        _non_persistent_buffers_set={"dropped"}, _modules={}))
    top = _Persistent(module_meta(
        "Generator", _parameters={}, _buffers={}, _modules={"fc": child, "gone": None},
        _init_kwargs={"z_dim": 4, "nested": {"a": np.float64(0.5)}}, _init_args=()))
    path = write_bytes(tmp_path, "made.pkl", pickle.dumps({"G": top}, protocol=4))
    record = read_network_pickle(path)
    assert official_modules == []
    assert record.class_name == "Generator"
    assert record.init_kwargs == {"z_dim": 4, "nested": {"a": 0.5}}
    assert type(record.init_kwargs["nested"]["a"]) is float
    assert record.child_classes == {"fc": "FullyConnectedLayer"}
    assert list(record.state_dict) == ["fc.weight", "fc.kept"]
    assert record.state_dict["fc.weight"].dtype == torch.float16
    assert torch.equal(record.state_dict["fc.weight"], weight)


def test_generator_without_init_kwargs(tmp_path: Path, official_modules: list[Any]) -> None:
    top = _Persistent(module_meta("Generator", _parameters={}, _buffers={}, _modules={}))
    path = write_bytes(tmp_path, "nokw.pkl", pickle.dumps({"G_ema": top}, protocol=4))
    with pytest.raises(NetworkFileError, match=r"nokw\.pkl: Generator has no _init_kwargs"):
        read_network_pickle(path)


def test_persistent_record_not_a_class(tmp_path: Path, official_modules: list[Any]) -> None:
    meta = module_meta("Generator")
    meta["type"] = "function"
    path = write_bytes(tmp_path, "func.pkl", pickle.dumps({"G_ema": _Persistent(meta)}, protocol=4))
    with pytest.raises(NetworkFileError, match=r"func\.pkl: .*type 'function', expected 'class'"):
        read_network_pickle(path)
    assert official_modules == []
