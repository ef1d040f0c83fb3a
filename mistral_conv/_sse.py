"""Bytes to server-sent-event frames, following the WHATWG event-stream rules.

Knows nothing of JSON or Mistral. `SSEDecoder.feed` takes body chunks as
they arrive and returns the frames they complete; `SSEDecoder.close` ends
the body. Line ends may be LF, CR or CRLF (even split across chunks); a
leading BOM is dropped; comments and unknown fields are ignored; `data`
lines are joined with LF; a block without data is not dispatched.

Speed: Mistral's canonical framing is one `event:` and one `data:` line
per block, LF line ends. `SSEDecoder.feed_data` checks a whole chunk for
that framing with a few C-level calls and then takes its data lines directly;
any other chunk goes through the general line parser, so the fast path never
changes the result.
"""

from __future__ import annotations

from itertools import repeat
from operator import itemgetter

import msgspec

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "EventTooLarge", "SSEDecoder", "SSEFrame"]

DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"


_DATA_LINE = b"\ndata: "
_NEXT_EVENT = b"\n\nevent: "
_BLANK = b"\n\n"
_LF = b"\n"
_AT_ONCE = 256
_data_of, _found, _name_of = itemgetter(0), itemgetter(1), itemgetter(2)


def _canonical_data(data: bytes, end: int, rest: bytes, limit: int) -> list[bytes] | None:
    """The data of the blocks of `data[:end]` (the region; `data` is the region, `LF LF`, then
    `rest`) when each block is exactly `event: NAME` LF `data: JSON`.

    `None` for anything else (which the general parser then reads). Split at each
    `LF data: `, the region is `event: NAME1`, then for each block but the last
    `DATA LF LF event: NAME`, then the last `DATA`. Each of those pieces is cut at its
    last `LF LF event: `. No piece may hold any other line end: every block then has
    exactly its two lines, and the general parser gives the same data. A region longer
    than `limit` goes to the general parser, which fails at the block over it.

    `data` is split whole, not the region cut out of it (a copy of the chunk, one more large
    buffer for the allocator to take and give back at every read): the pieces that `rest`
    adds are dropped. A separator cannot straddle the region's end (`LF LF`) unless `rest`
    opens with `data: `, which the check of the last piece refuses.
    """
    if data[:7] != b"event: " or end > limit:  # (a block over the limit fails there)
        return None
    parts = data.split(_DATA_LINE)
    rest_head, more, _ = rest.partition(_DATA_LINE)
    if more:
        del parts[len(parts) - rest.count(_DATA_LINE) :]
    if len(parts) < 2 or b"\n" in parts[0]:
        return None
    last = parts.pop()  # the region's last data, LF LF, then `rest` up to its first separator
    cut = len(last) - len(rest_head) - 2
    if cut < 0 or last[cut:] != _BLANK + rest_head:
        return None
    cuts = list(map(bytes.rpartition, parts[1:], repeat(_NEXT_EVENT)))
    datas = list(map(_data_of, cuts))
    datas.append(last[:cut])
    if all(map(_found, cuts)) and not _any_line_end(datas) and b"\n" not in b"".join(map(_name_of, cuts)):
        return datas
    return None


def _any_line_end(datas: list[bytes]) -> bool:
    """Whether a piece holds a LF: joined a few hundred at a time (a small buffer each)."""
    return any(_LF in b"".join(datas[i : i + _AT_ONCE]) for i in range(0, len(datas), _AT_ONCE))


class EventTooLarge(ValueError):
    """An event grew past the decoder's `max_event_size`."""


class SSEFrame(msgspec.Struct, frozen=True, array_like=True):
    """One dispatched event: its `event` name (`"message"` by default), `data` and last `id`."""

    event: str
    data: bytes
    id: str | None = None


