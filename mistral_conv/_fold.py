"""Event data to typed events, folded into a stream's state a batch at a time.

`decode_event` and `decode_events` decode data the general way. `Fold` reads the batches
of one attempt: it decodes each event in full and folds it into the `StreamState`, except
in runs of text deltas, where it reads only the text.

Runs of text deltas. In what the API sends, the deltas of one text run are the same bytes
up to the value of `content`, which comes last: `{"type":"message.output.delta",...,
"content":"TEXT"}`. Once a delta `D0` of the current run is decoded in full, `Fold` keeps
its bytes up to and with the opening quote of `,"content":"` (the head `H`); a next data
`H + BODY" }` (the string's rest, then `}`) is exactly `D0`'s event with that string as its
content, so a run of them costs one C-level pass of `bytes.removeprefix`,
`bytes.removesuffix` and one `decode_lines` of the strings. Why it is exact:

* `H` ends in `,"content":"`. A `"` after a `,` is a real quote (inside a string it would be
  `\\"`): so `"content"` is a key, its value is the string that opens at the end of `H`,
  and the `}` that ends the data closes the outermost object. Parsing `H` leaves the decoder
  in the same place with the same members read, whatever follows, and msgspec keeps the
  last of repeated keys: every field but `content` is `D0`'s.
* `D0` was decoded by the strict decoder as a `MessageOutputDeltaEvent` whose content equals
  the string that opens at the end of `H` (checked), so the state already holds its run
  (`StreamState.hot`); each next event of the run only appends its text, as `accumulate` does.
* Each rest must read as exactly one string. The rests are read in one `decode_lines`, each
  as `"` + the rest without its `}`, joined by line feeds: each opens a string, so each gives
  one value or more (a string cannot hold a line feed, so none reaches into the next), and
  the count of values must be the count of rests. Anything else (an object as content, a
  member after `content`, escapes in `H` that differ, a `created_at` in each delta) is
  decoded in full.

Events of a run are built only when read (`Batch.events`): `text_stream()` never builds them.
"""

from __future__ import annotations

from itertools import repeat
from operator import is_
from typing import TYPE_CHECKING

import msgspec

from ._accumulate import StreamState, accumulate_batch
from .models import ConversationEvent, KnownEvent, MessageOutputDeltaEvent, UnknownEvent
from .models._base import decode_lenient
from .models._decoders import ModelDecoder

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Batch", "EventNotJSON", "Fold", "decode_event", "decode_events"]

_decoders: list[msgspec.json.Decoder[KnownEvent]] = []
_strings = msgspec.json.Decoder(str)
_CONTENT = b',"content":"'
_END = b"}"
_QUOTE = b'"'
_NEXT = b'\n"'
_WINDOW = 16  # the first stretch of a run checked at once; it grows fourfold while all match
_MISSES = 8  # heads in a row that the next data did not start with: the stream has no such runs


def _event_decoder() -> msgspec.json.Decoder[KnownEvent]:
    """The one event decoder, built on first use (keeps it off the import path)."""
    if not _decoders:
        _decoders.append(msgspec.json.Decoder(KnownEvent))
    return _decoders[0]


class _TypeProbe(msgspec.Struct):
    type: str = ""


_probe: ModelDecoder[_TypeProbe] = ModelDecoder(_TypeProbe)
_NOT_READ = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


class EventNotJSON(ValueError):
    """An event's data is not JSON (or is nested too deeply to read): the stream is broken.

    `decoded` holds the events of the same batch that came before it.
    """

    def __init__(self, problem: str, data: bytes, decoded: list[ConversationEvent] | None = None) -> None:
        super().__init__(problem)
        self.data = data
        self.decoded = decoded or []


def decode_event(data: bytes) -> ConversationEvent:
    """Decode one event's data. JSON of an unknown or invalid shape becomes an `UnknownEvent`
    (forward compatibility); bytes that are not JSON raise `EventNotJSON`.

    The `UnknownEvent`'s type is the data's `type` when it has one, else empty.
    """
    try:
        known: KnownEvent = _event_decoder().decode(data)
        return known
    except _NOT_READ:
        pass
    return _decode_slowly(data)


def _decode_slowly(data: bytes) -> ConversationEvent:
    """`decode_event` once the strict decoder has refused `data`."""
    try:
        event: KnownEvent = decode_lenient(data, KnownEvent)  # type: ignore[arg-type]
        return event
    except msgspec.ValidationError:
        pass  # JSON, of another shape
    except msgspec.DecodeError as exc:
        raise EventNotJSON(f"event data is not JSON: {exc}", data) from None
    try:
        name = _probe.decode(data).type
    except msgspec.DecodeError:
        name = ""
    return UnknownEvent(type_name=name, data=data)


def decode_events(datas: list[bytes]) -> list[ConversationEvent]:
    """Decode a batch of event data: one C-level pass when all are well formed.

    Raises `EventNotJSON` at the first event that is not JSON, with the ones before it.
    """
    try:
        return list(map(_event_decoder().decode, datas))
    except _NOT_READ:
        pass
    out: list[ConversationEvent] = []
    for data in datas:
        try:
            out.append(decode_event(data))
        except EventNotJSON as exc:
            exc.decoded = out
            raise
    return out


def _texts(rests: list[bytes]) -> list[str] | None:
    """The strings of a run's rests (`BODY" }` each, after the head's opening quote), or
    `None` when one is anything else."""
    strings = list(map(bytes.removesuffix, rests, repeat(_END)))
    if any(map(is_, strings, rests)):
        return None  # one does not end the object there
    try:
        texts = _strings.decode_lines(_QUOTE + _NEXT.join(strings))
    except _NOT_READ:
        return None
    # Each rest opens a string, so it reads as one value or more (none reaches into the next: a
    # string cannot hold a line feed): as many values as rests means one string each.
    return texts if len(texts) == len(strings) else None


