"""MWG face regions in XMP: their geometry, XMP parsed safely (defusedxml, size-limited,
never a FIFO), and where a photo's sidecar is."""

from __future__ import annotations

import contextlib
import math
import os
import stat
import warnings
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from PIL import Image

from photocluster.errors import PhotoclusterError

MAX_XMP_BYTES = 8 * 1024 * 1024  # real sidecars are a few KiB; refuse to parse giant ones
MIN_OVERLAP = 0.3  # intersection over union for "this region is that face"
SIDECAR_STYLES = ("auto", "ext", "base")

NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_MWG_RS = "http://www.metadataworkinggroup.com/schemas/regions/"
NS_AREA = "http://ns.adobe.com/xmp/sType/Area#"
NS_DIM = "http://ns.adobe.com/xap/1.0/sType/Dimensions#"
NS_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_RDF_ATTRS = {f"{{{NS_RDF}}}{a}" for a in ("parseType", "about", "ID", "nodeID", "resource")}
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class XmpError(Exception):
    """XMP that cannot be used; ``str(exc)`` is the one-line reason."""


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Region:
    """One MWG region: normalised centre (x, y) and size (w, h) in the displayed image."""

    x: float
    y: float
    w: float
    h: float
    name: str | None = None
    type: str | None = None

    def box(self) -> tuple[float, float, float, float]:
        return (self.x - self.w / 2, self.y - self.h / 2, self.x + self.w / 2, self.y + self.h / 2)


def overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (left, top, right, bottom) boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def face_region(
    left: int, top: int, right: int, bottom: int, width: int, height: int, name: str | None
) -> Region:
    """The MWG region of a face box given in displayed pixels of a ``width`` x ``height`` photo."""

    def clamp(v: float) -> float:
        return round(min(1.0, max(0.0, v)), 6)

    left, right = max(0, left), min(width, right)
    top, bottom = max(0, top), min(height, bottom)
    return Region(
        x=clamp((left + right) / 2 / width),
        y=clamp((top + bottom) / 2 / height),
        w=clamp((right - left) / width),
        h=clamp((bottom - top) / height),
        name=name,
        type="Face",
    )


# --------------------------------------------------------------------------- reading XMP safely


def parse_xmp(data: bytes) -> Element:
    """Parse XMP bytes without DTDs, entity expansion or external references."""
    if len(data) > MAX_XMP_BYTES:
        raise XmpError(f"larger than {MAX_XMP_BYTES // 2**20} MiB")
    if not data.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in data[:2]:
        # Some writers end a packet with NUL padding (C strings); exiftool reads past it.
        # Only for 8-bit encodings: in UTF-16 a trailing NUL is half of the last character.
        data = data.rstrip(b"\x00")
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmpError(
            f"refused unsafe XML ({type(exc).__name__}: DTDs and entities are not allowed in XMP)"
        ) from exc
    except ParseError as exc:
        raise XmpError(f"broken XML ({exc})") from exc
    except (ValueError, UnicodeError) as exc:
        raise XmpError(f"unreadable XML ({exc})") from exc


def _fields(node: Element) -> dict[str, str | Element]:
    """An RDF struct's fields in any serialisation (attributes, parseType, Description)."""
    out: dict[str, str | Element] = {
        k: v for k, v in node.attrib.items() if k not in _RDF_ATTRS and k != _XML_LANG
    }
    children = list(node)
    if (
        len(children) == 1
        and children[0].tag == f"{{{NS_RDF}}}Description"
        and node.get(f"{{{NS_RDF}}}parseType") != "Resource"
    ):
        out.update(_fields(children[0]))
        return out
    for child in children:
        has_attrs = any(k not in _RDF_ATTRS and k != _XML_LANG for k in child.attrib)
        if len(child) or has_attrs:
            out[child.tag] = child
        else:
            out[child.tag] = (child.text or "").strip()
    return out


def _items(node: Element) -> list[Element]:
    """The ``rdf:li`` items of an array property (Bag, Seq or Alt)."""
    for container in ("Bag", "Seq", "Alt"):
        found = node.find(f"{{{NS_RDF}}}{container}")
        if found is not None:
            return found.findall(f"{{{NS_RDF}}}li")
    desc = node.find(f"{{{NS_RDF}}}Description")
    return _items(desc) if desc is not None else []


