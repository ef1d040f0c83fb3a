"""Server-sent events: the spec-exact decoder the streams use, for callers who parse SSE themselves."""

from ._sse import SSEDecoder, SSEFrame

__all__ = ["SSEDecoder", "SSEFrame"]
