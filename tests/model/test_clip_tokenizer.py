"""The torch-free tokenizer gives open_clip's ids for every text that fits, and refuses the rest.

The reference is open_clip's own ``tokenize`` and ``SimpleTokenizer.encode`` (open_clip is in the
``model`` extra, so this is the model tier), over hand-picked texts and hypothesis-generated ones:
any Unicode, HTML entities, control characters, emoji, mixed scripts.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookalike.clip_tokenizer import CACHE_MAX_CHARS, ClipTokenizer
from lookalike.errors import BadText

open_clip = pytest.importorskip("open_clip")
from open_clip.tokenizer import SimpleTokenizer, default_bpe  # noqa: E402

pytestmark = pytest.mark.model

OURS = ClipTokenizer(default_bpe(), 77, "open_clip:ViT-B-32", cache_words=64)
THEIRS = SimpleTokenizer()
PICKED = [
    "a photo of a dog",
    "Hello, World!!  ",
    "naïve café — 日本語のテキスト, 한국어, русский",
    "&amp;lt;b&amp;gt; bold &quot;quoted&quot;",
    "it's the dog's bowl, isn't it? we'll see; they'd go",
    "emoji 🐶🐱🚗 and flags 🇫🇷",
    "MiXeD CaSe\tTabs\nnew\r\nlines\x00\x07 controls",
    "numbers 3.14159 and 1,024 bytes; 100% _under_ \\back\\slash",
    "ﬁ ligature, full-width \uff21\uff22\uff23, combining e\u0301",
    "x" * 200,
]


def _fits(text: str) -> bool:
    return 0 < len(THEIRS.encode(text)) <= 75


@pytest.mark.parametrize("text", PICKED)
def test_picked_texts_match_open_clip(text: str) -> None:
    if _fits(text):
        assert np.array_equal(OURS.tokens([text]), open_clip.tokenize([text]).numpy())
    else:
        with pytest.raises(BadText):
            OURS.check(text)
    assert OURS.encode(text) == THEIRS.encode(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=120))
def test_any_text_matches_open_clip_or_is_refused_with_its_count(text: str) -> None:
    ids = THEIRS.encode(text)
    assert OURS.encode(text) == ids
    if 0 < len(ids) <= 75:
        assert np.array_equal(OURS.tokens([text]), open_clip.tokenize([text]).numpy())
    elif ids:
        with pytest.raises(BadText, match=r"the text is (at least )?\d+ tokens; .* reads at most 75"):
            OURS.check(text)
    else:
        with pytest.raises(BadText):
            OURS.check(text)


def test_an_over_long_text_names_its_exact_count_and_the_limit() -> None:
    text = "the quick brown fox " * 20  # 80 words
    with pytest.raises(BadText) as refused:
        OURS.tokens(["a dog", text])
    assert str(refused.value) == (
        f"the text is {len(THEIRS.encode(text))} tokens; open_clip:ViT-B-32 reads at most 75 "
        "(77 with its start and end tokens): shorten it"
    )


def test_a_huge_word_is_counted_by_a_bound_not_merged() -> None:
    with pytest.raises(BadText, match=r"the text is at least \d+ tokens"):
        OURS.check("a" * 1_000_000)


def test_the_word_cache_is_bounded() -> None:
    tokenizer = ClipTokenizer(default_bpe(), 77, cache_words=32)
    for i in range(500):  # 500 distinct words (letters only: digits are words of their own)
        tokenizer.encode("w" + "".join(chr(ord("a") + int(d)) for d in f"{i:03d}"))
    tokenizer.encode("y" * (CACHE_MAX_CHARS + 10))
    assert tokenizer.cached_words() == 32
