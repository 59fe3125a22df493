"""CPU batches: the torch runtime keeps glibc's heap across calls (no page faults for a reused buffer),
and ONNX Runtime's CPU synthesis runs one image per session call with the same images as a batch."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest
import torch
from refdata import reference_file

PROBE = """
import json, resource, sys, torch
from sg3rt.runtime import open_generator
from sg3rt.runtime.cpu_allocator import keep_cpu_memory
rt = open_generator(sys.argv[1], backend="torch", device="cpu")  # applies the setting (or not)
def faults(n_bytes):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(n_bytes // 4, dtype=torch.float32)
    t.fill_(1.0)  # touch every page
    del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
first = faults(64 << 20)
again = min(faults(64 << 20) for _ in range(4))  # a small allocation may split the freed block once
print(json.dumps({"settings": keep_cpu_memory(), "first": first, "again": again}))
"""
PAGES_64MIB = (64 << 20) // 4096


def probe(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(reference_file("sg2_64.pkl"))], env={**os.environ, **env},
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc mallopt only")
def test_torch_cpu_runtime_keeps_freed_memory():
    kept = probe({"SG3RT_KEEP_CPU_MEMORY": "1"})
    assert kept["settings"] == {"M_MMAP_MAX": 0, "M_TRIM_THRESHOLD": 2**31 - 1}
    assert kept["first"] > PAGES_64MIB // 2  # a fresh 64 MiB buffer faults its pages in
    assert kept["again"] < PAGES_64MIB // 10  # the freed one is reused: no new faults
    default = probe({"SG3RT_KEEP_CPU_MEMORY": "0"})  # glibc's own: mmap per large block, unmapped on free
    assert default["settings"] == {} and default["again"] > PAGES_64MIB // 2


def test_keep_cpu_memory_is_a_noop_where_it_cannot_apply(monkeypatch):
    from sg3rt.runtime import cpu_allocator

    monkeypatch.setattr(cpu_allocator, "_applied", None)
    monkeypatch.setattr(cpu_allocator.platform, "system", lambda: "Darwin")
    assert cpu_allocator.keep_cpu_memory() == {}
    assert cpu_allocator.keep_cpu_memory() == {}  # once per process


def test_ort_cpu_batches_run_as_single_images(monkeypatch):
    from sg3rt.runtime import onnxruntime_backend, open_generator

    # one thread: calls one after the other on the main session (several threads: side by side, one image
    # each, on a single-threaded one; test_export_forms checks those pixels)
    with open_generator(reference_file("sg3r_64.pkl"), backend="onnxruntime", device="cpu", threads=1) as rt:
        ws = rt.mapping(torch.randn(3, rt.z_dim, generator=torch.Generator().manual_seed(1)), None, 0.7)
        session = rt.sessions["synthesis"]
        batches = []
        real_run = session.run

        class Spy:
            def run(self, outputs, feed):
                batches.append(feed["ws"].shape[0])
                return real_run(outputs, feed)

        rt.sessions["synthesis"] = Spy()
        img = rt.synthesis(ws)
        assert batches == [1, 1, 1] and img.shape == (3, 3, 64, 64)
        monkeypatch.setattr(onnxruntime_backend, "CPU_SYNTHESIS_CHUNK", 3)
        batches.clear()
        whole = rt.synthesis(ws)
        assert batches == [3] and float((whole - img).abs().max()) <= 1e-5
