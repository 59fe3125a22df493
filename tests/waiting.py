"""Polling with a bound, for tests that wait on a render thread or a server."""

from __future__ import annotations

import time

POLL_S = 0.01  # seconds between two looks


def wait_for(predicate, timeout: float, what: str = "condition"):
    """The first truthy value of predicate() within timeout seconds; AssertionError naming `what` otherwise."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(POLL_S)
    raise AssertionError(f"timed out waiting for {what}")
