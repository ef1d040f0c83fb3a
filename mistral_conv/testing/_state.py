"""The in-memory store of the local server: conversations and their entries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..models import AgentConversation, Conversation, Entry, ModelConversation

__all__ = ["Store", "StoredConversation", "new_id", "now"]


def new_id(prefix: str) -> str:
    """An id in the API's style: a prefix and 32 hex digits."""
    return f"{prefix}_{uuid.uuid4().hex}"


def now() -> datetime:
    """The current time in UTC (encoded as RFC 3339 with microseconds and ``Z``)."""
    return datetime.now(UTC)


@dataclass
class StoredConversation:
    """A conversation's record and its entries in append order."""

    record: Conversation
    entries: list[Entry] = field(default_factory=list)

    @property
    def model(self) -> str | None:
        return self.record.model if isinstance(self.record, ModelConversation) else None

    @property
    def agent_id(self) -> str | None:
        return self.record.agent_id if isinstance(self.record, AgentConversation) else None

    def touch(self) -> None:
        self.record = msgspec.structs.replace(self.record, updated_at=now())


class Store:
    """Conversations by id."""

    def __init__(self) -> None:
        self.conversations: dict[str, StoredConversation] = {}

    def get(self, conversation_id: str) -> StoredConversation | None:
        return self.conversations.get(conversation_id)

    def add(self, conversation: StoredConversation) -> None:
        self.conversations[conversation.record.id] = conversation

    def delete(self, conversation_id: str) -> bool:
        return self.conversations.pop(conversation_id, None) is not None

    def page(self, page: int, page_size: int, metadata: Any) -> list[Conversation]:
        """Newest first; ``metadata``, when an object, must match key by key."""
        items = sorted(self.conversations.values(), key=lambda c: c.record.created_at, reverse=True)
        records = [c.record for c in items]
        if isinstance(metadata, dict) and metadata:
            records = [
                r
                for r in records
                if isinstance(r.metadata, dict) and all(r.metadata.get(k) == v for k, v in metadata.items())
            ]
        return records[page * page_size : (page + 1) * page_size]