def _head(data: bytes, event: MessageOutputDeltaEvent) -> bytes | None:
    """`data` up to the opening quote of `content`'s value, when that value is a string that
    ends the data."""
    cut = data.rfind(_CONTENT)
    if cut < 0 or data[-1:] != _END:
        return None
    cut += len(_CONTENT)
    try:
        if _strings.decode(data[cut - 1 : -1]) != event.content:
            return None
    except _NOT_READ:
        return None
    return data[:cut]


class Batch:
    """The events of one batch: decoded ones, and runs of text deltas built only when read."""

    __slots__ = ("_events", "_pieces", "broken", "n", "texts")

    def __init__(self) -> None:
        # Decoded events, and runs: (the delta each is a copy of, their texts).
        self._pieces: list[list[ConversationEvent] | tuple[MessageOutputDeltaEvent, list[str]]] = []
        self._events: list[ConversationEvent] | None = None
        self.n = 0
        self.texts: list[str] = []  # the string deltas, in order
        self.broken: EventNotJSON | None = None  # the data that was not JSON, after the events

    def events(self) -> list[ConversationEvent]:
        """Every event of the batch, in order (built once)."""
        events = self._events
        if events is None:
            pieces = self._pieces
            first = pieces[0] if len(pieces) == 1 else None
            if isinstance(first, list):
                events = first
            else:
                events = []
                replace: Callable[..., MessageOutputDeltaEvent] = msgspec.structs.replace
                for piece in pieces:
                    if isinstance(piece, list):
                        events += piece
                    else:
                        template, texts = piece
                        events += [replace(template, content=text) for text in texts]
            self._events = events
        return events


class Fold:
    """Reads the batches of one attempt into its `StreamState`; keeps the current run's head."""

    __slots__ = ("_head", "_misses", "_template", "state")

    def __init__(self) -> None:
        self.state = StreamState()
        self._head: bytes | None = None
        self._template: MessageOutputDeltaEvent | None = None
        self._misses = 0

    def batch(self, datas: list[bytes]) -> Batch:
        """Decode `datas` and fold them into `state`: the same events, state and texts as
        `accumulate_batch(state, decode_events(datas), texts)`. Data that is not JSON ends the
        batch (`Batch.broken`), after the events before it."""
        batch = Batch()
        n = len(datas)
        pos = 0
        while pos < n:
            look = True
            head = self._head
            if head is not None:
                taken = self._run(batch, datas, pos, head)
                if taken > 0:
                    pos += taken
                    continue
                if taken == 0:
                    self._misses += 1
                look = taken == 0  # a run whose strings did not all read: the rest in full
                self._head = self._template = None
            pos = self._slow(batch, datas, pos, look)
            if batch.broken is not None:
                break
        return batch

    def _run(self, batch: Batch, datas: list[bytes], pos: int, head: bytes) -> int:
        """Read the run of deltas that start with `head` at `pos`: how many were taken (0 when
        the first does not; minus one when their strings did not all read)."""
        n = len(datas)
        end = pos
        window = _WINDOW
        rests: list[bytes] = []
        while end < n:
            stretch = datas[end : end + window]
            cut = list(map(bytes.removeprefix, stretch, repeat(head)))
            if any(map(is_, cut, stretch)):
                first = list(map(is_, cut, stretch)).index(True)
                rests += cut[:first]
                end += first
                break
            rests += cut
            end += len(stretch)
            window *= 4
        if end == pos:
            return 0
        template = self._template
        state = self.state
        hot = state.hot
        texts = _texts(rests)
        if texts is None or template is None or hot is None or hot[0] is not template.id:
            return -1
        hot[3].extend(texts)
        state.events += len(texts)
        batch.texts += texts
        batch._pieces.append((template, texts))
        batch.n += len(texts)
        self._misses = 0
        return end - pos

    def _slow(self, batch: Batch, datas: list[bytes], pos: int, look: bool) -> int:
        """Decode in full from `pos` until a text delta whose head the next data starts with (a
        run follows; only while `look`), or the end; fold them. Returns where it stopped."""
        decode = _event_decoder().decode
        n = len(datas)
        events: list[ConversationEvent] = []
        end = pos
        try:
            while end < n:
                data = datas[end]
                end += 1
                try:
                    event: ConversationEvent = decode(data)
                except _NOT_READ:
                    events.append(_decode_slowly(data))
                    continue
                events.append(event)
                if (
                    look
                    and isinstance(event, MessageOutputDeltaEvent)
                    and event.content.__class__ is str
                    and self._misses < _MISSES
                    and self._starts_run(event, data, datas[end] if end < n else None)
                ):
                    break
        except EventNotJSON as exc:
            batch.broken = exc
        accumulate_batch(self.state, events, batch.texts)
        batch._pieces.append(events)
        batch.n += len(events)
        return end

    def _starts_run(self, event: MessageOutputDeltaEvent, data: bytes, after: bytes | None) -> bool:
        """Keep `data`'s head when `after` starts with it, or when `data` ends the batch (the
        next batch may go on with the run)."""
        if after is not None:
            cut = data.rfind(_CONTENT)
            if cut < 0 or not after.startswith(data[: cut + len(_CONTENT)]):
                self._misses += 1
                return False
        head = _head(data, event)
        if head is None:
            return False
        self._head, self._template = head, event
        return True
