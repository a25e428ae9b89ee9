"""Photo paths in the catalog: any name the file system allows, stored losslessly as text.

A POSIX file name is bytes. Python decodes it with ``surrogateescape``: each byte that is not
valid UTF-8 (an old Latin-1 name, a damaged archive) becomes a lone surrogate U+DC80..U+DCFF,
and that ``str`` opens the same file again. Neither SQLite's driver nor PostgreSQL accept lone
surrogates, so the catalog stores such a byte as U+FFFF (a Unicode noncharacter, reserved for
internal use) followed by the Latin-1 character of the same value (byte 0xE9 -> U+FFFF "é"), and
a U+FFFF in a name as two of them. Valid UTF-8 paths are stored unchanged; the mapping is per
character, so a folder's prefix is still a prefix (``startswith`` selects a folder).

:class:`CatalogPath` is the column type that applies it, so every query and every result sees
the ``str`` that opens the file.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

ESCAPE = "\uffff"
_LOW, _HIGH = 0xDC80, 0xDCFF  # what surrogateescape makes of the bytes 0x80..0xFF


def to_catalog(path: str) -> str:
    """The text stored for ``path`` (unchanged unless it holds undecodable bytes or U+FFFF)."""
    if ESCAPE not in path:
        try:
            path.encode("utf-8")
            return path
        except UnicodeEncodeError:
            pass
    out = []
    for ch in path:
        code = ord(ch)
        if _LOW <= code <= _HIGH:
            out.append(ESCAPE + chr(code - 0xDC00))
        elif ch == ESCAPE:
            out.append(ESCAPE + ESCAPE)
        else:
            out.append(ch)
    return "".join(out)


def from_catalog(text: str) -> str:
    """The inverse of :func:`to_catalog`."""
    if ESCAPE not in text:
        return text
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if ch == ESCAPE and nxt == ESCAPE:
            out.append(ESCAPE)
            i += 2
        elif ch == ESCAPE and nxt and 0x80 <= ord(nxt) <= 0xFF:
            out.append(chr(0xDC00 + ord(nxt)))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def printable(text: str) -> str:
    """For messages and stored error text: undecodable bytes shown as ``\\xNN``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(text: str) -> str:
    """JSON from ``json.dumps(..., ensure_ascii=False)`` made writable as UTF-8: undecodable
    bytes of file names become ``\\udcXX`` escapes, which ``json.loads`` turns back into the
    same ``str``."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class CatalogPath(TypeDecorator[str]):
    """A path column: :func:`to_catalog` on the way in, :func:`from_catalog` on the way out."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return to_catalog(value) if isinstance(value, str) else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return from_catalog(value) if isinstance(value, str) else value
