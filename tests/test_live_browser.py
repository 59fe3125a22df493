"""The live page in a real headless Chromium (Debian's, driven by Playwright): frames arrive and the canvas
changes, the rotation slider turns the picture by exactly that angle, an editing direction's slider
sets its amount, a screenshot is taken, and a sound track (--audio) plays in sync with the server.

Skips with the reason where Playwright or a Chromium binary is missing (.ci/run installs both where it can).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the live extra is not installed: pip install 'sg3rt[live]'")
pytest.importorskip("uvicorn", reason="the live extra is not installed: pip install 'sg3rt[live]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

from sg3rt.live import LiveSession  # noqa: E402
from sg3rt.live.server import LiveServer  # noqa: E402
from sg3rt.runtime.torch_backend import TorchRuntime  # noqa: E402

WAIT_MS = 60_000  # generous: Chromium and the render loop share 2 cores


def chromium_path() -> str:
    """$SG3RT_CHROMIUM, else Debian's chromium (or chromium-browser / google-chrome) on PATH."""
    for candidate in (os.environ.get("SG3RT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    pytest.skip("no Chromium binary (apt-get install chromium, or set SG3RT_CHROMIUM)")


@pytest.fixture
def page(load_reference, tmp_path):
    executable = chromium_path()
    from sg3rt.animate import Edit, compute_directions

    G = load_reference("sg3r_64")
    runtime = TorchRuntime(G)
    compute_directions(G, "sefa", None, 1).save(tmp_path / "dirs.npz")
    edits = (Edit.parse(f"{tmp_path / 'dirs.npz'}:0:0"),)  # one editing direction: one slider on the page
    session = LiveSession(runtime, size=128, record_dir=tmp_path, edits=edits).start()
    server = LiveServer(session, port=0).start_in_thread()
    with sync_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Exception as e:  # a Chromium that cannot start here (missing libraries, sandbox)
            pytest.skip(f"Chromium at {executable} does not start: {str(e).splitlines()[0]}")
        tab = browser.new_page(viewport={"width": 1100, "height": 760})
        tab.goto(server.url)
        yield tab, session
        browser.close()
    server.stop()
    session.close()


def canvas(tab) -> np.ndarray:  # [H, W, 3] uint8, the pixels the page drew
    from PIL import Image

    url = tab.evaluate("document.getElementById('frame').toDataURL('image/png')")
    png = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def wait_frames(tab, more: int, min_version: int = 0) -> None:
    n = tab.evaluate("window.sg3rtLive.frames")
    tab.wait_for_function(f"window.sg3rtLive.frames >= {n + more} && window.sg3rtLive.version >= {min_version}",
                          timeout=WAIT_MS)


def test_page_streams_and_rotation_turns_the_picture(page, tmp_path):
    tab, session = page
    tab.wait_for_function("window.sg3rtLive && window.sg3rtLive.frames >= 2", timeout=WAIT_MS)
    first = canvas(tab)
    wait_frames(tab, 3)
    assert np.abs(canvas(tab).astype(float) - first).mean() > 0.5  # the walk runs without a touch

    tab.click("[data-key=paused]")
    tab.wait_for_function("window.sg3rtLive.controls.paused === true", timeout=WAIT_MS)
    wait_frames(tab, 2, session.version)
    still = canvas(tab).astype(float)
    wait_frames(tab, 2)
    assert np.abs(canvas(tab).astype(float) - still).mean() < 0.5  # paused: the picture holds

    tab.fill("[data-key=rotate]", "90")  # the rotation slider
    tab.wait_for_function("window.sg3rtLive.controls.rotate === 90", timeout=WAIT_MS)
    wait_frames(tab, 1, session.version)
    turned = canvas(tab).astype(float)
    tab.screenshot(path=str(tmp_path / "live.png"))
    assert (tmp_path / "live.png").stat().st_size > 10_000
    # StyleGAN3-R is exactly equivariant to 90° turns: the picture is the still one, rotated a quarter turn
    # counter-clockwise (up to JPEG noise), and clearly closer to that than to the unrotated one (how far
    # the unrotated picture is depends on where the walk paused: 5 to 20 levels were seen).
    error = np.abs(turned - np.rot90(still, 1)).mean()
    assert error < 3
    assert np.abs(turned - still).mean() > max(2 * error, 2.0)
    assert tab.evaluate("window.sg3rtLive.errors.length") == 0
    hud = tab.inner_text("#hud")
    assert "frames/s" in hud and "torch cpu fp32" in hud and "1 client" in hud

    tab.click("[data-do=next]")  # the next seed, shown as a still image
    tab.wait_for_function("window.sg3rtLive.controls.seed === 1 && window.sg3rtLive.controls.walk === 'off'",
                          timeout=WAIT_MS)
    tab.fill("[data-key=psi]", "0.5")
    tab.wait_for_function("window.sg3rtLive.controls.psi === 0.5", timeout=WAIT_MS)
    assert session.controls.psi == 0.5 and session.controls.seed == 1

    # The sliders span what the server accepts (from the hello message): psi -1.5 is on the page's slider.
    tab.fill("[data-key=psi]", "-1.5")
    tab.wait_for_function("window.sg3rtLive.controls.psi === -1.5", timeout=WAIT_MS)
    assert tab.get_attribute("[data-key=psi]", "min") == "-2"
    # Mixed layers go as a pair: a first layer past the last moves both (one at a time would be refused).
    top = session.runtime.num_ws - 1
    tab.fill("[data-key=mix_from]", str(top))
    tab.dispatch_event("[data-key=mix_from]", "change")  # (a typed number is sent on commit: Enter or leaving it)
    tab.wait_for_function(f"window.sg3rtLive.controls.mix_from === {top} && window.sg3rtLive.controls.mix_to === {top}",
                          timeout=WAIT_MS)
    assert tab.evaluate("window.sg3rtLive.errors.length") == 0

    tab.fill("[data-edit='0']", "3")  # the editing direction's slider (made from the hello message)
    tab.wait_for_function("window.sg3rtLive.controls.edits[0] === 3", timeout=WAIT_MS)
    assert session.controls.edits == (3.0,)


def test_page_plays_the_sound_track_in_sync(load_reference, tmp_path):
    """sg3rt live --audio: the page starts the track on a click and keeps it within 0.15 s of the server's clock."""
    pytest.importorskip("librosa", reason="the audio extra (librosa) is not installed")
    executable = chromium_path()
    from sg3rt.live.audio import LiveAudio
    from test_audio import tone, write_wav

    audio = LiveAudio.open(write_wav(tmp_path / "tone.wav", tone(440.0, 3.0)))
    session = LiveSession(TorchRuntime(load_reference("sg3r_64")), audio=audio).start()
    server = LiveServer(session, port=0).start_in_thread()
    try:
        with sync_api.sync_playwright() as p:
            try:
                browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            except Exception as e:
                pytest.skip(f"Chromium at {executable} does not start: {str(e).splitlines()[0]}")
            tab = browser.new_page()
            tab.goto(server.url)
            tab.wait_for_function("window.sg3rtLive && window.sg3rtLive.audio && window.sg3rtLive.frames >= 1",
                                  timeout=WAIT_MS)
            end = time.monotonic() + WAIT_MS / 1000
            while not 1.0 <= audio.position(session.clocks.audio) <= 1.8 and time.monotonic() < end:
                time.sleep(0.01)  # the track will start at 0, well behind the server's audio clock
            tab.mouse.click(5, 5)  # the first click starts the sound (browsers block autoplay)
            tab.wait_for_function("window.sg3rtLive.audio.started", timeout=WAIT_MS)
            # The track starts at 0 while the server's clock has run on: the page moves it to the server's time.
            tab.wait_for_function("window.sg3rtLive.audio.drift !== null && "
                                  "Math.abs(window.sg3rtLive.audio.drift) < 0.15", timeout=WAIT_MS)
            assert tab.evaluate("window.sg3rtLive.audio.corrections") >= 1
            assert tab.evaluate("window.sg3rtLive.errors.length") == 0
            browser.close()
    finally:
        server.stop()
        session.close()
