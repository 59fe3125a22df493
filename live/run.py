"""`sg3rt live` as a library call: open the runtime, start the session, OSC and the web server; stop cleanly."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

DEFAULT_PORT = 8765


def run_live(network: str | Path | Any | None = None, *, backend: str = "auto", device: str = "auto",
             precision: str | None = None, size: Any = None, stream_size: int | None = None, host: str = "127.0.0.1",
             port: int = DEFAULT_PORT, osc_port: int | None = None, token: str | None = None,
             open_page: bool = False, record_dir: str | Path | None = "sg3rt-live",
             controls: dict[str, Any] | None = None, edits: Sequence[str] = (),
             audio: str | Path | None = None, react: str | None = None, midi: str | bool | None = None,
             midi_map: str | Path | None = None, echo: Callable[[str], None] | None = None,
             audio_in: str | None = None, cuda_graphs: bool = False) -> Path | None:
    """Serve a live session until Ctrl-C; returns the recording finished at shutdown, if one was running.

    size: a StyleGAN3 canvas, "1920x1080" or (width, height) (open_generator's); stream_size: the
    streamed frame's width in pixels (default the canvas's; the height keeps the aspect ratio).
    edits: --edit specs (FILE.npz:K:AMOUNT or FILE.npy:AMOUNT[@LAYERS]), one amount slider each.
    audio: a sound track played in sync (looping) whose features drive the --react amounts (NAME=X,...).
    audio_in: instead, a sound input device ('default', an index or part of a name: audio_in.input_devices)
    whose sound, analysed as it comes, drives them.
    midi: True (the first MIDI input) or part of an input's name; midi_map: a .toml/.json map (default: the built-in one).
    cuda_graphs: PyTorch on CUDA replays each frame's synthesis from one CUDA graph (live renders one image a call,
    where kernel launches weigh most)."""
    from ..animate.edits import Edit
    from ..runtime import open_generator
    from .osc import OscControl
    from .server import LiveServer, check_host, check_port_and_token, import_web, open_browser
    from .session import LiveSession

    echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    import_web()  # a missing extra fails before the network is loaded
    directions = tuple(Edit.parse(e) for e in edits)  # a bad file fails before the network is loaded too
    track: Any = None
    if audio is not None and audio_in is not None:
        from ..errors import InputError

        raise InputError("--audio and --audio-in: give one sound source, a file or an input device")
    if audio is not None:  # read and analysed now: a bad file or --react fails before the network is loaded
        from .audio import LiveAudio

        track = LiveAudio.open(audio, react)
    elif react is not None and audio_in is None:
        from ..errors import InputError

        raise InputError("--react needs --audio FILE or --audio-in DEVICE")
    if osc_port is not None:
        from .osc import import_osc

        import_osc()
    midi_port = None
    if midi not in (None, False) or midi_map is not None:  # map and port checked before the network loads
        from .midi import find_input
        from .midimap import MidiMap

        mapping = MidiMap.load(midi_map) if midi_map is not None else MidiMap.default()
        midi_port = find_input(midi if isinstance(midi, str) else None)
    check_port_and_token(port, token)
    warning = check_host(host, token)
    source = None  # a sound input device, opened now: a missing one or PortAudio fails before the network loads
    if audio_in is not None:
        from .audio_in import LiveInput

        track = source = LiveInput.open(audio_in, react)
    try:
        runtime = open_generator(network, backend=backend, device=device, precision=precision, size=size,
                                 cuda_graphs=cuda_graphs)
    except BaseException:
        if source is not None:
            source.close()
        raise
    osc = server = midi_control = None
    try:
        session = LiveSession(runtime, size=stream_size, record_dir=record_dir, controls=controls, edits=directions,
                              audio=track)
        name = str(network) if network is not None else "embedded default network"
        server = LiveServer(session, host, port, token, name)
        server.start_in_thread(on_exit=session.stop)  # pages are served from there; this thread renders
        if osc_port is not None:
            osc = OscControl(session, host, osc_port).start()
        if midi_port is not None:
            from .midi import MidiControl

            midi_control = MidiControl(session, mapping).open_port(midi_port)
        if warning:
            echo(warning)
        echo(f"sg3rt live: {name} [{runtime.backend}, {runtime.device}, {runtime.precision}, "
             f"{runtime.width}x{runtime.height} px -> {session.size}x{session.height} px]")
        if source is not None:
            echo(f"audio in: {source.name} ({source.channels} ch, {source.sample_rate} Hz), analysed as it comes")
        elif track is not None:
            f = track.features
            echo(f"audio: {track.path.name}, {f.duration:.2f} s, tempo {f.tempo:.1f} bpm, {len(track.beats)} beats "
                 "(the page plays it from your first click)")
        if osc is not None:
            echo(f"OSC on udp://{host}:{osc.port} (addresses /sg3rt/<control>)")
        if midi_control is not None:
            echo(f"MIDI from {midi_control.port_name!r} ({midi_control.map.describe()})")
        print(server.url, flush=True)  # the one line on stdout: scripts read the URL from it
        if open_page:
            open_browser(server.url)
        session.run()  # on this thread, which opened the runtime (LiveSession.run says why), until Ctrl-C
        if session.error is not None and server.running:
            echo(f"the render loop stopped: {session.error} (the pages show it; Ctrl-C to quit)")
            server.wait()
    finally:
        if midi_control is not None:
            midi_control.close()
        if osc is not None:
            osc.close()
        recorded = None
        if server is not None:
            server.stop()
            recorded = session.close()
            if recorded is not None:
                echo(f"finished recording {recorded}")
        runtime.close()
        if source is not None:
            source.close()
    return recorded
