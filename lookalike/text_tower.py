"""A text tower as both engines run it: the tokenizer, then one batched call of the graph.

The torch engine passes open_clip's text module, the ONNX engine the exported text graph; either
way the ids come from ``lookalike.clip_tokenizer`` (no torch), so a query reads the same in both,
and text too long for the context is refused, never cut (``BadText``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # ftfy and regex load with the tokenizer, only in a process that reads words
    from lookalike.clip_tokenizer import ClipTokenizer

TEXT_STEP = 16  # texts per forward pass: queries come one at a time; tests and evaluations in lists


def normalised(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (as ``torch.nn.functional.normalize``: eps 1e-12)."""
    norms = np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return (features / norms).astype(np.float32)


class TextTower:
    """``check`` (tokenizes only) and ``embed`` (unit vectors in the image tower's space)."""

    def __init__(self, tokenizer: ClipTokenizer, run: Callable[[np.ndarray], np.ndarray], dim: int) -> None:
        self.tokenizer, self.run, self.dim = tokenizer, run, dim
        self._lock = threading.Lock()

    def check(self, text: str) -> None:
        """``BadText`` for an empty text or one over the context length."""
        self.tokenizer.check(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self.tokenizer.tokens(texts)  # refuses an over-long text before any model call
        out = []
        with self._lock:  # one model call at a time: it already uses every core
            for i in range(0, len(ids), TEXT_STEP):
                out.append(normalised(np.asarray(self.run(ids[i : i + TEXT_STEP]), dtype=np.float32)))
        return np.concatenate(out)