def _text(value: str | Element | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return (value.text or "").strip() or None


def _float(value: str | Element | None) -> float:
    text = _text(value)
    if text is None:
        raise XmpError("region area without coordinates")
    try:
        number = float(text)
    except ValueError as exc:
        raise XmpError(f"region coordinate {text[:40]!r} is not a number") from exc
    if not math.isfinite(number):
        raise XmpError(f"region coordinate {text[:40]!r} is not finite")
    return number


@dataclass
class XmpRegions:
    regions: list[Region] = field(default_factory=list)
    applied_to: tuple[float, float] | None = None  # (w, h) the regions were made for
    skipped: list[str] = field(default_factory=list)  # reasons for regions that were unusable


def regions_from_xmp(root: Element) -> XmpRegions:
    """Every MWG region in a parsed XMP document."""
    result = XmpRegions()
    for regions in root.iter(f"{{{NS_MWG_RS}}}Regions"):
        fields = _fields(regions)
        applied = fields.get(f"{{{NS_MWG_RS}}}AppliedToDimensions")
        if isinstance(applied, Element):
            dims = _fields(applied)
            with contextlib.suppress(XmpError):
                result.applied_to = (
                    _float(dims.get(f"{{{NS_DIM}}}w")),
                    _float(dims.get(f"{{{NS_DIM}}}h")),
                )
        region_list = fields.get(f"{{{NS_MWG_RS}}}RegionList")
        if not isinstance(region_list, Element):
            continue
        for item in _items(region_list):
            rf = _fields(item)
            area = rf.get(f"{{{NS_MWG_RS}}}Area")
            name = _text(rf.get(f"{{{NS_MWG_RS}}}Name"))
            kind = _text(rf.get(f"{{{NS_MWG_RS}}}Type"))
            if not isinstance(area, Element):
                result.skipped.append(f"region {name!r} has no area")
                continue
            af = _fields(area)
            unit = _text(af.get(f"{{{NS_AREA}}}unit")) or "normalized"
            try:
                x, y = _float(af.get(f"{{{NS_AREA}}}x")), _float(af.get(f"{{{NS_AREA}}}y"))
                w, h = _float(af.get(f"{{{NS_AREA}}}w")), _float(af.get(f"{{{NS_AREA}}}h"))
            except XmpError as exc:
                result.skipped.append(f"region {name!r}: {exc}")
                continue
            if unit != "normalized" or not (
                0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1
            ):
                result.skipped.append(f"region {name!r}: area is not normalised ({unit})")
                continue
            result.regions.append(Region(x, y, w, h, name=name, type=kind))
    return result


def not_regular(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read as XMP (a FIFO would block ``open``)."""
    if stat.S_ISREG(mode):
        return None
    kinds = {
        stat.S_IFIFO: "a FIFO",
        stat.S_IFSOCK: "a socket",
        stat.S_IFCHR: "a device",
        stat.S_IFBLK: "a device",
        stat.S_IFDIR: "a folder",
    }
    return f"not a regular file ({kinds.get(stat.S_IFMT(mode), 'unknown kind')}); left alone"


def read_sidecar(path: str) -> XmpRegions:
    """Regions from an ``.xmp`` file, refusing huge or hostile files (:class:`XmpError`).

    Opened non-blocking and checked on the open descriptor: a FIFO or device named like a
    sidecar is refused without waiting for a writer (and cannot be swapped in after a check)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise XmpError(f"cannot read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as fh:
        try:
            st = os.fstat(fd)
            why = not_regular(st.st_mode)
            if why:
                raise XmpError(why)
            if st.st_size > MAX_XMP_BYTES:
                raise XmpError(
                    f"{st.st_size // 2**20} MiB is larger than the "
                    f"{MAX_XMP_BYTES // 2**20} MiB limit"
                )
            data = fh.read(MAX_XMP_BYTES + 1)
        except OSError as exc:
            raise XmpError(f"cannot read: {exc.strerror}") from exc
    return regions_from_xmp(parse_xmp(data))


def read_embedded(path: str) -> XmpRegions | None:
    """Regions from the XMP packet inside an image (JPEG, PNG, TIFF, WebP); None if none."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                data = img.info.get("xmp")
    except Exception as exc:  # any decoder error: the photo is unreadable as an image
        raise XmpError(f"cannot read the image: {type(exc).__name__}: {exc}") from exc
    if not data:
        return None
    if isinstance(data, str):
        data = data.encode("utf-8")
    return regions_from_xmp(parse_xmp(bytes(data)))


# --------------------------------------------------------------------------- sidecar names


def sidecar_for(photo: str, style: str) -> str:
    """The sidecar of ``photo``: ``ext`` = ``IMG_1.jpg.xmp`` (digiKam, darktable),
    ``base`` = ``IMG_1.xmp`` (Lightroom, Capture One), ``auto`` = whichever exists, else ``ext``.
    """
    ext = photo + ".xmp"
    base = os.path.splitext(photo)[0] + ".xmp"
    if style == "ext":
        return ext
    if style == "base":
        return base
    if style != "auto":
        raise PhotoclusterError(f"Unknown sidecar style {style!r}; use auto, ext or base.")
    for candidate in (ext, ext[:-4] + ".XMP", base, base[:-4] + ".XMP"):
        if os.path.isfile(candidate):
            return candidate
    return ext


# --------------------------------------------------------------------------- exiftool


# --------------------------------------------------------------------------- export


# --------------------------------------------------------------------------- import
