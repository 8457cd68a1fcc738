"""Text handling shared by the observation space and input validation."""

from __future__ import annotations

import string

#: Characters allowed in every text observation: printable ASCII, space included.
CHARSET: frozenset[str] = frozenset(string.ascii_letters + string.digits + string.punctuation + " ")

_TYPOGRAPHIC = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " "})


def normalise(text: str) -> str:
    """Collapse whitespace and map typographic quotes and dashes to ASCII."""
    return " ".join(text.translate(_TYPOGRAPHIC).split())


def invalid_chars(text: str) -> list[str]:
    """Characters of ``text`` outside :data:`CHARSET`, sorted and unique."""
    return sorted({c for c in text if c not in CHARSET})


def fit(text: str, max_length: int) -> str:
    """Make ``text`` a valid observation string: replace foreign characters, truncate."""
    if not (text.isascii() and text.isprintable() and len(text) <= max_length and "  " not in text):
        text = "".join(c if c in CHARSET else "?" for c in normalise(text))
    if len(text) > max_length:
        text = text[: max_length - 3] + "..."
    return text
