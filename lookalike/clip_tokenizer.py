"""CLIP's tokenizer without torch: open_clip's ``SimpleTokenizer`` (open_clip 3.3.0), ported.

The serving install has no torch (pyproject.toml's base dependencies), yet search by words must
turn a query into the ids the exported text tower reads. This module reproduces open_clip's
``tokenize()`` exactly for every text that fits (tests/model/test_clip_tokenizer.py compares them
on many strings): the same cleaning (ftfy, HTML unescaping twice, whitespace collapsed, lower
case), the same pre-tokenising pattern, the same byte-to-unicode table and the same BPE merges read
from the same ``bpe_simple_vocab_16e6.txt.gz``.

Two deliberate differences, both for text that arrives from users:

* Over-long text is refused (``BadText``), never truncated: open_clip cuts at the context length
  and the end of the query would be silently ignored. The message names the count and the limit.
* The BPE cache is an LRU with a cap, and long words are not cached at all: open_clip's cache is a
  dict that grows with every distinct word ever seen, which a server cannot allow. ``check`` also
  bounds its own work (a megabyte-long "word" costs nothing like BPE's quadratic time): beyond what
  could possibly fit it counts no further and says "at least".
"""

from __future__ import annotations

import functools
import gzip
import html
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import ftfy
import numpy as np
import regex

from lookalike.errors import BadText
from lookalike.text_search import EMPTY_TEXT, too_long

START, END = "<start_of_text>", "<end_of_text>"
END_OF_WORD = "</w>"
# open_clip reads lines 1 .. 48894 of the file (line 0 is a version header); the vocabulary is then
# 256 bytes + 256 bytes-ending-a-word + those merges + the two special tokens = 49408 ids
MERGES_END = 49152 - 256 - 2 + 1
CACHE_WORDS = 10_000  # distinct words whose BPE result is kept (open_clip: every word, forever)
CACHE_MAX_CHARS = 64  # longer words are rare and expensive to keep; they are merged each time
EXACT_COUNT_FACTOR = 4  # check() counts exactly up to this many times the context length


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """Each byte's stand-in character: printable bytes stand for themselves, the rest are moved
    above 255, so that BPE never sees whitespace or control characters (open_clip's table)."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    stand_ins = kept[:]
    moved = 0
    for byte in range(256):
        if byte not in kept:
            kept.append(byte)
            stand_ins.append(256 + moved)
            moved += 1
    return {byte: chr(code) for byte, code in zip(kept, stand_ins, strict=True)}


def clean(text: str) -> str:
    """open_clip's 'lower' cleaning: fix mojibake, unescape HTML twice, collapse whitespace, lower."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).strip().lower()


def read_merges(vocab_path: Path) -> list[tuple[str, str]]:
    """The merges of a CLIP BPE vocabulary file, in rank order (the header line skipped)."""
    with gzip.open(vocab_path, "rb") as stream:
        lines = stream.read().decode("utf-8").split("\n")[1:MERGES_END]
    merges: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=2):
        parts = line.split()
        if not parts:
            continue  # the file's trailing newline (open_clip's slice never reaches it in the real file)
        if len(parts) != 2:
            raise ValueError(f"{vocab_path}:{number}: a merge is two symbols, not {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


def _pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(word))


