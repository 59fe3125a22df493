"""The web part: a Starlette app on uvicorn serving the page, the frame stream over a WebSocket, snapshots, recordings.

The asyncio loop never renders: the session's thread publishes frames. Everything a page is sent goes through
that page's own writer task: the latest frame only (at most MAX_IN_FLIGHT unacknowledged), the latest state and
HUD figures only, and its own replies in order. So a slow page skips frames, and a page that stops reading
(a frozen tab, a sleeping laptop) stalls nobody else: it stops being read from once MAX_REPLIES replies wait,
and is dropped when one message takes more than SEND_TIMEOUT_S to go out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

from ..errors import BackendUnavailableError, InputError, Sg3rtError
from .controls import EDIT_MAX, SCHEMA, numeric_range
from .protocol import MAX_IN_FLIGHT, frame_message, parse_message
from .session import LiveSession, encode_png

STATIC = Path(__file__).parent / "static"
STATS_PERIOD_S = 0.5  # how often each page gets the HUD figures
WS_MAX_BYTES = 1 << 20  # the WebSocket layer closes a connection whose message exceeds this (1009)
GRACEFUL_SHUTDOWN_S = 3  # seconds uvicorn waits for open connections on Ctrl-C
MAX_REPLIES = 64  # replies a page may have waiting to go out before its further messages wait (backpressure)
SEND_TIMEOUT_S = 10.0  # a page whose socket takes longer than this to take one message has stopped reading: dropped
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

log = logging.getLogger(__name__)


def import_web():
    """starlette + uvicorn, or a one-line install hint."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise BackendUnavailableError(f"`sg3rt live` needs the web extra ({e.name} is missing): "
                                      "pip install 'sg3rt[live]'") from None


def check_host(host: str, token: str | None = None) -> str | None:
    """A warning line when `host` makes the server reachable from other machines."""
    if host in LOCAL_HOSTS or host.startswith("127."):
        return None
    if token is not None:
        return (f"warning: listening on {host}: anyone who can reach this machine and has the URL with its token can "
                "watch and drive the session (the token travels unencrypted over plain HTTP)")
    return (f"warning: listening on {host}: anyone who can reach this machine can watch and drive the session; "
            "use --token to require a secret in the URL")


def check_port_and_token(port: int, token: str | None) -> None:
    """A one-line InputError for a port out of range or an unusable token (before any network loads)."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be between 0 and 65535, got {port}")
    if token is not None and (not token or len(token) > 256 or not token.isprintable()):
        raise InputError("--token must be 1 to 256 printable characters")


class PageStalled(Exception):
    """A page's socket took no message for SEND_TIMEOUT_S: it stopped reading."""


class Client:
    """One connected page: its socket, what is waiting to go out to it, and the frames it has not acknowledged.

    Only the page's writer task sends; others post (replies, in order) or mark (state, stats) and wake it.
    """

    def __init__(self, ws: Any, loop: asyncio.AbstractEventLoop):
        self.ws = ws
        self.loop = loop
        self.wake = asyncio.Event()
        self.room = asyncio.Event()  # set while fewer than MAX_REPLIES replies wait: the page's messages are read
        self.room.set()
        self.replies: deque[str] = deque()  # this page's replies (and hello), oldest first
        self.state_due = False  # the controls changed since the page was last sent them
        self.stats_due = False
        self.in_flight: deque[int] = deque()  # seqs sent, not yet acknowledged
        self.last_seq = 0  # the newest frame sent

    def notify(self) -> None:
        """Called from the render thread."""
        try:
            self.loop.call_soon_threadsafe(self.wake.set)
        except RuntimeError:  # the loop has closed
            pass

    def post(self, data: dict[str, Any]) -> None:
        self.replies.append(json.dumps(data))
        if len(self.replies) >= MAX_REPLIES:
            self.room.clear()
        self.wake.set()

    def mark_state(self) -> None:
        self.state_due = True
        self.wake.set()

    def mark_stats(self) -> None:
        self.stats_due = True
        self.wake.set()

    def ack(self, seq: int) -> None:
        while self.in_flight and self.in_flight[0] <= seq:
            self.in_flight.popleft()
        self.wake.set()


def same_origin(origin: str | None, host: str | None) -> bool:
    """A WebSocket from a browser carries its page's Origin: only this server's own page may drive the session.

    (Browsers let any web site open a WebSocket to 127.0.0.1; CORS does not apply to WebSockets.) Clients that
    are not browsers send no Origin and are let through (OSC-like tools, scripts, the tests).
    """
    if origin is None:
        return True
    from urllib.parse import urlsplit

    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


