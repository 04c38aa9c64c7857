"""Split a garment description into noun chunks, rule-based (no spaCy, no model download).

The paper queried its retrieval index with the noun chunks of a garment description:
"red satin slip dress with lace trim" -> "red satin slip dress", "lace trim". This module does the same
with a fashion vocabulary (vocabulary.py) and a few rules:

1. The text is normalised (NFKC, control characters dropped, whitespace collapsed, lower case) and
   capped at MAX_CHARS characters.
2. It is cut into segments at punctuation and at connecting words: "with", "featuring", "and", "or",
   "in", "on", "for", "that", "which", ... Segments after "without", "no" and "not" are dropped: the
   search cannot express "not".
3. Leading filler ("a", "the", "a pair of", "I want", "looking for", ...) is stripped from each segment.
4. A segment made only of attributes (colours, materials, pattern adjectives, cuts, occasions) is not a
   noun chunk: it joins the garment it describes. Before a garment it is prepended ("black and white
   striped shirt", "red, floral midi dress"); after "in", "with", "for" or a comma it folds into the
   garment before it ("dress in red" -> "red dress", "blazer in navy wool" -> "navy wool blazer",
   "a dress for summer" -> "summer dress").
5. Chunks are deduplicated, capped at MAX_CHUNK_WORDS words each and MAX_CHUNKS in all.

The vocabulary only places the cuts: words it does not know ("kurta", "lehenga choli") stay in their
chunk and are searched like any other. Nothing is refused but an empty or letter-free description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fashion_rag.catalog.vocabulary import COLOUR_MODIFIERS, COLOURS, normalise_text, word_class, wordset
from fashion_rag.errors import InputError

MAX_CHARS = 300  # longer descriptions are cut at a word boundary: CLIP reads 77 tokens at most anyway
MAX_CHUNKS = 6  # each chunk costs one text embedding and one search
MAX_CHUNK_WORDS = 12

# Connecting words that end a segment. The value says which way an attribute-only segment after it
# folds: "back" into the garment before it ("dress in red"), "forward" into the one after it
# ("black and white striped shirt" has "black" before "and"), "drop" for negations.
CONNECTORS = {
    ",": "forward",
    ";": "back",
    ".": "back",
    "!": "back",
    "?": "back",
    ":": "back",
    "(": "back",
    ")": "back",
    "/": "forward",
    "|": "back",
    "and": "forward",
    "&": "forward",
    "+": "back",
    "or": "forward",
    "plus": "back",
    "with": "back",
    "featuring": "back",
    "features": "back",
    "has": "back",
    "having": "back",
    "in": "back",
    "on": "back",
    "at": "back",
    "for": "back",
    "that": "back",
    "which": "back",
    "without": "drop",
    "no": "drop",
    "not": "drop",
}

# Words stripped from the start (and the end) of a segment.
FILLERS = wordset(
    """
    a an the some any this these those my your its their our one ones pair pairs of i i'm im we me you
    want wants wanted need needs looking look searching search find show give get something anything like
    similar to is are be has have having very really quite please kind sort type also maybe perhaps
    """
)

# Words of any script ("[^\W_]" is a letter or digit), hyphenated compounds whole, and the punctuation that cuts.
_TOKEN = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*|[,;.!?:()/|&+]")


@dataclass
class _Segment:
    connector: str | None  # the connecting word or punctuation before it (None for the first)
    words: list[str]

    @property
    def is_attribute_only(self) -> bool:
        classes = {word_class(w) for w in self.words if w not in ("and", "or")}
        return classes == {"attribute"}


def normalise_description(text: str, max_chars: int = MAX_CHARS) -> str:
    """`text` normalised (see vocabulary.normalise_text), lower-cased and cut to `max_chars` at a word
    boundary."""
    if not isinstance(text, str):
        raise InputError(f"description must be a string, got {type(text).__name__}")
    clean = normalise_text(text).lower()
    if len(clean) > max_chars:
        cut = clean[:max_chars]
        clean = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return clean


def has_letters(text: str) -> bool:
    """Whether `text` holds a letter of any script (what makes a description searchable at all)."""
    return any(ch.isalpha() for ch in normalise_description(text))


def _strip_fillers(words: list[str]) -> list[str]:
    start, end = 0, len(words)
    while start < end and words[start] in FILLERS:
        start += 1
    while end > start and words[end - 1] in FILLERS:
        end -= 1
    return words[start:end]


def _segments(text: str) -> list[_Segment]:
    segments = [_Segment(None, [])]
    dropping = False
    for token in _TOKEN.findall(text):
        if token in CONNECTORS:
            # A connector right after a dropped negation keeps dropping only for "or"/"and" lists
            # ("no sleeves or collar"); anything else starts a fresh segment.
            dropping = CONNECTORS[token] == "drop" or (dropping and token in ("or", "and", ","))
            segments.append(_Segment(token, []))
            if dropping:
                segments[-1].connector = "drop"
            continue
        segments[-1].words.append(token)
    kept = []
    for segment in segments:
        if segment.connector == "drop":
            continue
        segment.words = _strip_fillers(segment.words)
        if segment.words:
            kept.append(segment)
    return kept


def _fold_into(head: list[str], attributes: list[str]) -> list[str]:
    """Attributes that came after a garment ("dress in red") placed before it: a colour goes first
    ("red slip dress"), anything else after the leading colours ("navy wool blazer")."""
    if attributes[0] in COLOURS or attributes[0] in COLOUR_MODIFIERS:
        return attributes + head
    lead = 0
    while lead < len(head) and (head[lead] in COLOURS or head[lead] in COLOUR_MODIFIERS):
        lead += 1
    return head[:lead] + attributes + head[lead:]


def _is_colours(words: list[str]) -> bool:
    return bool(words) and all(w in COLOURS or w in COLOUR_MODIFIERS or w in ("and", "or") for w in words)


def _merge_attributes(segments: list[_Segment]) -> list[list[str]]:
    # Runs of attribute-only segments joined by "and"/"or"/"," become one ("red and white").
    merged: list[_Segment] = []
    for segment in segments:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and previous.is_attribute_only
            and segment.is_attribute_only
            and segment.connector in ("and", "or", ",", "&", "/")
        ):
            joiner = (
                [] if segment.connector in (",", "/") else [segment.connector if segment.connector != "&" else "and"]
            )
            previous.words = previous.words + joiner + segment.words
            continue
        merged.append(segment)

    chunks: list[list[str]] = []
    pending: list[str] = []  # attributes waiting for the next garment
    for index, segment in enumerate(merged):
        if not segment.is_attribute_only:
            chunks.append(pending + segment.words)
            pending = []
            continue
        following = merged[index + 1] if index + 1 < len(merged) else None
        forward = False
        if following is not None and not following.is_attribute_only:
            # "red, floral dress" and "black and white striped shirt": the attributes lead into the garment,
            # unless they followed an earlier garment ("dress in red, blue shirt")...
            leads = CONNECTORS.get(following.connector or "") == "forward" and (
                segment.connector is None or CONNECTORS.get(segment.connector) == "forward" or not chunks
            )
            # ...but a colour list always does: "shirt in red and white stripes".
            colour_list = (
                following.connector in ("and", "or", "&")
                and _is_colours(segment.words)
                and _is_colours(following.words[:1])
            )
            forward = leads or colour_list
        if forward:
            joiner = {"and": ["and"], "&": ["and"], "or": ["or"]}.get(following.connector or "", [])
            pending = segment.words + joiner
        elif chunks:
            chunks[-1] = _fold_into(chunks[-1], segment.words)
        else:
            chunks.append(segment.words)  # a description that is only attributes: "red and white"
    return chunks


def split_chunks(text: str) -> list[str]:
    """The noun chunks of a garment description, lower case, in order of appearance.

    Returns an empty list when nothing but filler remains; see `chunk_description` for the checked
    version that raises InputError.
    """
    chunks: list[str] = []
    for words in _merge_attributes(_segments(normalise_description(text))):
        chunk = " ".join(words[:MAX_CHUNK_WORDS])
        if chunk and chunk not in chunks:
            chunks.append(chunk)
    return chunks[:MAX_CHUNKS]


def chunk_description(text: str) -> list[str]:
    """`split_chunks(text)`; the whole normalised description as one chunk when the rules find none
    (only filler words, or a script the rules do not cut). InputError only when `text` is empty or has
    no letter: any word, known to the vocabulary or not ("kurta", "qipao"), is searched."""
    clean = normalise_description(text)
    if not clean:
        raise InputError("the description is empty: describe the garment, e.g. 'red satin slip dress with lace trim'")
    if not has_letters(text):
        raise InputError(
            f"the description {normalise_description(text, 60)!r} has no letters, so it names no garment, part, "
            f"colour, material or pattern: describe the garment in words, e.g. 'navy double-breasted blazer'"
        )
    return split_chunks(text) or [clean]