class ClipTokenizer:
    """Text to CLIP token ids, as open_clip's ``SimpleTokenizer`` with 'lower' cleaning makes them."""

    def __init__(self, vocab_path: Path, context_length: int = 77, model: str = "", cache_words: int = CACHE_WORDS):
        self.context_length = context_length
        self.model = model
        self._byte_encoder = bytes_to_unicode()
        merges = read_merges(vocab_path)
        symbols = list(self._byte_encoder.values())
        vocab = [*symbols, *(s + END_OF_WORD for s in symbols), *("".join(m) for m in merges), START, END]
        self._encoder = {token: index for index, token in enumerate(vocab)}
        self._ranks = {merge: rank for rank, merge in enumerate(merges)}
        self.start_id, self.end_id = self._encoder[START], self._encoder[END]
        self._specials = frozenset((START, END))
        self._pattern = regex.compile(
            rf"{START}|{END}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+", regex.IGNORECASE
        )
        # the most byte characters one id can stand for: a word of n bytes needs at least n / this
        self._longest = max(len(token.removesuffix(END_OF_WORD)) for token in vocab if token not in self._specials)
        # functools' LRU: bounded, and safe when the API's threads tokenize at once
        self._cached_bpe = functools.lru_cache(maxsize=cache_words)(self._merge)

    @property
    def max_ids(self) -> int:
        """How many ids of text fit, leaving room for the start and end tokens."""
        return self.context_length - 2

    def cached_words(self) -> int:
        """How many words' BPE results are held now (at most ``cache_words``)."""
        return self._cached_bpe.cache_info().currsize

    def encode(self, text: str) -> list[int]:
        """BPE ids of the cleaned text, without start and end tokens (open_clip's ``encode``).

        Exact and unbounded: for text from users, ``check`` or ``tokens`` bound the work first."""
        return [i for word in self._words(clean(text)) for i in self._word_ids(word)]

    def check(self, text: str) -> None:
        """Raise ``BadText`` if the text is empty once cleaned, or too long for the context."""
        self._checked_ids(text)

    def tokens(self, texts: Sequence[str]) -> np.ndarray:
        """(n, context_length) int64 rows ``[start, ids..., end, 0...]``: open_clip's ``tokenize()``
        for texts that fit. Every text is checked first, so nothing is ever truncated."""
        rows = [self._checked_ids(text) for text in texts]
        result = np.zeros((len(rows), self.context_length), dtype=np.int64)
        for row, ids in zip(result, rows, strict=True):
            row[: len(ids) + 2] = [self.start_id, *ids, self.end_id]
        return result

    def _checked_ids(self, text: str) -> list[int]:
        cleaned = clean(text)  # ftfy may turn a control character into text ("\x85" is "…")
        if not cleaned:
            raise BadText(EMPTY_TEXT)
        ids, exact = self._bounded_ids(cleaned)
        if not ids:
            raise BadText(f"the text {text[:40]!r} has nothing to read once cleaned: write a few words")
        if len(ids) > self.max_ids:
            raise BadText(too_long(len(ids), exact, self.model, self.context_length))
        return ids

    def _bounded_ids(self, cleaned: str) -> tuple[list[int], bool]:
        """The ids of cleaned text, and whether they are all of them: counting stops at a few times
        the context, and a word too long to fit on its own is counted by a lower bound, not merged."""
        ids: list[int] = []
        stop_after = EXACT_COUNT_FACTOR * self.context_length
        for word in self._words(cleaned):
            at_least = -(-len(word) // self._longest)
            if at_least > self.max_ids:
                return ids + [self.end_id] * at_least, False  # stand-ins: counted, never returned
            ids.extend(self._word_ids(word))
            if len(ids) > stop_after:
                return ids, False
        return ids, True

    def _words(self, cleaned: str) -> Iterator[str]:
        """open_clip's pre-tokens, each as byte stand-in characters."""
        for match in self._pattern.finditer(cleaned):
            yield "".join(self._byte_encoder[b] for b in match.group().encode("utf-8"))

    def _word_ids(self, word: str) -> list[int]:
        if word in self._specials:
            merged = word
        elif len(word) > CACHE_MAX_CHARS:
            merged = self._merge(word)
        else:
            merged = self._cached_bpe(word)
        return [self._encoder[token] for token in merged.split(" ")]

    def _merge(self, token: str) -> str:
        """open_clip's ``bpe``: merge the lowest-ranked adjacent pair everywhere, until none is known."""
        word = (*token[:-1], token[-1] + END_OF_WORD)
        pairs = _pairs(word)
        if not pairs:
            return token + END_OF_WORD
        while True:
            first, second = min(pairs, key=lambda pair: self._ranks.get(pair, float("inf")))
            if (first, second) not in self._ranks:
                break
            word = _merged(word, first, second)
            if len(word) == 1:
                break
            pairs = _pairs(word)
        return " ".join(word)


def _merged(word: tuple[str, ...], first: str, second: str) -> tuple[str, ...]:
    """``word`` with every ``first second`` pair joined, left to right (open_clip's inner loop)."""
    merged: list[str] = []
    i = 0
    while i < len(word):
        try:
            j = word.index(first, i)
        except ValueError:
            merged.extend(word[i:])
            break
        merged.extend(word[i:j])
        i = j
        if i < len(word) - 1 and word[i + 1] == second:
            merged.append(first + second)
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return tuple(merged)
