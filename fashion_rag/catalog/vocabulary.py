"""Fashion vocabulary of the chunker: word classes (garment, part, attribute) and the shared stemmer.

The lists only help the chunker decide where one garment's words end and the next begin ("red satin
slip dress" | "lace trim"); they never decide whether a description is searchable: a word outside them
("kurta", "qipao") is an ordinary word that the dense encoder and BM25 see like any other.

Inflections meet through the Snowball English stemmer (PyStemmer), the one bm25s uses for the lexical
index: "dresses" -> "dress", "hoodies" -> "hoodi" = "hoodie", "stripes" -> "stripe".
"""

from __future__ import annotations

import re
import threading
import unicodedata

import Stemmer


def wordset(block: str) -> frozenset[str]:
    """The whitespace-separated words of `block` (the word lists below read as plain text)."""
    return frozenset(block.split())


# Garment types: the head nouns of a garment chunk. Plural-only nouns are listed as they are written.
GARMENTS = wordset(
    """
    dress gown sundress shirtdress frock kaftan caftan jumpsuit romper playsuit dungarees overalls
    shirt t-shirt tshirt tee blouse top tank camisole polo tunic bodysuit henley turtleneck corset bustier
    sweater cardigan sweatshirt hoodie fleece vest waistcoat gilet
    blazer jacket coat parka anorak trench bomber windbreaker poncho cape kimono shacket overshirt
    trousers jeans chinos slacks leggings joggers sweatpants culottes shorts skirt skort miniskirt tights
    suit tuxedo
    """
)

# Nouns for parts, trims and motifs of a garment: they head chunks of their own ("lace trim", "white dots").
PARTS = wordset(
    """
    trim trimming collar lapel sleeve cuff button pocket neckline neck hem hemline waist waistband belt sash
    bow tie ruffle frill pleat zip zipper hood strap drawstring embroidery sequin bead fringe slit yoke
    placket seam stitching applique print pattern stripe dot check spot floral flower motif logo graphic
    detail detailing lining panel insert piping knee
    """
)

COLOURS = wordset(
    """
    red blue navy green yellow orange purple pink black white grey gray brown beige cream ivory khaki olive
    teal turquoise burgundy maroon wine mustard gold golden silver tan camel coral lilac lavender mint sage
    charcoal indigo cobalt emerald rust terracotta nude ecru taupe mauve fuchsia magenta cyan aqua plum
    peach salmon sky multicolour multicolor multicoloured multicolored
    """
)

# Words that shade a colour ("light blue"): attributes, never chunk heads.
COLOUR_MODIFIERS = wordset("light dark pale bright pastel neon deep soft muted")

MATERIALS = wordset(
    """
    satin silk cotton linen wool woollen cashmere denim leather suede velvet lace chiffon jersey knit knitted
    tweed corduroy polyester nylon sequinned sequined mesh tulle organza crepe twill canvas faux fur ribbed
    cable-knit crochet poplin chambray flannel viscose merino sheer
    """
)

# Pattern adjectives. The pattern nouns ("stripes", "dots", "flowers", "florals") are PARTS.
PATTERNS = wordset(
    """
    striped stripy stripey pinstriped checked checkered chequered plaid tartan gingham houndstooth polka
    polka-dot dotted spotted floral flowered flowery paisley leopard animal camouflage camo geometric
    abstract tie-dye plain solid printed patterned herringbone argyle
    """
)

# Cut, fit, length, neckline, occasion: attributes that fold into the garment they describe.
STYLES = wordset(
    """
    slim skinny straight wide wide-leg flared bootcut relaxed loose oversized fitted tailored cropped long
    short midi maxi mini knee-length ankle-length floor-length high-waisted low-rise mid-rise sleeveless
    short-sleeved long-sleeved strapless off-the-shoulder v-neck crew-neck scoop-neck double-breasted
    single-breasted button-down button-up wrap a-line slip sheath bodycon shift pleated tiered ruffled
    belted hooded zip-up casual formal elegant vintage classic basic boxy flowy puff puffed thin thick
    lightweight heavy warm cosy cozy chunky summer winter spring autumn evening cocktail party wedding
    office work beach holiday
    """
)

ATTRIBUTES = COLOURS | COLOUR_MODIFIERS | MATERIALS | PATTERNS | STYLES

_WORD = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")
_LOCAL = threading.local()  # a PyStemmer Stemmer must not be shared between threads: one per thread


def stem_words(words: list[str]) -> list[str]:
    """Snowball English stems of lower-case `words` (the stemmer bm25s is given; safe from any thread)."""
    stemmer = getattr(_LOCAL, "stemmer", None)
    if stemmer is None:
        stemmer = _LOCAL.stemmer = Stemmer.Stemmer("english")
    return stemmer.stemWords(words)


def _stems(words: frozenset[str]) -> frozenset[str]:
    return frozenset(stem_words(sorted(words)))


_GARMENT_STEMS, _PART_STEMS, _ATTRIBUTE_STEMS = _stems(GARMENTS), _stems(PARTS), _stems(ATTRIBUTES)


def normalise_text(text: str) -> str:
    """NFKC, control and format characters replaced by spaces, typographic quotes and dashes made plain,
    whitespace collapsed. Case is kept."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u2013", "-").replace("\u2014", " - ")
    text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return " ".join(text.split())


def words(text: str) -> list[str]:
    """Lower-cased words of `text`; hyphenated compounds ("t-shirt", "double-breasted") stay one word."""
    return _WORD.findall(normalise_text(text).lower())


def word_class(word: str) -> str:
    """'garment', 'part', 'attribute' or 'other' for one lower-case word, as the chunker sees it.

    The word itself is looked up first, so the adjective "striped" is an attribute while the noun
    "stripes" (stem "stripe") is a part; then its stem ("hoodies" -> "hoodi", as "hoodie").
    """
    if word in ATTRIBUTES:
        return "attribute"
    if word in GARMENTS:
        return "garment"
    if word in PARTS:
        return "part"
    stem = stem_words([word])[0]
    if stem in _GARMENT_STEMS:
        return "garment"
    if stem in _PART_STEMS:
        return "part"
    if stem in _ATTRIBUTE_STEMS:
        return "attribute"
    return "other"
