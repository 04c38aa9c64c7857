"""Fashion vocabulary shared by the chunker and the lexical index: word classes and canonical forms.

Both sides of a lexical match (catalog captions and user descriptions) go through `canonical_word`, so
"Dresses", "dress" and "dress," meet; "tee", "tshirt" and "t-shirt" meet; "striped" and "stripes" meet.
It is a small hand-made lemmatiser for garment words, not a general stemmer: words outside the lists
only lose a plural "s".
"""

from __future__ import annotations

import re
import unicodedata


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

# Synonyms and inflections -> one canonical word, for lexical matching only.
CANONICAL = {
    "tee": "t-shirt",
    "tshirt": "t-shirt",
    "tees": "t-shirt",
    "tshirts": "t-shirt",
    "t-shirts": "t-shirt",
    "gray": "grey",
    "color": "colour",
    "multicolor": "multicolour",
    "multicoloured": "multicolour",
    "multicolored": "multicolour",
    "jumper": "sweater",
    "pullover": "sweater",
    "pants": "trousers",
    "trouser": "trousers",
    "jean": "jeans",
    "striped": "stripe",
    "stripy": "stripe",
    "stripey": "stripe",
    "checked": "check",
    "checkered": "check",
    "chequered": "check",
    "dotted": "dot",
    "spotted": "dot",
    "spot": "dot",
    "polka": "dot",
    "polka-dot": "dot",
    "flower": "floral",
    "flowered": "floral",
    "flowery": "floral",
    "sequined": "sequinned",
    "knitted": "knit",
    "woollen": "wool",
    "cosy": "cozy",
}

# Words that keep their final "s": plural-only garments and words that merely end in s.
KEEP_S = wordset(
    """
    trousers jeans chinos slacks leggings joggers sweatpants culottes shorts tights dungarees overalls
    dress canvas plus this its is was has yes lens
    """
)

ATTRIBUTES = COLOURS | COLOUR_MODIFIERS | MATERIALS | PATTERNS | STYLES
# "Garment words": a description must hold at least one of these to be searchable.
GARMENT_WORDS = GARMENTS | PARTS | COLOURS | MATERIALS | PATTERNS

_WORD = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")
_KNOWN = GARMENTS | PARTS | ATTRIBUTES


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


def singular(word: str) -> str:
    """`word` without a plural ending when that gives a known word (dresses -> dress, blouses -> blouse,
    hoodies -> hoodie); unknown words only lose a final "s" (not "ss", "us", "is")."""
    if word in _KNOWN or word in KEEP_S or len(word) <= 3 or not word.endswith("s"):
        return word
    for candidate in (word[:-1], word[:-2], word[:-3] + "y"):
        if candidate in _KNOWN:
            return candidate
    if word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    return word[:-1]


def word_class(word: str) -> str:
    """'garment', 'part', 'attribute' or 'other' for one lower-case word, as the chunker sees it.

    The word itself is looked up first, so the adjective "striped" is an attribute while the noun
    "stripes" is a part.
    """
    if word in ATTRIBUTES:
        return "attribute"
    base = singular(word)
    if word in GARMENTS or base in GARMENTS:
        return "garment"
    if word in PARTS or base in PARTS:
        return "part"
    if base in ATTRIBUTES:
        return "attribute"
    return "other"


def is_garment_word(word: str) -> bool:
    """Whether a lower-case word names a garment, a garment part, a colour, a material or a pattern."""
    return word in GARMENT_WORDS or singular(word) in GARMENT_WORDS


def canonical_word(word: str) -> str:
    """The canonical form of one lower-case word for lexical matching: synonyms mapped, plurals singular."""
    if word in CANONICAL:
        return CANONICAL[word]
    base = singular(word)
    return CANONICAL.get(base, base)


def canonical_tokens(text: str) -> list[str]:
    """Canonical words of `text` for lexical matching. Unknown hyphenated compounds are split into their
    parts ("polka-dot" -> "dot"; "navy-blue" -> "navy", "blue"); known ones ("t-shirt", "a-line") stay whole."""
    tokens: list[str] = []
    for word in words(text):
        if "-" in word and word not in _KNOWN and word not in CANONICAL:
            tokens.extend(canonical_word(part) for part in word.split("-") if part)
        else:
            tokens.append(canonical_word(word))
    return tokens
