"""The live session without a browser: controls validation, what a frame shows, pacing, the WebSocket
protocol (slow and vanishing clients, many pages, tokens), OSC over real UDP, and Ctrl-C with a recording."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
import waiting
from live_command import interrupt, live_command

pytest.importorskip("starlette", reason="the live extra is not installed: pip install 'sg3rt[live]'")
pytest.importorskip("uvicorn", reason="the live extra is not installed: pip install 'sg3rt[live]'")
websockets_sync = pytest.importorskip("websockets.sync.client", reason="websockets is not installed")

from sg3rt.animate import seed_z  # noqa: E402
from sg3rt.errors import InputError  # noqa: E402
from sg3rt.animate.paths import noise_loop  # noqa: E402
from sg3rt.live import Clocks, ControlError, LiveSession  # noqa: E402
from sg3rt.live.protocol import MAX_IN_FLIGHT, MAX_MESSAGE_BYTES, parse_message, split_frame  # noqa: E402
from sg3rt.live.scene import NOISE_LOOP_TRANSITIONS  # noqa: E402
from sg3rt.live.server import LiveServer, check_host  # noqa: E402
from sg3rt.networks import input_transform  # noqa: E402
from sg3rt.runtime.torch_backend import TorchRuntime  # noqa: E402

WAIT_S = 60  # generous bound for anything that waits on frames (2 loaded cores)


@pytest.fixture(scope="module")
def sg3r(load_reference):
    return TorchRuntime(load_reference("sg3r_64"))


@pytest.fixture
def session(sg3r, tmp_path):
    with LiveSession(sg3r, record_dir=tmp_path / "rec") as s:
        yield s


@pytest.fixture
def server(session):
    srv = LiveServer(session, port=0).start_in_thread()
    yield srv
    srv.stop()


def ws_url(srv: LiveServer, token: str | None = None) -> str:
    return f"ws://127.0.0.1:{srv.port}/ws" + (f"?token={token}" if token else "")


def wait_for(predicate, timeout: float = WAIT_S, what: str = "condition"):
    return waiting.wait_for(predicate, timeout, what)


class Page:
    """A scripted page over a real WebSocket: reads messages, acks frames when asked to."""

    def __init__(self, url: str):
        self._connection = websockets_sync.connect(url, open_timeout=WAIT_S)
        self.ws = self._connection.__enter__()
        self.texts: list[dict] = []
        self.frames: list[tuple[int, int, bytes]] = []

    def recv(self, timeout: float = WAIT_S):
        msg = self.ws.recv(timeout=timeout)
        if isinstance(msg, bytes):
            self.frames.append(split_frame(msg))
        else:
            self.texts.append(json.loads(msg))
        return msg

    def until(self, predicate, ack: bool = True, timeout: float = WAIT_S):
        """Read until predicate(self) holds, acknowledging every frame (a page that keeps up)."""
        end = time.monotonic() + timeout
        while not predicate(self):
            msg = self.recv(max(0.01, end - time.monotonic()))
            if ack and isinstance(msg, bytes):
                self.send({"ack": split_frame(msg)[0]})
        return self

    def send(self, obj) -> None:
        self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    def reply(self) -> dict:
        """The next ok/error reply (skipping frames, stats and state)."""
        n = len(self.texts)
        self.until(lambda p: any(t["type"] in ("ok", "error") for t in p.texts[n:]))
        return next(t for t in self.texts[n:] if t["type"] in ("ok", "error"))

    def close(self) -> None:
        self._connection.__exit__(None, None, None)


# -- controls ------------------------------------------------------------------------------------


@pytest.mark.parametrize("update, match", [
    ({"bogus": 1}, "unknown control 'bogus'"),
    ({"psi": "0.7"}, "psi must be a finite number"),
    ({"psi": float("nan")}, "psi must be a finite number"),
    ({"psi": 10**400}, "psi must be a finite number"),  # JSON allows it; float() of it overflows
    ({"psi": 3.0}, "psi must be between -2 and 2"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"seed": True}, "seed must be an integer"),
    ({"seed": -1}, "seed must be between 0 and"),
    ({"seed": 2**32}, "seed must be between 0 and"),
    ({"seeds": []}, "seeds must be a list of 1 to"),
    ({"seeds": [1, "2"]}, "every seed must be an integer"),
    ({"walk": "spiral"}, "walk must be one of off, cubic, noise"),
    ({"paused": 1}, "paused must be true or false"),
    ({"cutoff": 0}, "cutoff must be between 1 and"),
    ({"mix_to": 99}, "mix_to must be between 0 and"),
    ({"mix_from": 5, "mix_to": 2}, "mix_from .5. must not be after mix_to .2."),
    ({"class": 0}, "unconditional"),
    ({"fps": 0}, "fps must be between"),
    ([1, 2], "non-empty object"),
    ({}, "non-empty object"),
])
def test_bad_updates_change_nothing(session, update, match):
    before, version = session.controls, session.version
    with pytest.raises(ControlError, match=match):
        session.update(update)
    assert session.controls is before and session.version == version


def test_update_is_all_or_nothing_and_versions_count(session):
    v = session.version
    with pytest.raises(ControlError):
        session.update({"psi": 0.5, "rotate": 1000})
    assert session.controls.psi == 1.0
    assert session.update({"psi": 0.5, "rotate": 45, "seeds": [3, 4], "cutoff": None}) == v + 1
    c = session.controls
    assert (c.psi, c.rotate, c.seeds, c.cutoff) == (0.5, 45.0, (3, 4), None)


def test_stylegan2_refuses_motion_and_conditional_needs_a_class(load_reference):
    with LiveSession(TorchRuntime(load_reference("sg2_64"))) as s2:  # (never started: no frames needed)
        with pytest.raises(ControlError, match="rotate_speed needs a StyleGAN3 network"):
            s2.update({"rotate_speed": 10})
        s2.update({"rotate": 0})  # zero motion is harmless
    cond = LiveSession(TorchRuntime(load_reference("sg3t_64_cond")))
    assert cond.controls.class_idx == 0
    with pytest.raises(ControlError, match="class must be an integer between 0 and 9"):
        cond.update({"class": 10})
    cond.update({"class": 9})
    assert cond.controls.class_idx == 9


# -- what a frame shows ----------------------------------------------------------------------------


def test_scene_follows_the_official_seeds_paths_and_motion(sg3r):
    s = LiveSession(sg3r)  # not started: frames rendered by hand
    scene = s.scene
    s.update({"seeds": [5, 9, 11], "psi": 0.7})
    c = s.controls
    w9 = sg3r.mapping(seed_z(9, sg3r.z_dim)[None].astype(np.float32), None, 0.7)
    torch.testing.assert_close(scene.ws(c, Clocks(walk=1.0)), w9, atol=1e-5, rtol=0)  # a keyframe
    torch.testing.assert_close(scene.ws(c, Clocks(walk=4.0)), w9, atol=1e-5, rtol=0)  # the walk loops (3 seeds)
    mid = scene.ws(c, Clocks(walk=1.5))
    assert not torch.allclose(mid, w9, atol=1e-3)

    s.update({"walk": "noise", "seed": 3})
    z = noise_loop(3, sg3r.z_dim, np.array([0.5 / NOISE_LOOP_TRANSITIONS])).astype(np.float32)
    torch.testing.assert_close(scene.ws(s.controls, Clocks(walk=0.5)), sg3r.mapping(z, None, 0.7))

    s.update({"walk": "off", "seed": 4, "mix_seed": 8, "mix_from": 2, "mix_to": 5, "stabilize": True})
    ws = scene.ws(s.controls, Clocks())
    w4, w8 = (sg3r.mapping(seed_z(k, sg3r.z_dim)[None].astype(np.float32), None, 0.7)[0] for k in (4, 8))
    torch.testing.assert_close(ws[0, 0], sg3r.w_avg)  # stabilize: the input layer's affine sees w_avg
    torch.testing.assert_close(ws[0, 2:6], w8[2:6])
    torch.testing.assert_close(ws[0, 6:], w4[6:])

    s.update({"rotate": 10, "rotate_speed": 20, "tx": 0.1})
    t = scene.transform(s.controls, Clocks(motion=2.0))
    torch.testing.assert_close(t[0], input_transform(50.0, (0.1, 0.0)))
    s.update({"paused": True, "speed": 1.0})
    assert Clocks(1.0, 2.0).advance(s.controls, 0.5) == Clocks(1.0, 2.0)


@pytest.fixture(scope="module")
def live_dirs(sg3r, tmp_path_factory):
    """Two SeFa directions of sg3r_64 as `sg3rt directions` writes them."""
    from sg3rt import load_generator
    from sg3rt.animate import compute_directions
    from refdata import reference_file

    path = tmp_path_factory.mktemp("dirs") / "dirs.npz"
    compute_directions(load_generator(reference_file("sg3r_64.pkl")), "sefa", None, 2).save(path)
    return path


def test_edit_sliders_shift_w_as_render_does(sg3r, live_dirs):
    """An amount of 0 changes nothing; amount a gives the ws of `sg3rt image --edit FILE:K:a` (same seed)."""
    from sg3rt.animate import Edit, still_batches

    edits = (Edit.parse(f"{live_dirs}:0:0"), Edit.parse(f"{live_dirs}:1:1.5@coarse"))
    s = LiveSession(sg3r, edits=edits, controls={"walk": "off", "seed": 3})
    plain = LiveSession(sg3r, controls={"walk": "off", "seed": 3})
    assert s.controls.edits == (0.0, 1.5) and s.controls.to_json()["edits"] == [0.0, 1.5]
    s.update({"edits": [0.0, 0.0]})
    torch.testing.assert_close(s.scene.ws(s.controls, Clocks()), plain.scene.ws(plain.controls, Clocks()), atol=0, rtol=0)
    s.update({"edits": [-2.5, 1.5]})
    want = (Edit.parse(f"{live_dirs}:0:-2.5"), Edit.parse(f"{live_dirs}:1:1.5@coarse"))
    _, ws, _ = next(still_batches(sg3r, [3], edits=want))
    torch.testing.assert_close(s.scene.ws(s.controls, Clocks()), ws, atol=1e-5, rtol=0)
    for bad, match in [([1.0], "a list of 2 amounts"), ([0.0, 99.0], "between -20 and 20"),
                       ([0.0, "x"], "between -20 and 20"), (0.5, "a list of 2 amounts")]:
        with pytest.raises(ControlError, match=match):
            s.update({"edits": bad})
    assert s.controls.edits == (-2.5, 1.5)  # nothing changed
    from sg3rt.live.controls import coerce_osc

    assert coerce_osc("edits", (0.5, 1.0)) == [0.5, 1.0]  # OSC: /sg3rt/edits 0.5 1.0
    with pytest.raises(ControlError, match="a list of 0 amounts"):
        plain.update({"edits": [1.0]})
    with pytest.raises(InputError, match="one start AMOUNT"):
        LiveSession(sg3r, edits=(Edit.parse(f"{live_dirs}:0:-3..3"),))


def test_published_frame_is_the_runtime_render(sg3r):
    with LiveSession(sg3r, controls={"walk": "off", "seed": 7, "rotate": 90, "paused": True}) as s:
        frame = s.stream.wait_next(0, WAIT_S)
    ws = sg3r.mapping(seed_z(7, sg3r.z_dim)[None].astype(np.float32))
    expected = sg3r.frames(ws, input_transform(90.0)[None]).numpy()[0]
    np.testing.assert_array_equal(frame.rgb, expected)
    from PIL import Image

    decoded = np.asarray(Image.open(io.BytesIO(frame.jpeg)).convert("RGB")).astype(float)
    assert np.abs(decoded - expected).mean() < 4  # JPEG at quality 85


def test_render_loop_paces_itself_to_the_target(sg3r):
    with LiveSession(sg3r, controls={"fps": 4}) as s:
        first = s.stream.wait_next(0, WAIT_S)
        time.sleep(1.5)
        last = s.stream.latest
    period = (last.time - first.time) / max(1, last.seq - first.seq)
    assert last.seq - first.seq <= 1.5 * 4 + 1  # never faster than asked
    assert period >= 0.2  # 0.25 s per frame (a little early wake-up is fine)


class Spied:
    """A runtime whose frames() records the calling thread and, from call `fail_at` on, raises `error`."""

    def __init__(self, runtime, fail_at: int | None = None, error: BaseException | None = None):
        self._runtime, self.fail_at, self.error = runtime, fail_at, error
        self.threads: list[int] = []

    def __getattr__(self, name):
        return getattr(self._runtime, name)

    def frames(self, *args, **kwargs):
        self.threads.append(threading.get_ident())
        if self.fail_at is not None and len(self.threads) >= self.fail_at:
            raise self.error
        return self._runtime.frames(*args, **kwargs)


def test_run_renders_on_the_calling_thread_until_stopped(sg3r):
    """`sg3rt live` renders on its main thread (LiveSession.run): every frame there, and stop() ends it."""
    runtime = Spied(sg3r)
    s = LiveSession(runtime)
    stopper = threading.Thread(target=lambda: (s.stream.wait_next(2, WAIT_S), s.stop()))
    stopper.start()
    s.run()
    stopper.join()
    assert len(runtime.threads) >= 3 and set(runtime.threads) == {threading.get_ident()}
    assert s.stream.closed and s.error is None
    assert s.close() is None


def test_run_raises_an_interrupt_after_the_loop_stopped(sg3r):
    """Ctrl-C during a frame: the interrupt comes out of run() with the stream closed (pages told)."""
    s = LiveSession(Spied(sg3r, fail_at=3, error=KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        s.run()
    assert s.stream.closed and s.stream.latest.seq == 2 and s.error is None


def test_run_keeps_a_runtime_failure_for_the_pages(sg3r):
    s = LiveSession(Spied(sg3r, fail_at=2, error=RuntimeError("out of memory")))
    s.run()  # returns: the server goes on showing the error
    assert isinstance(s.error, RuntimeError) and s.stream.closed
    with LiveSession(sg3r) as started, pytest.raises(RuntimeError, match="already renders on its own thread"):
        started.run()


# -- the WebSocket protocol ------------------------------------------------------------------------


@pytest.mark.parametrize("text, match", [
    ("not json", "not valid JSON"),
    ("[1]", "one JSON object with one key"),
    ('{"set": {"psi": 1}, "do": "next"}', "one JSON object with one key"),
    ('{"go": 1}', "unknown message 'go'"),
    ('{"set": 3}', '"set" takes an object'),
    ('{"do": "format_disk"}', '"do" takes one of'),
    ('{"ack": -1}', '"ack" takes the frame sequence'),
    ("x" * (MAX_MESSAGE_BYTES + 1), "message too large"),
    (b"\x00\x01", "binary messages are not accepted"),
])
def test_parse_message_refuses(text, match):
    with pytest.raises(ControlError, match=match):
        parse_message(text)


def test_page_gets_frames_and_errors_and_changes_show_up(server, session):
    page = Page(ws_url(server))
    page.until(lambda p: len(p.frames) >= 3)
    hello = next(t for t in page.texts if t["type"] == "hello")
    assert hello["resolution"] == 64 and hello["stylegan3"] and hello["num_ws"] == session.runtime.num_ws
    assert hello["edits"] == [] and "edits" in hello["controls"]
    assert hello["ranges"]["psi"] == [-2, 2] and hello["ranges"]["mix_to"] == [0, session.runtime.num_ws - 1]
    seqs = [f[0] for f in page.frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    for bad, match in [("nope", "not valid JSON"), ({"set": {"psi": 9}}, "psi must be between"),
                       ('{"set": {"psi": 1' + "0" * 400 + "}}", "psi must be a finite number"),
                       ({"set": {"bogus": 1}}, "unknown control"), ("y" * (MAX_MESSAGE_BYTES + 10), "too large")]:
        page.send(bad)
        r = page.reply()
        assert r["type"] == "error" and match in r["message"]
    assert session.controls.psi == 1.0

    page.send({"set": {"walk": "off", "seed": 7, "rotate": 90, "paused": True}})
    r = page.reply()
    assert r["type"] == "ok"
    page.until(lambda p: p.frames[-1][1] >= r["version"])  # the first frame that reflects the change
    ws = session.runtime.mapping(seed_z(7, session.runtime.z_dim)[None].astype(np.float32))
    expected = session.runtime.frames(ws, input_transform(90.0)[None]).numpy()[0].astype(float)
    from PIL import Image

    shown = np.asarray(Image.open(io.BytesIO(page.frames[-1][2])).convert("RGB")).astype(float)
    assert np.abs(shown - expected).mean() < 4

    page.send({"do": "next"})
    r = page.reply()
    assert r["seed"] == 8 and session.controls.seed == 8
    page.close()


def test_slow_page_skips_frames_and_never_queues(server, session):
    session.update({"fps": 30})
    slow, fast = Page(ws_url(server)), Page(ws_url(server))
    slow.until(lambda p: len(p.frames) >= 1, ack=False)
    fast.until(lambda p: len(p.frames) >= 1)
    # The slow page acknowledges nothing: after MAX_IN_FLIGHT frames it gets no more, the fast page carries on.
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:
        try:
            slow.recv(timeout=0.1)
        except TimeoutError:
            pass
    assert len(slow.frames) <= MAX_IN_FLIGHT
    n_fast = len(fast.frames)
    fast.until(lambda p: len(p.frames) >= n_fast + 3)
    # Once it acknowledges, the slow page gets the latest frame, far past the ones it missed.
    latest_before = session.stream.latest.seq
    slow.send({"ack": slow.frames[-1][0]})
    slow.until(lambda p: len(p.frames) > MAX_IN_FLIGHT, ack=False)
    assert slow.frames[-1][0] >= latest_before > slow.frames[-2][0] + 1
    slow.close()
    fast.close()


def test_many_pages_and_one_vanishing_mid_stream(server, session):
    pages = [Page(ws_url(server)) for _ in range(4)]
    for p in pages:
        p.until(lambda q: len(q.frames) >= 2)
    pages[0].until(lambda q: any(t["type"] == "stats" and t["clients"] == 4 for t in q.texts))
    pages[1].ws.socket.close()  # gone without a closing handshake, mid-stream
    pages[2].close()
    for p in (pages[0], pages[3]):
        n = len(p.frames)
        p.until(lambda q: len(q.frames) >= n + 3)
    pages[0].until(lambda q: q.texts[-1]["type"] == "stats" and q.texts[-1]["clients"] == 2)
    assert session.error is None
    for p in (pages[0], pages[3]):
        p.close()


def test_token_is_required_when_set(session):
    import urllib.error
    import urllib.request

    from urllib.parse import quote

    token = "s3&c#t r%"  # characters a URL must escape: the printed URL works as it is
    srv = LiveServer(session, port=0, token=token).start_in_thread()
    try:
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/")
        assert b"sg3rt live" in urllib.request.urlopen(srv.url).read()
        with pytest.raises(Exception) as refused:
            Page(ws_url(srv)).until(lambda p: False, timeout=10)
        assert "1008" in str(refused.value)  # a close code the page shows ("wrong or missing ?token="), not 1006
        Page(ws_url(srv, quote(token, safe=""))).until(lambda p: len(p.frames) >= 1).close()
    finally:
        srv.stop()


def test_other_sites_cannot_drive_the_session(server):
    """A page from another origin (any web site can open a WebSocket to 127.0.0.1) or a rebound host name is refused."""
    import urllib.error
    import urllib.request

    url = ws_url(server)
    with pytest.raises(Exception) as refused:
        with websockets_sync.connect(url, origin="http://evil.example", open_timeout=WAIT_S) as ws:
            ws.recv(timeout=10)
    assert "1008" in str(refused.value)
    with websockets_sync.connect(url, origin=f"http://127.0.0.1:{server.port}", open_timeout=WAIT_S) as ws:
        assert json.loads(ws.recv(timeout=WAIT_S))["type"] == "hello"  # the server's own page
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/", headers={"Host": f"evil.example:{server.port}"})
    with pytest.raises(urllib.error.HTTPError, match="400"):
        urllib.request.urlopen(request)


def test_snapshot_and_recording_downloads(server, session):
    import urllib.error
    import urllib.request

    from PIL import Image

    session.stream.wait_next(0, WAIT_S)
    png = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/snapshot.png").read()
    assert Image.open(io.BytesIO(png)).size == (64, 64)
    page = Page(ws_url(server))
    page.send({"do": "record"})
    name = page.reply()["recording"]
    first = session.stream.latest.seq
    wait_for(lambda: session.stream.latest.seq >= first + 5, what="5 frames recorded")
    page.send({"do": "stop"})
    r = page.reply()
    assert r["recorded"] == name and r["url"] == f"recordings/{name}"
    mp4 = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/{r['url']}").read()
    out = Path(session.record_dir) / "downloaded.mp4"
    out.write_bytes(mp4)
    reader = imageio_ffmpeg.read_frames(str(out))
    assert next(reader)["size"] == (64, 64) and sum(1 for _ in reader) >= 5
    for bad in ("nope.mp4", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd"):
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/recordings/{bad}")
    page.close()


@pytest.mark.parametrize("case, match", [("file", "is a file, not a folder"), ("long name", "File name too long")])
def test_a_recording_that_cannot_start_is_an_error_reply(server, session, case, match):
    """A record folder that cannot take the file (a file in its place; a name the file system refuses) is one error
    line for that page, which stays connected."""
    import shutil

    if case == "file":
        shutil.rmtree(session.record_dir, ignore_errors=True)
        session.record_dir.write_text("not a folder")
    else:
        session.record_dir = session.record_dir / ("a" * 300)
    page = Page(ws_url(server))
    page.send({"do": "record"})
    r = page.reply()
    assert r["type"] == "error" and match in r["message"] and str(session.record_dir) in r["message"]
    assert session.recording is None
    page.send({"set": {"psi": 0.5}})
    assert page.reply()["type"] == "ok"
    page.close()


def test_a_page_that_stops_reading_stalls_nobody_else(server, session, monkeypatch):
    """A frozen tab: its socket takes nothing more. Other pages' controls still answer at once, and the stalled
    page is dropped once one message has waited SEND_TIMEOUT_S to go out."""
    import base64
    import os
    import socket

    from sg3rt.live import server as live_server

    monkeypatch.setattr(live_server, "SEND_TIMEOUT_S", 3.0)
    clients = server.server.config.app.state.clients
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    stalled.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    wait_for(lambda: len(clients) == 1, what="the stalled page connected")
    busy, fresh = Page(ws_url(server)), Page(ws_url(server))  # busy: a page dragging a slider (each change is
    seeds = list(range(4_000_000_000, 4_000_000_000 + 200))  # broadcast to all; ~2.5 kB each: the buffers fill soon)
    end, sent = time.monotonic() + 120, 0
    while len(clients) == 3 and time.monotonic() < end:
        for i in range(500):
            busy.send({"set": {"seeds": seeds, "psi": 0.5 + (i % 100) / 1000}})
        sent += 500
        busy.until(lambda p: sum(t["type"] == "ok" for t in p.texts) == sent)  # before the fix: stuck here
        t0 = time.monotonic()
        fresh.send({"set": {"psi": 0.7}})
        assert fresh.reply()["type"] == "ok" and time.monotonic() - t0 < 5  # another page answers at once
    assert len(clients) == 2, "the stalled page was not dropped"
    wait_for(lambda: len(server.server.server_state.connections) == 2, what="its TCP connection closed")
    fresh.send({"set": {"psi": 0.8}})
    assert fresh.reply()["type"] == "ok"
    stalled.close()
    busy.close()
    fresh.close()


def test_recording_keeps_real_time(tmp_path):
    from sg3rt.live.session import Recording

    rec = Recording(tmp_path / "r.mp4", fps=10)
    frames = [np.full([32, 32, 3], 40 * i, np.uint8) for i in range(5)]
    for rgb, t in zip(frames, [100.0, 100.05, 100.35, 100.36, 105.0]):
        rec.add(rgb, t)  # slots: 1, (between two video frames), 4, (same slot), capped at 10 + 1 more
    path = rec.stop()
    reader = imageio_ffmpeg.read_frames(str(path))
    next(reader)
    means = np.array([np.frombuffer(f, np.uint8).mean() for f in reader])
    assert len(means) == 1 + 3 + 11
    np.testing.assert_allclose(means, [0] + [80] * 3 + [160] * 11, atol=2)  # (H.264 is lossy)


def test_host_warning_and_port_checks(session):
    assert check_host("127.0.0.1") is None and check_host("localhost") is None
    assert "--token" in check_host("0.0.0.0")
    assert "has the URL with its token" in check_host("0.0.0.0", "tok") and "--token" not in check_host("0.0.0.0", "t")
    with pytest.raises(InputError, match="--port must be between"):
        LiveServer(session, port=70000)


# -- OSC ---------------------------------------------------------------------------------------------


def test_osc_messages_drive_the_session(session):
    pytest.importorskip("pythonosc", reason="python-osc is not installed")
    from pythonosc.udp_client import SimpleUDPClient

    from sg3rt.live.osc import OscControl

    osc = OscControl(session, port=0).start()
    client = SimpleUDPClient("127.0.0.1", osc.port)
    try:
        def send(address, *args):
            n = osc.received
            client.send_message(address, list(args) if len(args) != 1 else args[0])
            wait_for(lambda: osc.received > n, 10, f"OSC {address}")

        send("/sg3rt/psi", 0.5)
        send("/sg3rt/stabilize", 1.0)  # a controller's toggle
        send("/sg3rt/seeds", 1, 2, 3)
        send("/sg3rt/seed", 41.0)  # controllers send floats for integers
        send("/sg3rt/next")
        send("/sg3rt/mix_seed", 12)
        send("/sg3rt/mix_seed", -1)  # a negative number clears it (OSC has no null)
        c = session.controls
        assert (c.psi, c.stabilize, c.seeds, c.seed, c.mix_seed) == (0.5, True, (1, 2, 3), 42, None)
        assert not osc.errors
        send("/sg3rt/psi", 9.0)
        send("/sg3rt/seed", 1.5)
        send("/elsewhere", 1)
        assert session.controls.psi == 0.5 and session.controls.seed == 42
        assert len(osc.errors) == 3
        assert "psi must be between" in osc.errors[0] and "seed must be an integer" in osc.errors[1]
        assert "unknown OSC address" in osc.errors[2]
    finally:
        osc.close()


# -- the command: Ctrl-C finishes a recording ----------------------------------------------------------


def test_ctrl_c_shuts_down_cleanly_and_keeps_the_recording(tmp_path):
    from refdata import reference_file

    net = reference_file("sg3r_64.pkl")
    args = [str(net), "--port", "0", "--device", "cpu", "--record-dir", str(tmp_path / "rec")]
    with live_command(args, tmp_path) as (proc, url):
        page = Page(url.replace("http://", "ws://").rstrip("/") + "/ws")
        page.until(lambda p: len(p.frames) >= 2)
        page.send({"do": "record"})
        name = page.reply()["recording"]
        n = len(page.frames)
        page.until(lambda p: len(p.frames) >= n + 8)
        err = interrupt(proc, WAIT_S)
    assert f"finished recording {tmp_path / 'rec' / name}" in err or f"finished recording rec/{name}" in err
    files = list((tmp_path / "rec").iterdir())
    assert [f.name for f in files] == [name]  # no temp file left behind
    reader = imageio_ffmpeg.read_frames(str(files[0]))
    assert next(reader)["size"] == (64, 64) and sum(1 for _ in reader) >= 8


@pytest.mark.parametrize("args, match", [
    (["--stream-size", "5"], "--stream-size must be between 16 and 4096"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--osc-port", "70000"], "--osc-port must be between 0 and 65535"),
    (["--backend", "warp"], "'warp' is not one of"),
    (["missing.pkl"], "missing.pkl"),
    (["--edit", "nowhere.npz:0:1"], "no such file 'nowhere.npz'"),
    (["--cuda-graphs", "--device", "cpu"], "CUDA graphs need a CUDA device, not cpu"),
])
def test_cli_errors_are_one_line(args, match, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from sg3rt.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["live", "--port", "0", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0]


def test_cli_refuses_a_port_in_use(session):
    from typer.testing import CliRunner

    from sg3rt.cli import app

    srv = LiveServer(session, port=0)  # bound, not serving
    try:
        result = CliRunner().invoke(app, ["live", "--port", str(srv.port)])
    finally:
        srv.sock.close()
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{srv.port}" in result.output


@pytest.mark.gpu
def test_live_frames_from_cuda_graphs_match_plain_cuda(load_reference):
    """A session over a CUDA-graph runtime (`sg3rt live --cuda-graphs`) shows the frames the plain CUDA runtime
    shows, as controls change (rotation, psi, seed): the graph's inputs are refilled every frame, never stale."""
    G = load_reference("sg3r_64")
    with TorchRuntime(G, device="cuda") as plain_rt, TorchRuntime(G, device="cuda", cuda_graphs=True) as graph_rt:
        plain, graphs = LiveSession(plain_rt), LiveSession(graph_rt)
        for i, change in enumerate([{"speed": 0.5}, {"rotate": 30.0}, {"psi": 0.5}, {"walk": "off", "seed": 7}]):
            for s in (plain, graphs):
                s.update(change)
            a = plain.render_frame(plain.controls, Clocks(walk=0.1 * i))
            b = graphs.render_frame(graphs.controls, Clocks(walk=0.1 * i))
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1, change  # uint8 rounding of fp32 differences
        plain.close()
        graphs.close()
