"""Which category a description names, so the page can offer to switch ("red floral dress" while
upper_body is selected). A small table of category words of the studio's own, on purpose independent of
the catalog's vocabulary: it only has to recognise the garment nouns people type."""

from __future__ import annotations

import re

CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "upper_body": ("shirt", "t-shirt", "tshirt", "tee", "top", "blouse", "sweater", "jumper", "pullover",
                   "cardigan", "hoodie", "sweatshirt", "jacket", "blazer", "coat", "vest", "tank", "polo",
                   "tunic", "camisole", "crop top", "turtleneck", "parka", "bomber"),
    "lower_body": ("trousers", "pants", "jeans", "shorts", "skirt", "leggings", "chinos", "joggers",
                   "culottes", "slacks", "sweatpants", "cargo pants"),
    "dresses": ("dress", "gown", "sundress", "jumpsuit", "romper", "playsuit", "kaftan", "pinafore"),
}  # fmt: skip
LABELS = {"upper_body": "upper body", "lower_body": "lower body", "dresses": "dresses"}


def named_categories(text: str) -> list[str]:
    """Categories whose words appear in `text` as whole words (plurals too), in table order."""
    lowered = (text or "").lower()
    found = []
    for category, words in CATEGORY_WORDS.items():
        pattern = r"\b(" + "|".join(re.escape(word) for word in words) + r")(e?s)?\b"
        if re.search(pattern, lowered):
            found.append(category)
    return found


def suggested_category(text: str, selected: str) -> str | None:
    """The one other category the description names, or None (it names the selected one, none, or several)."""
    named = named_categories(text)
    if selected in named or len(named) != 1:
        return None
    return named[0]
