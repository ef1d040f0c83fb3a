"""ResponseInfo: what the API answered, beside the parsed result."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

__all__ = ["ResponseHeaders", "ResponseInfo"]


class ResponseHeaders(Mapping[str, str]):
    """An answer's headers, read-only, looked up without regard to case.

    The names are folded to lower case on first use: most results never look at their headers.
    """

    __slots__ = ("_given", "_lowered")

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._given = headers
        self._lowered: dict[str, str] | None = None

    @property
    def _items(self) -> dict[str, str]:
        items = self._lowered
        if items is None:
            items = self._lowered = {k.lower(): v for k, v in self._given.items()}
        return items

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"ResponseHeaders({sorted(self._items)})"  # names only: values may be cookies

    def __reduce__(self) -> tuple[type[ResponseHeaders], tuple[dict[str, str]]]:
        return ResponseHeaders, (self._items,)  # what a transport gave may not pickle


class ResponseInfo:
    """The HTTP answer behind a result or a stream: status, headers and the server's request id.

    Every result of a client call carries one as `raw_response` (and its
    `request_id`); so does a stream once it is open.
    """

    __slots__ = ("headers", "request_id", "status")

    def __init__(self, status: int, headers: Mapping[str, str], request_id: str | None) -> None:
        self.status = status
        self.headers = ResponseHeaders(headers)
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"ResponseInfo(status={self.status}, request_id={self.request_id!r})"


class ConversationPage(list["Conversation"]):
    """A page of conversations (a `list`), with the answer's `request_id` and `raw_response`."""

    __slots__ = ("raw_response",)

    def __init__(self, items: list[Conversation], raw_response: ResponseInfo | None = None) -> None:
        super().__init__(items)
        self.raw_response = raw_response

    @property
    def request_id(self) -> str | None:
        """The server's request id for this page."""
        return self.raw_response.request_id if self.raw_response is not None else None


from .models import Conversation  # noqa: E402  (models import nothing from here)