class SSEDecoder:
    """Incremental event-stream decoder. `last_event_id` and `retry` keep the latest values."""

    __slots__ = (
        "_at_start",
        "_cr",
        "_failed",
        "_pending",
        "_size",
        "last_event_id",
        "max_event_size",
        "retry",
    )

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self.max_event_size = max_event_size
        self._pending: list[bytes] = []
        self._size = 0
        self._cr = False
        self._at_start = True
        self._failed: EventTooLarge | None = None
        self.last_event_id: str | None = None
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        """Add a chunk of the body; return the frames it completes."""
        done = self._complete(chunk)
        return [] if done is None else self._frames(done[0][: done[1]])

    def feed_data(self, chunk: bytes) -> list[bytes]:
        """Like `feed`, but return only the `data` of each frame (the fast path for JSON events).

        When every block of the chunk is in the canonical framing (one `event: ` line
        and then one `data: ` line), the checks and the split are a few calls over the
        whole chunk; any other chunk goes through `feed`'s general parser, with the
        same result.
        """
        done = self._complete(chunk)
        if done is None:
            return []
        data, end, rest = done
        datas = _canonical_data(data, end, rest, self.max_event_size)
        if datas is not None:
            return datas
        return [frame.data for frame in self._frames(data[:end])]

    def _complete(self, chunk: bytes) -> tuple[bytes, int, bytes] | None:
        """Take a chunk; return what it completes: `data`, where its complete blocks end (before
        the last blank line) and the rest after it, which waits for the next chunk."""
        if self._failed is not None:
            raise self._failed
        if self._cr:
            chunk = b"\r" + chunk
            self._cr = False
        if self._at_start:
            chunk = b"".join(self._pending) + chunk
            self._pending, self._size = [], 0
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._pending, self._size = [chunk], len(chunk)
                return None
            self._at_start = False
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        if b"\r" in chunk:
            if chunk.endswith(b"\r"):
                # A CR at the end may be the first half of a CRLF: decide with the next chunk.
                self._cr = True
                chunk = chunk[:-1]
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not chunk:
            return None
        pending = self._pending
        if pending:
            if b"\n\n" not in chunk and not (chunk[:1] == b"\n" and pending[-1][-1:] == b"\n"):
                # Still inside one event: keep the pieces, join them once when it completes.
                pending.append(chunk)
                self._size += len(chunk)
                self._check_size()
                return None
            pending.append(chunk)
            data = b"".join(pending)
            self._pending, self._size = [], 0
        else:
            data = chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending, self._size = [data], len(data)
            self._check_size()
            return None
        rest = data[end + 2 :]
        if rest:
            self._pending, self._size = [rest], len(rest)
            self._check_size(defer=True)
        return data, end, rest

    def _frames(self, region: bytes) -> list[SSEFrame]:
        frames: list[SSEFrame] = []
        limit = self.max_event_size
        for block in region.split(b"\n\n"):
            if len(block) > limit:
                # Hand out the events before it; the error comes with the next call.
                self._failed = EventTooLarge(f"an event exceeds the maximum size of {limit} bytes")
                if not frames:
                    raise self._failed
                return frames
            frame = self._parse_block(block)
            if frame is not None:
                frames.append(frame)
        return frames

    def close(self) -> list[SSEFrame]:
        """End of the body: dispatch a last block whose lines are complete, drop a cut-off line."""
        if self._failed is not None:
            raise self._failed
        data = b"".join(self._pending)
        self._pending, self._size = [], 0
        if self._cr:
            data += b"\n"
            self._cr = False
        cut = data.rfind(b"\n")
        if cut < 0:
            return []
        frame = self._parse_block(data[:cut])
        return [frame] if frame is not None else []

    def _check_size(self, *, defer: bool = False) -> None:
        """Fail once the unfinished event outgrows the limit; the failure sticks to the decoder.

        With `defer`, the error waits for the next call, so the complete events
        in hand are still delivered first.
        """
        if self._size > self.max_event_size:
            self._pending, self._size = [], 0
            self._failed = EventTooLarge(f"an event exceeds the maximum size of {self.max_event_size} bytes")
            if not defer:
                raise self._failed

    def _parse_block(self, block: bytes) -> SSEFrame | None:
        """The general parser: the lines of one block (LF line ends), dispatched at its end."""
        data: list[bytes] = []
        event = b""
        for line in block.split(b"\n"):
            if not line or line[:1] == b":":
                continue
            colon = line.find(b":")
            if colon < 0:
                name, value = line, b""
            else:
                name, value = line[:colon], line[colon + 1 :]
                if value[:1] == b" ":
                    value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value
            elif name == b"id":
                if b"\0" not in value:
                    self.last_event_id = value.decode("utf-8", "replace")
            elif name == b"retry" and value and value.isdigit():
                self.retry = int(value)
        if not data:
            return None
        name_str = event.decode("utf-8", "replace") if event else "message"
        return SSEFrame(name_str, b"\n".join(data), self.last_event_id)
