"""Rule-based noun chunking of garment descriptions, and the shared fashion vocabulary."""

from __future__ import annotations

import pytest

from fashion_rag.catalog.chunking import (
    MAX_CHARS,
    MAX_CHUNK_WORDS,
    MAX_CHUNKS,
    chunk_description,
    has_letters,
    normalise_description,
    split_chunks,
)
from fashion_rag.catalog.lexical import tokenize
from fashion_rag.catalog.vocabulary import word_class
from fashion_rag.errors import InputError

CASES = [
    # The paper's examples: a garment and its trim.
    ("red satin slip dress with lace trim", ["red satin slip dress", "lace trim"]),
    ("navy double-breasted blazer with gold buttons", ["navy double-breasted blazer", "gold buttons"]),
    # "in" + attributes folds into the garment; a colour goes first.
    ("dress in red", ["red dress"]),
    ("blazer in navy wool", ["navy wool blazer"]),
    ("navy blazer in wool", ["navy wool blazer"]),
    ("A-line skirt in mustard with white polka dots", ["mustard a-line skirt", "white polka dots"]),
    # Colour lists stay together, before a garment or a pattern noun.
    ("black and white striped t-shirt", ["black and white striped t-shirt"]),
    ("shirt in red and white stripes", ["shirt", "red and white stripes"]),
    # Commas: attributes before a garment lead into it, after it fold back into it.
    ("red, floral midi dress", ["red floral midi dress"]),
    ("oversized, cropped, grey hoodie", ["oversized cropped grey hoodie"]),
    ("midi dress, floral", ["floral midi dress"]),
    ("high-waisted blue jeans, ripped knees", ["high-waisted blue jeans", "ripped knees"]),
    ("dress in red, blue shirt", ["red dress", "blue shirt"]),
    # Several garments; "and", "&", "featuring".
    ("white shirt and navy trousers", ["white shirt", "navy trousers"]),
    ("pleated plaid mini skirt & black turtleneck", ["pleated plaid mini skirt", "black turtleneck"]),
    ("cream cardigan featuring pearl buttons", ["cream cardigan", "pearl buttons"]),
    (
        "A flowy maxi dress in emerald green silk, with a thin belt and puff sleeves",
        ["emerald green silk flowy maxi dress", "thin belt", "puff sleeves"],
    ),
    # Filler and relative clauses.
    ("I'm looking for a pair of light blue skinny jeans", ["light blue skinny jeans"]),
    ("a dress that is red", ["red dress"]),
    ("a shirt that has stripes", ["shirt", "stripes"]),
    ("a dress for summer", ["summer dress"]),
    ("something red", ["red"]),
    # Negations are dropped: the search cannot express "not".
    ("a summer dress without sleeves or collar", ["summer dress"]),
    # Normalisation: case, control and zero-width characters, repeated whitespace, punctuation.
    ("Red\tsatin\u200b slip\x00 dress  with LACE trim!!", ["red satin slip dress", "lace trim"]),
    ("Navy \u2018boyfriend\u2019 jeans; ripped", ["navy boyfriend jeans", "ripped"]),
    ("bomber jacket, bomber jacket", ["bomber jacket"]),  # duplicates merged
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_realistic_descriptions(text: str, expected: list[str]):
    assert chunk_description(text) == expected


def test_length_caps():
    text = ", ".join(f"{colour} shirt with {colour} buttons" for colour in ["red", "blue", "green", "pink"] * 10)
    assert len(normalise_description(text)) <= MAX_CHARS
    chunks = split_chunks(text)
    assert 1 <= len(chunks) <= MAX_CHUNKS
    long_chunk = split_chunks("very " * 3 + " ".join(["red"] * 40) + " dress")
    assert all(len(chunk.split()) <= MAX_CHUNK_WORDS for chunk in long_chunk)
    assert normalise_description("x" * 1000) == "x" * MAX_CHARS  # no space: a hard cut


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "\x00\x01", "\u200b"])
def test_empty_descriptions_are_refused(text: str):
    with pytest.raises(InputError, match="description is empty"):
        chunk_description(text)


@pytest.mark.parametrize("text", ["12345", "!!! ???", "\U0001f457\U0001f525", "42 - 7"])
def test_letter_free_descriptions_are_refused(text: str):
    assert not has_letters(text)
    with pytest.raises(InputError, match="has no letters, so it names no garment, part, colour, material or pattern"):
        chunk_description(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Garment names outside the vocabulary are searched, not refused (issue 13).
        ("kurta", ["kurta"]),
        ("an embroidered sari", ["embroidered sari"]),
        ("jade qipao", ["jade qipao"]),
        ("lehenga choli", ["lehenga choli"]),
        ("red kurta with gold embroidery", ["red kurta", "gold embroidery"]),
        ("hello world", ["hello world"]),
        ("what should I wear tomorrow?", ["what should i wear tomorrow"]),
        # Only filler, or a script the rules cannot cut: the whole description is the one chunk.
        ("I want something", ["i want something"]),
        ("\u30b5\u30ea\u30fc", ["\u30b5\u30ea\u30fc"]),
        ("caf\u00e9 cr\u00e8me blouse", ["caf\u00e9 cr\u00e8me blouse"]),
    ],
)
def test_any_description_with_letters_is_chunked(text: str, expected: list[str]):
    assert has_letters(text)
    assert chunk_description(text) == expected


def test_non_string_is_refused():
    with pytest.raises(InputError, match="must be a string, got int"):
        chunk_description(42)  # type: ignore[arg-type]


def test_word_classes():
    assert word_class("striped") == "attribute" and word_class("stripes") == "part"
    assert (
        word_class("hoodies") == "garment" and word_class("shorts") == "garment" and word_class("short") == "attribute"
    )
    assert word_class("kimonos") == "garment" and word_class("weather") == "other" and word_class("kurta") == "other"


def test_lexical_tokens_are_bm25s_snowball_stems():
    # Expected stems from the Snowball English algorithm (snowballstem.org), stop words of bm25s removed.
    assert tokenize("Striped T-shirts with stripes") == ["stripe", "shirt", "stripe"]
    assert tokenize("Dresses") == tokenize("dress") == ["dress"]
    assert tokenize("hoodies") == tokenize("hoodie") == ["hoodi"]
    assert tokenize("an embroidered kurta") == ["embroid", "kurta"]
    assert tokenize("the and of") == []
