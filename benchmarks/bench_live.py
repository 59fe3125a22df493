"""`sg3rt live` as a page sees it: frames/s received, and control-to-photon latency.

    python benchmarks/bench_live.py                              # CPU, embedded network (128 px)
    python benchmarks/bench_live.py --device cuda --res 256,512,1024 [--backend auto] [--precision fp16]

The server runs in this process exactly as `sg3rt live` runs it (the render loop on the main thread, uvicorn on
another); the client is a separate process (like a browser) that decodes every JPEG it gets and acknowledges
it, as the page does. Frames/s: frames received over --seconds. Latency: time from sending a control message (a new
rotation angle, so every frame differs) to having decoded the first frame whose controls version
includes it; median and 95th percentile over --trials. Targets on 2 CPU cores with the embedded
network: >= 20 frames/s at 128 px, latency <= 150 ms. Prints a table; writes
benchmarks/results/live_<device>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_FPS, TARGET_LATENCY_MS = 20.0, 150.0  # CPU, embedded network, 128 px


def client(url: str, seconds: float, trials: int) -> dict:
    """Runs in its own process: receive and decode frames like the page does, then time control changes."""
    from PIL import Image
    from websockets.sync.client import connect

    from sg3rt.live.protocol import split_frame

    def frame(ws, timeout=30.0):
        """Next frame message (skipping text), decoded; (seq, version) after acknowledging it."""
        while True:
            msg = ws.recv(timeout=timeout)
            if isinstance(msg, bytes):
                seq, version, jpeg = split_frame(msg)
                Image.open(io.BytesIO(jpeg)).load()  # decode, as the page does before drawing
                ws.send(json.dumps({"ack": seq}))
                return seq, version

    def reply(ws):
        while True:
            msg = ws.recv(timeout=30.0)
            if isinstance(msg, str) and json.loads(msg)["type"] in ("ok", "error"):
                return json.loads(msg)
            if isinstance(msg, bytes):
                ws.send(json.dumps({"ack": split_frame(msg)[0]}))

    with connect(url, max_size=None) as ws:
        for _ in range(5):  # warm-up
            frame(ws)
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            frame(ws)
            n += 1
        fps = n / (time.perf_counter() - t0)
        latencies = []
        for i in range(trials):
            sent = time.perf_counter()
            ws.send(json.dumps({"set": {"rotate": float((i * 37) % 360 - 180)}}))
            version = None
            # frames may arrive before the reply: keep them until the reply says which version to wait for
            pending = []
            while version is None:
                msg = ws.recv(timeout=30.0)
                if isinstance(msg, bytes):
                    seq, v, jpeg = split_frame(msg)
                    Image.open(io.BytesIO(jpeg)).load()
                    pending.append((v, time.perf_counter()))
                    ws.send(json.dumps({"ack": seq}))
                elif json.loads(msg)["type"] == "ok":
                    version = json.loads(msg)["version"]
            seen = [t for v, t in pending if v >= version]
            if seen:
                latencies.append((seen[0] - sent) * 1000)
                continue
            while True:
                _, v = frame(ws)
                if v >= version:
                    latencies.append((time.perf_counter() - sent) * 1000)
                    break
            time.sleep(0.05)  # controls arrive at random phases of the render loop
    latencies.sort()
    return {"client_fps": fps, "latency_ms_median": statistics.median(latencies),
            "latency_ms_p95": latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))],
            "trials": trials}


def screenshot(path: Path, network, args) -> None:
    """The page in headless Chromium (Debian's, via Playwright), a few seconds into a walk, saved as PNG."""
    import shutil

    from playwright.sync_api import sync_playwright

    from sg3rt.live import LiveSession
    from sg3rt.live.server import LiveServer
    from sg3rt.runtime import open_generator

    runtime = open_generator(network, backend=args.backend, device=args.device, precision=args.precision)
    session = LiveSession(runtime, size=args.size, controls={"rotate_speed": 15.0, "translate_anim": "circle",
                                                            "psi": 0.8}).start()
    server = LiveServer(session, port=0).start_in_thread()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            tab = browser.new_page(viewport={"width": 1180, "height": 800})
            tab.goto(server.url)
            tab.wait_for_function("window.sg3rtLive && window.sg3rtLive.frames >= 20", timeout=120_000)
            tab.screenshot(path=str(path))
            browser.close()
    finally:
        server.stop()
        session.close()
        runtime.close()
    print(f"wrote {path}")


def render_only_fps(session, frames: int = 30) -> float:
    """The same frames without server or client (render_frame: inputs, synthesis, uint8, copy): the ceiling.

    Timed on this thread, the one that opened the runtime and then runs the render loop, as `sg3rt live` does.
    """
    from sg3rt.live import Clocks

    c, times = session.controls, []
    for i in range(3):
        session.render_frame(c, Clocks(walk=0.1 * i))
    for i in range(frames):
        t0 = time.perf_counter()
        session.render_frame(c, Clocks(walk=0.05 * i))
        times.append(time.perf_counter() - t0)
    return 1.0 / statistics.median(times)


def serve_and_measure(network, res: int | None, args) -> dict:
    import torch

    from sg3rt.live import LiveSession
    from sg3rt.live.server import LiveServer
    from sg3rt.runtime import open_generator

    runtime = open_generator(network, backend=args.backend, device=args.device, precision=args.precision,
                             cuda_graphs=args.cuda_graphs)
    session = LiveSession(runtime, controls={"fps": args.fps, "rotate_speed": 0.0})
    render_only = render_only_fps(session)
    server = LiveServer(session, port=0).start_in_thread(on_exit=session.stop)
    measured: dict = {}

    def measure() -> None:  # the client runs while this (main) thread renders, as in `sg3rt live`
        try:
            url = f"ws://127.0.0.1:{server.port}/ws"
            out = subprocess.run([sys.executable, __file__, "--client", url, "--seconds", str(args.seconds),
                                  "--trials", str(args.trials)], capture_output=True, text=True, check=True)
            measured.update(json.loads(out.stdout.strip().splitlines()[-1]))
            measured["stats"] = session.stats()
        finally:
            session.stop()

    client_thread = threading.Thread(target=measure)
    try:
        client_thread.start()
        session.run()
        client_thread.join()
        if "stats" not in measured:
            raise SystemExit(f"the measuring client failed (render loop error: {session.error})")
        stats = measured.pop("stats")
        result = measured
    finally:
        server.stop()
        session.close()
        runtime.close()
    result.update(resolution=runtime.img_resolution, backend=runtime.backend, device=str(runtime.device),
                  precision=runtime.precision, kind=runtime.kind, server_fps=stats.fps,
                  server_ms_per_frame=stats.ms_per_frame, target_fps=args.fps, render_only_fps=render_only,
                  network="embedded default" if res is None and args.network is None else (args.network or f"stylegan3-r {res} random"),
                  torch_threads=torch.get_num_threads(), cuda_graphs=args.cuda_graphs)
    return result


def write_results(out: Path, rows: list[dict], args, load_before: float) -> None:
    """The JSON with the rows measured so far and the conditions (load average, versions)."""
    import torch

    from sg3rt import __version__

    meta = {"sg3rt": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "cpu": platform.machine(), "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "seconds": args.seconds, "trials": args.trials,
            "load_avg_1min_before": load_before, "load_avg_1min_after": os.getloadavg()[0],  # busy machine: lower
            "niceness": os.nice(0)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default=None, help="network file (default: the embedded network, or --res)")
    ap.add_argument("--res", default=None, help="comma-separated random-weight official StyleGAN3-R sizes (GPU: 256,512,1024)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default=None)
    ap.add_argument("--fps", type=float, default=60.0, help="target frames/s of the render loop (the cap)")
    ap.add_argument("--seconds", type=float, default=10.0, help="how long frames/s is measured")
    ap.add_argument("--trials", type=int, default=30, help="control changes timed for the latency")
    ap.add_argument("--cuda-graphs", action="store_true", help="PyTorch on CUDA: synthesis replayed from CUDA graphs")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    ap.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/live_<device>.json)")
    ap.add_argument("--screenshot", default=None, help="only save a screenshot of the page here (e.g. docs/live.png)")
    ap.add_argument("--size", type=int, default=None, help="streamed frame size for --screenshot")
    ap.add_argument("--client", default=None, help=argparse.SUPPRESS)  # internal: run as the measuring client
    args = ap.parse_args()
    if args.client:
        print(json.dumps(client(args.client, args.seconds, args.trials)))
        return

    import torch

    from sg3rt import __version__

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.screenshot:
        screenshot(Path(args.screenshot), args.network, args)
        return
    sizes = [int(r) for r in args.res.split(",")] if args.res else [None]
    device = "cuda" if args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    out = Path(args.out) if args.out else HERE / "results" / f"live_{device}.json"
    load_before = os.getloadavg()[0]
    rows = []
    print(f"{'network':<26} {'backend':<12} {'device':<7} {'prec':<5} {'res':>5} {'render-only':>11} {'server fps':>10} "
          f"{'client fps':>10} {'latency ms (median / p95)':>26}", flush=True)
    for res in sizes:  # one network at a time, the JSON rewritten after each: a run cut short keeps its rows
        if res is None:
            net = args.network
        else:
            from sg3rt.networks.configs import random_official_generator

            net = random_official_generator("stylegan3-r", res)
        rows.append(r := serve_and_measure(net, res, args))
        del net
        write_results(out, rows, args, load_before)
        print(f"{r['network']:<26} {r['backend']:<12} {r['device']:<7} {r['precision']:<5} {r['resolution']:>5} "
              f"{r['render_only_fps']:>11.1f} {r['server_fps']:>10.1f} {r['client_fps']:>10.1f} "
              f"{r['latency_ms_median']:>14.0f} / {r['latency_ms_p95']:<9.0f}", flush=True)

    if args.device == "cpu" and args.network is None and not args.res:
        r = rows[0]
        ok = r["client_fps"] >= TARGET_FPS and r["latency_ms_median"] <= TARGET_LATENCY_MS
        print(f"target (2 CPU cores, 128 px): >= {TARGET_FPS:g} frames/s and <= {TARGET_LATENCY_MS:g} ms: "
              f"{'met' if ok else 'NOT met'}")
    print(f"wrote {out} (1-minute load average {load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after, "
          f"{os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
