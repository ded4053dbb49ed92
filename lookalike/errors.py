"""Two families of failure, handled in opposite ways.

``Unavailable``: a service (S3, Kafka, Milvus) is down or refusing; retry with backoff, commit
nothing. ``BadInput``: this one message or object can never be processed; dead-letter it with a
reason and move on.
"""

from __future__ import annotations


class LookalikeError(Exception):
    """Base of the project's own errors."""


class Unavailable(LookalikeError):
    """A service is unreachable or failing; the operation may succeed later."""

    def __init__(self, service: str, detail: str) -> None:
        super().__init__(f"{service} unavailable: {detail}")
        self.service = service
        self.detail = detail


class BadInput(LookalikeError):
    """This input can never succeed (corrupt image, oversized object, malformed event)."""


class ModelMismatch(LookalikeError):
    """The collection holds vectors of another model; mixing them would make search meaningless."""


class NotIndexed(ModelMismatch):
    """No collection yet: nothing has been indexed. Its own type, so callers say "empty" by type."""


class BadText(BadInput):
    """A text query the model cannot read: empty, or longer than its text tower's context."""


class NoTextTower(LookalikeError):
    """The index's model embeds images only (a timm backbone), so it cannot be searched by words."""