def make_app(session: LiveSession, token: str | None = None, network_name: str = "",
             local_only: bool = True) -> Any:
    """The Starlette app for a running session: /, /static/*, /ws, /snapshot.png, /recordings/{name}, /audio.

    local_only: refuse requests whose Host header is not a loopback name (DNS-rebinding defence for a
    server bound to 127.0.0.1).
    """
    import_web()
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import FileResponse, PlainTextResponse, Response
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles
    from starlette.websockets import WebSocketDisconnect

    clients: set[Client] = set()

    def allowed(params: Any) -> bool:
        return token is None or secrets.compare_digest(str(params.get("token", "")), token)

    def forbidden() -> Response:
        return PlainTextResponse("403: this session needs ?token=... in the URL\n", status_code=403)

    async def index(request):
        if not allowed(request.query_params):
            return forbidden()
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def snapshot(request):
        if not allowed(request.query_params):
            return forbidden()
        frame = session.stream.latest
        if frame is None:
            return PlainTextResponse("no frame yet\n", status_code=503)
        png = await asyncio.to_thread(encode_png, frame.rgb)
        return Response(png, media_type="image/png",
                        headers={"Content-Disposition": f'attachment; filename="sg3rt-live-{frame.seq:06d}.png"'})

    async def recording(request):
        if not allowed(request.query_params):
            return forbidden()
        path = session.recordings.get(request.path_params["name"])  # only names the server made; never a path
        if path is None or not path.is_file():
            return PlainTextResponse("no such recording\n", status_code=404)
        return FileResponse(path, media_type="video/mp4", filename=path.name)

    async def audio(request):
        if not allowed(request.query_params):
            return forbidden()
        track = session.audio.page_track if session.audio else None  # only the session's own; never a request's
        if track is None or not track.is_file():
            return PlainTextResponse("this session has no sound track\n", status_code=404)
        return FileResponse(track, headers={"Cache-Control": "no-store"})

    ranges = {k: r for k in SCHEMA if k != "edits" and (r := numeric_range(k, session.limits)) is not None}

    def hello() -> dict[str, Any]:
        """What the page builds itself from: the network, the controls and the range `apply` accepts for each."""
        rt = session.runtime
        return {"type": "hello", "network": network_name, "kind": rt.kind, "resolution": rt.img_resolution,
                "size": session.size, "height": session.height, "num_ws": rt.num_ws, "c_dim": rt.c_dim, "stylegan3": rt.is_stylegan3,
                "controls": list(SCHEMA), "ranges": ranges, "recording_enabled": session.record_dir is not None,
                "edits": [e.label for e in session.edits], "edit_max": EDIT_MAX,
                "max_in_flight": MAX_IN_FLIGHT,
                "audio": None if session.audio is None or session.audio.page_track is None else
                {"url": "audio", "duration": session.audio.duration}}

    def state() -> dict[str, Any]:
        return {"type": "state", "version": session.version, "controls": session.controls.to_json()}

    def broadcast_state() -> None:
        for c in clients:
            c.mark_state()

    async def send(client: Client, message: str | bytes) -> None:
        try:
            await asyncio.wait_for(client.ws.send_bytes(message) if isinstance(message, bytes) else
                                   client.ws.send_text(message), SEND_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise PageStalled() from None

    async def writer(client: Client) -> None:
        """All that goes out to one page: its replies in order, then the latest state, HUD figures and frame."""
        while True:
            await client.wake.wait()
            client.wake.clear()
            if session.stream.closed:
                return
            while client.replies:
                await send(client, client.replies.popleft())
                if len(client.replies) < MAX_REPLIES:
                    client.room.set()
            if client.state_due:
                client.state_due = False
                await send(client, json.dumps(state()))
            if client.stats_due:
                client.stats_due = False
                s = session.stats().to_json()
                s.update(type="stats", clients=len(clients), error=str(session.error) if session.error else None)
                await send(client, json.dumps(s))
            frame = session.stream.latest
            if frame is None or frame.seq <= client.last_seq or len(client.in_flight) >= MAX_IN_FLIGHT:
                continue  # nothing new, or the page is still busy: this frame is skipped for it
            client.last_seq = frame.seq
            client.in_flight.append(frame.seq)
            await send(client, frame_message(frame.seq, frame.version, frame.jpeg))

    async def stats_ticker(client: Client) -> None:
        while True:
            client.mark_stats()
            await asyncio.sleep(STATS_PERIOD_S)

    async def reader(client: Client, ws: Any) -> None:
        """The page's messages, one at a time; none is read while MAX_REPLIES of its replies wait to go out."""
        while True:
            await client.room.wait()
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            await handle(client, message.get("text"))

    async def handle(client: Client, text: str | None) -> None:
        try:
            msg = parse_message(text)
            if msg.kind == "ack":
                client.ack(msg.value)
                return
            if msg.kind == "set":
                version = session.update(msg.value)
                reply = {"type": "ok", "version": version}
            else:
                reply = {"type": "ok", "version": session.version, "do": msg.value,
                         **await asyncio.to_thread(session.action, msg.value)}
                if msg.value == "stop" and reply.get("recorded"):
                    reply["url"] = f"recordings/{reply['recorded']}"
            client.post(reply)
            broadcast_state()
        except Sg3rtError as e:  # ControlError, or a recording that could not start/finish
            client.post({"type": "error", "message": str(e)})

    async def stream(ws):
        await ws.accept()  # then refused with code 1008, which a browser's page sees (a refused handshake is 1006)
        if not allowed(ws.query_params) or not same_origin(ws.headers.get("origin"), ws.headers.get("host")):
            await ws.close(code=1008, reason="wrong or missing token, or another site's page")
            return
        client = Client(ws, asyncio.get_running_loop())
        clients.add(client)
        unsubscribe = session.stream.subscribe(client.notify)
        client.post(hello())
        client.mark_state()
        tasks = [asyncio.create_task(writer(client)), asyncio.create_task(reader(client, ws)),
                 asyncio.create_task(stats_ticker(client))]
        try:
            done, _ = await asyncio.wait(tasks[:2], return_when=asyncio.FIRST_COMPLETED)
        finally:
            unsubscribe()
            clients.discard(client)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:  # the page went away, stalled, or the stream ended: all normal; anything else is a bug
            e = None if t.cancelled() else t.exception()
            if isinstance(e, PageStalled):
                log.warning(f"dropped a page that stopped reading ({SEND_TIMEOUT_S:g} s without taking a message)")
                _abort(ws)
            elif e is not None and not isinstance(e, (WebSocketDisconnect, RuntimeError, OSError)):
                raise e

    routes = [
        Route("/", index),
        Route("/snapshot.png", snapshot),
        Route("/recordings/{name:str}", recording),
        Route("/audio", audio),
        WebSocketRoute("/ws", stream),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"])]
    app = Starlette(routes=routes, middleware=middleware if local_only else [])
    app.state.clients = clients
    return app


class LiveServer:
    """uvicorn serving make_app(session) on host:port (port 0: any free one); run() blocks until Ctrl-C or stop()."""

    def __init__(self, session: LiveSession, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
                 network_name: str = ""):
        import_web()
        import uvicorn
        from uvicorn.config import WS_PROTOCOLS

        check_port_and_token(port, token)
        self.session, self.host, self.token = session, host, token
        self.sock = _bind(host, port)
        self.port = self.sock.getsockname()[1]
        ws_impl = "websockets-sansio" if "websockets-sansio" in WS_PROTOCOLS else "auto"
        app = make_app(session, token, network_name, local_only=check_host(host) is None)
        config = uvicorn.Config(app, log_level="warning", ws=ws_impl,
                                ws_max_size=WS_MAX_BYTES, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?token={quote(self.token, safe='')}" if self.token else ""
        return f"http://{host}:{self.port}/{query}"

    def run(self) -> None:
        """Serve until Ctrl-C (uvicorn handles the signal) or stop()."""
        self.server.run(sockets=[self.sock])

    def start_in_thread(self, on_exit: Callable[[], None] | None = None) -> "LiveServer":
        """Serve from a background thread; wait until it accepts connections. on_exit: called from that thread
        when serving ends, whatever ended it (`sg3rt live` stops its render loop then)."""

        def serve() -> None:
            try:
                self.run()
            finally:
                if on_exit is not None:
                    on_exit()

        self._thread = threading.Thread(target=serve, name="sg3rt-live-http", daemon=True)
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise Sg3rtError("the live server stopped while starting")
            self._thread.join(0.02)
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self) -> None:
        """Block until the server thread ends (Ctrl-C interrupts the wait)."""
        while self.running:
            self._thread.join(0.5)

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        self.sock.close()


def _abort(ws: Any) -> None:
    """Drop a stalled page's TCP connection now: a closing handshake, and uvicorn's own close, would wait for a
    buffer the page never drains (and Ctrl-C would wait on it). The transport is reached through uvicorn's ASGI
    receive callable (its protocol's bound method); under another server the connection stays until its peer goes."""
    for channel in (getattr(ws, "_receive", None), getattr(ws, "_send", None)):  # (Starlette wraps send)
        transport = getattr(getattr(channel, "__self__", None), "transport", None)
        if transport is not None and hasattr(transport, "abort"):
            transport.abort()
            return


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def open_browser(url: str) -> None:
    import webbrowser

    if not webbrowser.open(url):
        print(f"could not open a browser: open {url} yourself", file=sys.stderr)
