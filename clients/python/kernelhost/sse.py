"""A Server-Sent Events parser (the WHATWG event-stream format) over lines
of bytes, as GET /v1/events?follow=1 and a streaming POST /v1/llm/chat send
them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

__all__ = ["Message", "parse"]

# The longest line the parser takes: an event is a few hundred bytes, an LLM
# chunk a few KiB; a longer line is a broken or hostile stream, not a message.
MAX_LINE = 1 << 20


@dataclass
class Message:
    """One message: ``id`` None when the message set none, ``event`` the
    event type ("message" by default), ``data`` its data lines joined by
    newlines, ``retry`` the reconnection time in ms it announced."""

    id: Optional[str]
    event: str
    data: str
    retry: Optional[int] = None


def parse(lines: Iterable[bytes]) -> Iterator[Message]:
    """Yields the messages of an event stream, given its lines (with or
    without their line ends). A message ends at a blank line; one that the
    stream breaks off before its blank line is not yielded, since its data
    may be cut. Comments (``:``) are skipped; a ``retry:`` line alone
    yields a message with empty data, so that the caller learns the
    reconnection time."""
    mid: Optional[str] = None
    event = ""
    data: list = []
    retry: Optional[int] = None
    has = False
    for raw in lines:
        if len(raw) > MAX_LINE:
            raise ValueError(f"event-stream line of {len(raw)} bytes exceeds {MAX_LINE}")
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if line == "":
            if has:
                yield Message(id=mid, event=event or "message", data="\n".join(data), retry=retry)
            mid, event, data, retry, has = None, "", [], None, False
            continue
        if line.startswith(":"):
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "id":
            if "\x00" not in value:
                mid, has = value, True
        elif name == "event":
            event, has = value, True
        elif name == "data":
            data.append(value)
            has = True
        elif name == "retry":
            if value.isdigit():
                retry, has = int(value), True
