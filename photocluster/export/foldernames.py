"""Turn people's names and photo file names into folder/file names that are safe everywhere.

Safe means usable on Linux, macOS and Windows at once: one path component (no ``/`` or ``\\``),
never ``.`` or ``..`` and never hidden (no leading dot), no control characters or NUL, none of
Windows' forbidden characters (``<>:"|?*``) or reserved device names (``CON``, ``NUL``, ``COM1``…,
with or without an extension), no trailing dot or space, NFC-normalised (macOS would otherwise
store a decomposed form and "é" typed two ways would be two folders), no invisible characters
(bidi controls: ``evil<U+202E>gpj.exe`` displays as ``evilexe.jpg``; zero-width spaces, soft
hyphens, fillers: names that look alike must not be different folders; zero-width joiners stay
only between two non-ASCII characters, where emoji and scripts need them), and at most
:data:`MAX_CHARS` characters / :data:`MAX_BYTES` UTF-8 bytes (a truncated name ends in a short
hash of the full name, so two long names sharing a prefix stay apart).

Two different names can still sanitise to the same folder (``a/b`` and ``a:b``; ``Ada`` and
``ada`` on a case-insensitive disk; the NFC and NFD spellings of ``José``).
:func:`assign_unique` resolves that deterministically: the first name in the given order keeps
the plain form and later ones get `` (2)``, `` (3)``… Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

MAX_CHARS = 100
MAX_BYTES = 200  # leaves room for a " (NN)" suffix and the 255-byte component limits
FALLBACK = "Unnamed"

_FORBIDDEN = set('<>:"/\\|?*')
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "CONIN$",
    "CONOUT$",
    *(f"COM{c}" for c in "123456789¹²³"),
    *(f"LPT{c}" for c in "123456789¹²³"),
}
_SPACES = re.compile(r"\s+")
# Characters that must not end a truncated name: they modify the character before them.
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}


# Zero-width joiner and non-joiner: part of emoji sequences (👩‍👧) and of Persian or Indic
# spelling, so kept where both neighbours are non-ASCII; elsewhere they only hide a difference.
_ZW_JOINERS = {"\u200c", "\u200d"}
_BLACK_FLAG = "\U0001f3f4"  # tag characters after it spell a subdivision flag (🏴 + gbsct)
_TAGS = range(0xE0020, 0xE0080)
# Invisible letters (category Lo, so not caught by the Cf rule): Hangul fillers, Khmer
# inherent vowels; all are Unicode default-ignorable.
_INVISIBLE_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u17b4", "\u17b5"}


def _clean_char(ch: str) -> str:
    if ch in _FORBIDDEN:
        return "_"
    if ch in "\t\n\r\x0b\x0c":
        return " "
    cat = unicodedata.category(ch)
    if cat == "Cc":  # other C0/C1 control characters, NUL, DEL
        return ""
    if cat == "Cs":  # a byte of a file name that is not UTF-8 (os.fsdecode): macOS and
        return "\ufffd"  # Windows cannot store it, so it shows as the replacement character
    if cat in ("Zl", "Zp"):
        return " "
    if ch in _INVISIBLE_LETTERS:
        return ""
    return ch


def _drop_invisible(text: str) -> str:
    """Remove format characters (Unicode category Cf: bidi overrides, embeddings, isolates and
    marks, zero-width space, word joiner, BOM, soft hyphen, tags…), keeping only the joiners
    and tags that change how the characters around them look (see ``_ZW_JOINERS``)."""
    chars = [c for c in text if c in _ZW_JOINERS or unicodedata.category(c) != "Cf" or _is_tag(c)]
    out: list[str] = []
    for i, ch in enumerate(chars):
        if ch in _ZW_JOINERS:
            before = out[-1] if out else ""
            after = chars[i + 1] if i + 1 < len(chars) else ""
            if not (before and after and not before.isascii() and not after.isascii()):
                continue
            if after in _ZW_JOINERS or before in _ZW_JOINERS:
                continue
        elif _is_tag(ch) and not (out and (out[-1] == _BLACK_FLAG or _is_tag(out[-1]))):
            continue  # a tag outside a flag sequence only hides text
        out.append(ch)
    return "".join(out)


def _is_tag(ch: str) -> bool:
    return ord(ch) in _TAGS


def _truncate(text: str, max_chars: int, max_bytes: int) -> str:
    out = text[:max_chars]
    while len(out.encode("utf-8")) > max_bytes:
        out = out[:-1]
    # Never end on a combining mark, joiner or variation selector (half a character on screen).
    while out and (unicodedata.combining(out[-1]) or out[-1] in _JOINERS):
        out = out[:-1]
    return out


def _is_reserved(name: str) -> bool:
    stem = name.split(".", 1)[0].rstrip(" ")
    return stem.upper() in _RESERVED


def _finish(text: str) -> str:
    """Strip what Windows or Unix shells treat specially at the ends of a component."""
    text = text.strip(" ")
    text = text.lstrip(".")  # no "..", no hidden folders
    text = text.rstrip(". ")  # Windows drops trailing dots and spaces
    return text.strip(" ")


def safe_name(
    name: str, *, max_chars: int = MAX_CHARS, max_bytes: int = MAX_BYTES, fallback: str = FALLBACK
) -> str:
    """One safe path component for ``name`` (a person's name). Deterministic, never empty."""
    text = unicodedata.normalize("NFC", name)
    text = _drop_invisible("".join(_clean_char(ch) for ch in text))
    text = _SPACES.sub(" ", text)
    text = _finish(text)
    if not text:
        return fallback
    if _is_reserved(text):
        stem, dot, rest = text.partition(".")
        text = stem.rstrip(" ") + "_" + dot + rest
    if len(text) > max_chars or len(text.encode("utf-8")) > max_bytes:
        digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:6]
        tail = f"~{digest}"
        text = _finish(_truncate(text, max_chars - len(tail), max_bytes - len(tail))) + tail
    return text


