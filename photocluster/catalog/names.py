"""When two names are the same name: one rule for every place a name is resolved or created.

"lisa kudrow", "Lisa  Kudrow " and "Lisa Kudrow" are one person to a human, so they are one
name here: names compare by :func:`name_key` (Unicode NFC, case folded, runs of white space made
one space, outer space trimmed). A name is stored as typed, but for its outer space trimmed and
its inner runs of space made one (:func:`tidy_name`). Pure functions, no database.
"""

from __future__ import annotations

import unicodedata


def tidy_name(raw: str) -> str:
    """``raw`` as it is stored: NFC, outer white space trimmed, inner runs made one space."""
    return " ".join(unicodedata.normalize("NFC", raw).split())


def name_key(name: str) -> str:
    """What two names must share to be the same name: NFC, case folded, spaces collapsed.

    Case folding is Unicode's (``"STRASSE"`` and ``"straße"`` are one name), re-normalised
    afterwards because folding can undo NFC.
    """
    return unicodedata.normalize("NFC", tidy_name(name).casefold())


def same_name(a: str | None, b: str | None) -> bool:
    """Whether two names (or no names) are the same name."""
    if a is None or b is None:
        return a is b
    return name_key(a) == name_key(b)


__all__ = ["name_key", "same_name", "tidy_name"]
