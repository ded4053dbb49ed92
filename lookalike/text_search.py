"""Search by words: which embedders can, and the one sentence said where the index's model cannot.

A CLIP model (``open_clip:<arch>``, ``lookalike.families``) embeds text into the space its image
tower embeds images into, so an index it made answers a description as well as a photo. A timm
backbone embeds images only; its index must be rebuilt with a CLIP model first (``lookalike
reindex``), and every way in (the API, ``lookalike search --text``, the dashboard) says so in the
same words (``images_only``).

Text is refused, never cut: an empty description, or one over the text tower's context (77 tokens
for CLIP), raises ``BadText`` naming the token count and the limit. A query cut to fit would
silently search for something else than what was asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

import numpy as np

from lookalike.errors import BadText, NoTextTower
from lookalike.rows import ModelTag

CLIP_EXAMPLE = "open_clip:ViT-B-32"
REINDEX_TO_CLIP = f"lookalike reindex --model {CLIP_EXAMPLE}"
GUIDE = "docs/text-search.md"
SAY_IN_WORDS = "say in words what the images should show"
EMPTY_TEXT = f"the text is empty: {SAY_IN_WORDS}"  # the CLI, the API and the tokenizer say the same
# characters the API and the dashboard accept: far above what a CLIP text tower reads (77 tokens),
# so the tokenizer's count, which its refusal names, decides for any real description; this only
# keeps megabytes unread
MAX_TEXT_CHARS = 4096


class TextEmbedder(Protocol):
    """The text tower of an embedder (``lookalike.embedder.TimmEmbedder`` for an open_clip model)."""

    tag: ModelTag

    @property
    def has_text(self) -> bool: ...

    def check_text(self, text: str) -> None:
        """Raise ``BadText`` for text the tower cannot read whole (tokenizes only: cheap)."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) unit vectors in the image tower's space."""
        ...


def too_long(count: int, exact: bool, model: str, context: int) -> str:
    """The refusal of a text over a tower's ``context`` (start and end tokens included), naming the
    count (``exact`` False: a lower bound) and the limit."""
    tokens = f"{count} tokens" if exact else f"at least {count} tokens"
    return (
        f"the text is {tokens}; {model or 'the model'} reads at most {context - 2} "
        f"({context} with its start and end tokens): shorten it"
    )


def images_only(model: str) -> str:
    """What a user is told when the index's model has no text tower, and how to move."""
    return f"{model} embeds images only: search by words needs a CLIP model — `{REINDEX_TO_CLIP}`, see {GUIDE}"


def can_read_text(embedder: object) -> bool:
    """Whether ``embedder`` has a (loaded) text tower; an embedder that predates the text contract
    has none."""
    return bool(getattr(embedder, "has_text", False))


def text_tower(embedder: object, model: str) -> TextEmbedder:
    """``embedder`` as a text embedder; ``NoTextTower`` naming ``model`` when it embeds images only."""
    if not can_read_text(embedder):
        raise NoTextTower(images_only(model))
    return cast(TextEmbedder, embedder)


def refuse_blank(text: str) -> None:
    """``BadText`` for a text with nothing to search for, before any model or server is asked."""
    if not text.strip():
        raise BadText(EMPTY_TEXT)
