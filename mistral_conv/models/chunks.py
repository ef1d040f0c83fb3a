"""Content chunks: the parts of a message's `content` when it is not a plain string."""

from typing import ClassVar, Literal, TypeAlias

from msgspec import UNSET, UnsetType

from ._base import Model, Tagged, Unknown
from .literals import ImageDetail

__all__ = [
    "Chunk",
    "DocumentURLChunk",
    "ImageURL",
    "ImageURLChunk",
    "ReferenceChunk",
    "TextChunk",
    "ThinkChunk",
    "ThinkingPart",
    "ToolFileChunk",
    "ToolReferenceChunk",
    "UnknownChunk",
    "content_text",
]


class TextChunk(Tagged, tag="text", kw_only=True):
    """Plain text."""

    type: ClassVar[Literal["text"]] = "text"
    text: str


class ImageURL(Model, kw_only=True):
    """An image location with an optional detail level (`"low"`, `"auto"`, `"high"`)."""

    url: str
    detail: ImageDetail | None | UnsetType = UNSET


class ImageURLChunk(Tagged, tag="image_url", kw_only=True):
    """An image, as a URL or `data:` URI string, or an `ImageURL`."""

    type: ClassVar[Literal["image_url"]] = "image_url"
    image_url: str | ImageURL


class DocumentURLChunk(Tagged, tag="document_url", kw_only=True):
    """A document given by URL."""

    type: ClassVar[Literal["document_url"]] = "document_url"
    document_url: str
    document_name: str | None | UnsetType = UNSET


class ToolFileChunk(Tagged, tag="tool_file", kw_only=True):
    """A file produced by a tool (download it through the Files API)."""

    type: ClassVar[Literal["tool_file"]] = "tool_file"
    tool: str
    file_id: str
    file_name: str | None | UnsetType = UNSET
    file_type: str | None | UnsetType = UNSET


class ToolReferenceChunk(Tagged, tag="tool_reference", kw_only=True):
    """A citation of a tool result (for example a web search hit)."""

    type: ClassVar[Literal["tool_reference"]] = "tool_reference"
    tool: str
    title: str
    url: str | None | UnsetType = UNSET
    favicon: str | None | UnsetType = UNSET
    description: str | None | UnsetType = UNSET


class ReferenceChunk(Tagged, tag="reference", kw_only=True):
    """References by id, found inside a thinking chunk."""

    type: ClassVar[Literal["reference"]] = "reference"
    reference_ids: list[int | str]


class UnknownChunk(Unknown, kw_only=True):
    """A chunk of a type this SDK version does not know; `data` keeps it whole."""


ThinkingPart: TypeAlias = TextChunk | ToolReferenceChunk | ReferenceChunk | UnknownChunk
"""One part of a `ThinkChunk`'s reasoning."""


class ThinkChunk(Tagged, tag="thinking", kw_only=True):
    """Model reasoning: a list of text, tool-reference and reference parts."""

    type: ClassVar[Literal["thinking"]] = "thinking"
    thinking: list[ThinkingPart]
    signature: str | None | UnsetType = UNSET
    closed: bool | UnsetType = UNSET


Chunk: TypeAlias = (
    TextChunk
    | ImageURLChunk
    | DocumentURLChunk
    | ToolFileChunk
    | ToolReferenceChunk
    | ThinkChunk
    | ReferenceChunk
    | UnknownChunk
)
"""Any content chunk. Input content allows text, image_url, document_url,
thinking and tool_file; output content adds tool_reference."""


def content_text(content: str | list[Chunk]) -> str:
    """The text of a `content` value: the string itself, or its text chunks joined."""
    if isinstance(content, str):
        return content
    return "".join(c.text for c in content if isinstance(c, TextChunk))
