"""In-memory stand-ins for search by words: an embedder with (or without) a text tower, and the part
of ``VectorIndex`` a ``Searcher`` queries. No model, no Milvus.

``WordsEmbedder`` keeps the text contract of ``lookalike.embedder.TimmEmbedder`` for open_clip models
(``has_text``, ``check_text``, ``embed_texts``): empty text and text over ``CONTEXT`` tokens raise
``BadText`` naming the count and the limit; the vector of a text is the sum of its colour words'
unit vectors, normalised, so a test can say which rows must come first. Images embed to their mean
colour (``FakeEmbedder``), so the same index answers both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lookalike.errors import BadText, NoTextTower, Unavailable
from lookalike.rows import Hit, ModelTag
from lookalike.text_search import EMPTY_TEXT, images_only, too_long
from tests.unit.fakes import FakeEmbedder

CONTEXT = 77  # CLIP's context: start and end tokens included
COLOURS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}
CLIP_TAG = ModelTag("open_clip:ViT-S-32", "random", 3)
TIMM_TAG = ModelTag("mobilenetv2_100", "random", 3)


def unit(v: Sequence[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / max(float(np.linalg.norm(a)), 1e-12)


class WordsEmbedder(FakeEmbedder):
    """A 'CLIP model' (``tag``) or, with ``text=False``, a timm backbone that embeds images only."""

    def __init__(self, text: bool = True) -> None:
        self.tag = CLIP_TAG if text else TIMM_TAG
        self.has_text = text
        self.embedded: list[str] = []  # every text embed_texts was given

    def tokens(self, text: str) -> int:
        return len(text.split()) + 2  # a word a token, plus start and end

    def check_text(self, text: str) -> None:
        if not self.has_text:
            raise NoTextTower(images_only(self.tag.model))
        if not text.strip():
            raise BadText(EMPTY_TEXT)
        if self.tokens(text) > CONTEXT:  # the real tokenizer's sentence, with this fake's count
            raise BadText(too_long(self.tokens(text), True, self.tag.model, CONTEXT))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)  # on entry: a refused call is recorded too
        for text in texts:
            self.check_text(text)
        rows = [np.sum([COLOURS.get(w, (0.1, 0.1, 0.1)) for w in t.lower().split()], axis=0) for t in texts]
        return np.stack([unit(r) for r in rows]).astype(np.float32)


@dataclass
class SearchIndex:
    """Rows (id -> unit vector) behind one alias target; exact inner-product search that records the
    filter each search was given (the real filtering is Milvus's, tested against Milvus)."""

    tag: ModelTag
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    collection: str = "images__v1"
    filters: list[str] = field(default_factory=list)
    down: bool = False  # every call raises Unavailable, as an unreachable Milvus does
    indexed: bool = True  # exists(): False while nothing is indexed yet
    closed: bool = False

    def check(self) -> None:
        if self.down:
            raise Unavailable("milvus", "code 2: Fail connecting (fake)")

    def exists(self) -> bool:
        self.check()
        return self.indexed

    def follow(self) -> tuple[str, ModelTag]:
        self.check()
        return self.collection, self.tag

    def search(self, vectors: np.ndarray, k: int = 10, filter: str = "", **_: Any) -> list[list[Hit]]:
        self.check()
        self.filters.append(filter)
        out = []
        for v in vectors:
            scored = sorted(((float(np.dot(r, v)), i) for i, r in self.rows.items()), key=lambda s: (-s[0], s[1]))
            out.append(
                [Hit(i, score, {"etag": "e", "size": 1, "content_type": "image/png"}) for score, i in scored[:k]]
            )
        return out

    def get(self, ids: Sequence[str], with_vectors: bool = False) -> list[dict[str, Any]]:
        return [{"id": i, "vector": self.rows[i]} for i in ids if i in self.rows]

    def close(self) -> None:
        self.closed = True


def colour_rows(bucket: str = "images") -> dict[str, np.ndarray]:
    """One row per colour and one per pair of colours, keyed ``<bucket>/<colours>.png``."""
    names = [*COLOURS, "red-green", "green-blue", "blue-red"]
    return {f"{bucket}/{name}.png": unit(np.sum([COLOURS[c] for c in name.split("-")], axis=0)) for name in names}