def safe_filename(
    name: str, *, max_chars: int = MAX_CHARS, max_bytes: int = MAX_BYTES, fallback: str = "photo"
) -> str:
    """Like :func:`safe_name` for a file name: the extension survives truncation."""
    text = unicodedata.normalize("NFC", name)
    stem, dot, ext = text.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        return safe_name(text, max_chars=max_chars, max_bytes=max_bytes, fallback=fallback)
    clean_ext = _drop_invisible("".join(_clean_char(ch) for ch in ext)).strip(" .")
    if not clean_ext:
        return safe_name(stem, max_chars=max_chars, max_bytes=max_bytes, fallback=fallback)
    suffix = "." + clean_ext
    base = safe_name(
        stem,
        max_chars=max_chars - len(suffix),
        max_bytes=max_bytes - len(suffix.encode("utf-8")),
        fallback=fallback,
    )
    return base + suffix


def clash_key(name: str) -> str:
    """Two names with the same key are the same entry on a case-insensitive (macOS/Windows) disk."""
    return unicodedata.normalize("NFC", name).casefold()


def with_suffix(name: str, n: int, *, is_file: bool = False) -> str:
    """``name`` with the clash counter ``n`` (>= 2): ``Ada (2)``, ``IMG_1 (2).jpg``."""
    if is_file:
        stem, dot, ext = name.rpartition(".")
        if dot and stem:
            return f"{stem} ({n}).{ext}"
    return f"{name} ({n})"


def assign_unique(
    names: Iterable[str], *, taken: Iterable[str] = (), is_file: bool = False
) -> list[str]:
    """Safe, pairwise-distinct components for ``names``, in the given order.

    ``names`` are already safe (from :func:`safe_name`/:func:`safe_filename`); ``taken`` are
    components that exist and must not be reused. The first of several equal names keeps it.
    """
    used = {clash_key(t) for t in taken}
    result: list[str] = []
    for name in names:
        candidate = name
        n = 1
        while clash_key(candidate) in used:
            n += 1
            candidate = with_suffix(name, n, is_file=is_file)
        used.add(clash_key(candidate))
        result.append(candidate)
    return result
