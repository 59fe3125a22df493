"""The WebSocket protocol between a page and the server: message parsing, replies, and the frame header.

Page -> server (JSON text, at most MAX_MESSAGE_BYTES):
    {"set": {"psi": 0.7, ...}}          change controls (all or nothing)
    {"do": "random" | "next" | "prev" | "record" | "stop"}
    {"ack": SEQ}                        a frame was shown (at most MAX_IN_FLIGHT frames go unacknowledged)
Server -> page:
    binary: FRAME_HEADER (seq, controls version, both uint32 little-endian) + JPEG
    {"type": "hello" | "state" | "ok" | "error" | "stats", ...} as JSON text
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from .controls import ControlError

MAX_MESSAGE_BYTES = 16 * 1024  # a control message is tiny; anything larger is refused with an error reply
MAX_IN_FLIGHT = 2  # frames sent but not acknowledged per client: a slow page gets fewer frames, never older ones
FRAME_HEADER = struct.Struct("<II")  # seq, controls version
ACTIONS = ("random", "next", "prev", "record", "stop")


@dataclass(frozen=True)
class Message:
    kind: str  # set | do | ack
    value: Any


def parse_message(text: str | bytes | None) -> Message:
    """One page message -> Message, or ControlError with a one-line reason (nothing is changed by a bad one)."""
    if text is None:
        raise ControlError("binary messages are not accepted: send JSON text")
    if isinstance(text, bytes):
        raise ControlError("binary messages are not accepted: send JSON text")
    if len(text.encode("utf-8", "replace")) > MAX_MESSAGE_BYTES:
        raise ControlError(f"message too large ({len(text)} characters; at most {MAX_MESSAGE_BYTES} bytes)")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ControlError("message is not valid JSON") from None
    if not isinstance(data, dict) or len(data) != 1:
        raise ControlError('a message is one JSON object with one key: "set", "do" or "ack"')
    (kind, value), = data.items()
    if kind == "set":
        if not isinstance(value, dict):
            raise ControlError('"set" takes an object of control: value')
    elif kind == "do":
        if value not in ACTIONS or not isinstance(value, str):
            raise ControlError(f'"do" takes one of {", ".join(ACTIONS)}, got {str(value)[:40]!r}')
    elif kind == "ack":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ControlError('"ack" takes the frame sequence number shown')
    else:
        raise ControlError(f'unknown message {kind[:40]!r}: use "set", "do" or "ack"')
    return Message(kind, value)


def frame_message(seq: int, version: int, jpeg: bytes) -> bytes:
    return FRAME_HEADER.pack(seq & 0xFFFFFFFF, version & 0xFFFFFFFF) + jpeg


def split_frame(data: bytes) -> tuple[int, int, bytes]:
    """A binary frame message -> (seq, version, JPEG bytes)."""
    seq, version = FRAME_HEADER.unpack_from(data)
    return seq, version, data[FRAME_HEADER.size:]
