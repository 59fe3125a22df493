"""`sg3rt doctor`: every row tells the truth about this machine, and a missing or broken part is a row, not a crash."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from typer.testing import CliRunner

from sg3rt import doctor
from sg3rt.cli import app


@pytest.fixture(scope="module")
def rows() -> dict[str, doctor.Check]:
    return {r.name: r for r in doctor.run_checks()}


def test_every_check_reports_in_order(rows):
    assert list(rows) == list(doctor.CHECKS)
    assert rows["PyTorch"].ok and torch.__version__ in rows["PyTorch"].detail
    assert all(r.detail and "\n" not in r.detail for r in rows.values())  # one line each


def test_rows_match_what_the_runtime_does(rows):
    from sg3rt.animate.writers import check_encoder
    from sg3rt.errors import BackendUnavailableError
    from sg3rt.networks.filtered_lrelu import fused_reason
    from sg3rt.networks.filtered_lrelu_cpu import cpu_reason

    assert rows["CUDA GPU"].ok == torch.cuda.is_available()
    if torch.cuda.is_available():
        assert rows["fused kernels"].ok == (fused_reason(torch.empty(1, device="cuda", dtype=torch.float16)) is None)
    else:
        assert not rows["fused kernels"].ok and "no CUDA GPU" in rows["fused kernels"].detail
    assert rows["CPU kernels"].ok == (cpu_reason(torch.empty(1), None) is None)
    assert rows["ONNX Runtime"].ok and "CPUExecutionProvider" in rows["ONNX Runtime"].detail
    assert rows["ffmpeg"].ok and "--codec h264" in rows["ffmpeg"].detail
    try:
        check_encoder("h264-nvenc")
        nvenc_opens = True
    except BackendUnavailableError as e:
        nvenc_opens = False
        assert rows["NVENC"].detail == str(e)  # the render's own one-line reason
    assert rows["NVENC"].ok == nvenc_opens
    assert rows["live (web)"].ok  # the test extra installs the live extra


def test_a_missing_package_is_a_row_with_its_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    [row] = doctor.run_checks(only=("ONNX Runtime",))
    assert not row.ok and "pip install onnxruntime" in row.detail


def test_without_numba_the_cpu_kernels_row_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "sg3rt.networks.filtered_lrelu_numba", None)  # the kernels' import fails
    [row] = doctor.run_checks(only=("CPU kernels",))
    assert not row.ok and "pip install numba" in row.detail and "plain PyTorch" in row.detail


def test_a_broken_check_is_a_row_not_a_crash(monkeypatch):
    def broken():
        raise RuntimeError("libsomething.so: cannot open shared object file\nsecond line")

    monkeypatch.setitem(doctor.CHECKS, "MIDI", broken)
    [row] = doctor.run_checks(only=("MIDI",))
    assert row == doctor.Check("MIDI", False, "libsomething.so: cannot open shared object file")


def test_cli_table_and_json():
    table = CliRunner().invoke(app, ["doctor", "--no-probe"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert [line.split("  ")[0].strip() for line in lines] == list(doctor.CHECKS)
    assert any(line.startswith("NVENC") and "not probed" in line for line in lines)
    out = CliRunner().invoke(app, ["doctor", "--no-probe", "--json"])
    assert out.exit_code == 0
    assert [r["name"] for r in json.loads(out.output)] == list(doctor.CHECKS)
