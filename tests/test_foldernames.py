"""The name-sanitising table: every output is one safe component on Linux, macOS and Windows."""

from __future__ import annotations

import unicodedata

import pytest

from photocluster.export.foldernames import (
    MAX_BYTES,
    MAX_CHARS,
    assign_unique,
    clash_key,
    safe_filename,
    safe_name,
)

WINDOWS_FORBIDDEN = set('<>:"/\\|?*')
RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10))}
RESERVED |= {f"LPT{i}" for i in range(1, 10)}


def assert_safe(name: str) -> None:
    assert name, "empty"
    assert name not in (".", "..")
    assert not name.startswith("."), name
    assert not set(name) & WINDOWS_FORBIDDEN, name
    assert all(ord(c) >= 32 and ord(c) != 127 for c in name), repr(name)
    assert not name.endswith((".", " ")), name
    assert not name.startswith(" "), name
    assert name.split(".")[0].rstrip(" ").upper() not in RESERVED, name
    assert unicodedata.normalize("NFC", name) == name
    assert len(name) <= MAX_CHARS + 6
    assert len(name.encode("utf-8")) <= MAX_BYTES + 6


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ada Lovelace", "Ada Lovelace"),
        ("../x", "_x"),
        ("..", "Unnamed"),
        (".", "Unnamed"),
        (".hidden", "hidden"),
        ("a/b", "a_b"),
        ("a\\b", "a_b"),
        ('a:b*c?"d"<e>|f', "a_b_c__d__e__f"),
        ("CON", "CON_"),
        ("con", "con_"),
        ("Nul.txt", "Nul_.txt"),
        ("COM1", "COM1_"),
        ("LPT9 ", "LPT9_"),
        ("Conrad", "Conrad"),
        ("a\x00b", "ab"),
        ("tab\there\nnewline", "tab here newline"),
        ("trailing dots...", "trailing dots"),
        ("   spaced   out   ", "spaced out"),
        ("", "Unnamed"),
        ("\x00\x01", "Unnamed"),
        ("Zoë 👩‍👩‍👧 🎉", "Zoë 👩‍👩‍👧 🎉"),
        ("José", "José"),
        ("Jose\u0301", "José"),  # decomposed (as macOS stores it) -> composed
    ],
)
def test_safe_name_table(raw: str, expected: str) -> None:
    got = safe_name(raw)
    assert got == expected
    assert_safe(got)


def test_long_names_are_bounded_and_stay_distinct() -> None:
    a = "A" * 300
    b = "A" * 299 + "B"
    sa, sb = safe_name(a), safe_name(b)
    assert_safe(sa)
    assert_safe(sb)
    assert len(sa) <= MAX_CHARS
    assert sa != sb  # the hash of the full name keeps them apart
    assert safe_name(a) == sa  # deterministic


def test_long_multibyte_names_are_bounded_in_bytes_and_do_not_split_characters() -> None:
    name = "e\u0301" * 200  # 200 decomposed é: NFC gives 200 two-byte characters
    got = safe_name(name)
    assert_safe(got)
    assert len(got.encode("utf-8")) <= MAX_BYTES
    emoji = "👩‍👩‍👧" * 60  # zero-width joiners inside
    got = safe_name(emoji)
    assert_safe(got)
    assert not got.split("~")[0].endswith("\u200d")


def test_safe_filename_keeps_extension_and_sanitises_stem() -> None:
    assert safe_filename("IMG_1.JPG") == "IMG_1.JPG"
    assert safe_filename("CON.jpg") == "CON_.jpg"
    assert safe_filename("a:b.jpg") == "a_b.jpg"
    assert safe_filename(".jpg") == "jpg"
    long = safe_filename("x" * 300 + ".jpeg")
    assert long.endswith(".jpeg")
    assert len(long) <= MAX_CHARS
    assert_safe(long)


def test_names_that_sanitise_alike_get_distinct_folders_first_keeps_plain() -> None:
    raw = ["a/b", "a:b", "Ada", "ada", "José", "Jose\u0301", "CON", "con"]
    folders = assign_unique([safe_name(r) for r in raw])
    assert folders == ["a_b", "a_b (2)", "Ada", "ada (2)", "José", "José (2)", "CON_", "con_ (2)"]
    assert len({clash_key(f) for f in folders}) == len(raw)
    for f in folders:
        assert_safe(f)


def test_assign_unique_avoids_taken_names_and_suffixes_files_before_extension() -> None:
    got = assign_unique(["IMG_1.jpg", "img_1.JPG", "IMG_1.jpg"], taken=["IMG_1.jpg"], is_file=True)
    assert got == ["IMG_1 (2).jpg", "img_1 (3).JPG", "IMG_1 (4).jpg"]
