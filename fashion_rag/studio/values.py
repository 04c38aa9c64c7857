"""Plain values from API calls, checked strictly before any work: the app's own message for each bad one.

JSON lets a caller send anything where a number or a flag belongs: NaN, ±Infinity, 10**400, "abc", a
list, "false". Each parser below takes the value as Gradio hands it over, accepts only what the
parameter means, and refuses the rest with an InputError that names the parameter, shows the value
(cut short, so an oversized value is never echoed back) and says what is accepted. Ranges are
checked downstream, by the stage that owns them.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from fashion_rag.errors import InputError

LARGEST_WHOLE = 2**63 - 1  # beyond any range a parameter has; bigger values are refused as such
SHOWN_CHARS = 40  # how much of a refused value a message repeats


def shown(value: Any) -> str:
    """`repr(value)` cut to SHOWN_CHARS characters, for messages."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def whole(name: str, value: Any, default: int) -> int:
    """A whole number (2 and 2.0 both), `default` when missing."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name}={shown(value)}: use a whole number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{name}={shown(value)}: use a finite whole number")
    if isinstance(value, float) and not value.is_integer():
        raise InputError(f"{name}={shown(value)}: use a whole number")
    if abs(value) > LARGEST_WHOLE:
        raise InputError(f"{name}={shown(value)}: that number is far too large")
    return int(value)


def real(name: str, value: Any, default: float) -> float:
    """A finite number, `default` when missing."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name}={shown(value)}: use a number, not {type(value).__name__}")
    if isinstance(value, int) and abs(value) > LARGEST_WHOLE:
        raise InputError(f"{name}={shown(value)}: that number is far too large")
    if not math.isfinite(float(value)):
        raise InputError(f"{name}={shown(value)}: use a finite number")
    return float(value)


def flag(name: str, value: Any, default: bool) -> bool:
    """A JSON boolean, `default` when missing; strings such as "false" are refused, not taken as true."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InputError(f"{name}={shown(value)}: use true or false (a JSON boolean)")
    return value


def choice(name: str, value: Any, default: str | None) -> str | None:
    """A short string such as a category or sampler name, `default` when missing (the stage checks it)."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise InputError(f"{name}={shown(value)}: use a string, not {type(value).__name__}")
    if len(value) > SHOWN_CHARS:
        raise InputError(f"{name}={shown(value)}: that is not one of the accepted names")
    return value


def description(value: Any, max_chars: int) -> str:
    """A description: a string of at most `max_chars` characters, control characters removed.

    Line breaks and tabs become spaces; other control and format characters (NUL, escape sequences,
    zero-width and direction marks) are dropped, so they never reach the prompt, the recipe or a log.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"description={shown(value)}: use a string, not {type(value).__name__}")
    if len(value) > max_chars:
        raise InputError(
            f"the description is {len(value):,} characters long: describe the garment in at most {max_chars:,}"
        )
    spaced = "".join(" " if ch in "\t\n\r\v\f" else ch for ch in value)
    return "".join(ch for ch in spaced if unicodedata.category(ch) not in ("Cc", "Cf")).strip()
