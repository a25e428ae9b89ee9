"""MWG face regions in XMP: their geometry, XMP parsed safely (defusedxml, size-limited,
never a FIFO), and where a photo's sidecar is."""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import shutil
import stat
import subprocess
import tempfile
import threading
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.analyse import hash_file
from photocluster.db import Catalog, hold_write_lock
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.models import Face, Person, Photo
from photocluster.names import name_key, same_name, tidy_name
from photocluster.naming import assign_faces, find_person_by_name
from photocluster.photo_status import PhotoStatus
from photocluster.progress import NoProgress, Progress

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

INSTALL_EXIFTOOL = (
    "export-xmp writes XMP with exiftool, which is not installed. Install it "
    "(Debian/Ubuntu: sudo apt install libimage-exiftool-perl; macOS: brew install exiftool; "
    "Windows: https://exiftool.org) and run the command again. Nothing was written."
)


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


def _not_regular(mode: int) -> str | None:
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
            why = _not_regular(st.st_mode)
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


def find_exiftool() -> str | None:
    return shutil.which("exiftool")


class ExifTool:
    """One long-running exiftool (``-stay_open``): a command per photo without a Perl start-up."""

    def __init__(self, executable: str) -> None:
        self._proc = subprocess.Popen(
            [executable, "-stay_open", "True", "-@", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._errors: queue.Queue[bytes] = queue.Queue()
        assert self._proc.stderr is not None
        self._drain = threading.Thread(target=self._pump, args=(self._proc.stderr,), daemon=True)
        self._drain.start()

    def _pump(self, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            self._errors.put(line)
        self._errors.put(b"")

    def run(self, args: list[str]) -> tuple[str, str]:
        """Run one command; returns (stdout, stderr)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        for arg in args:
            if "\n" in arg or "\r" in arg:
                raise XmpError("file names with line breaks cannot be passed to exiftool")
        payload = "\n".join([*args, "-echo4", "{ready}", "-execute", ""])
        try:
            # A file name that is not UTF-8 goes as its own bytes (exiftool takes names as bytes).
            self._proc.stdin.write(payload.encode("utf-8", "surrogateescape"))
            self._proc.stdin.flush()
        except BrokenPipeError as exc:
            raise PhotoclusterError("exiftool stopped unexpectedly") from exc
        out: list[bytes] = []
        while True:
            line = self._proc.stdout.readline()
            if not line:
                raise PhotoclusterError("exiftool stopped unexpectedly")
            if line.strip() == b"{ready}":
                break
            out.append(line)
        errs: list[bytes] = []
        while True:
            line = self._errors.get(timeout=600)
            if not line or line.strip() == b"{ready}":
                break
            errs.append(line)
        return (
            b"".join(out).decode("utf-8", "replace"),
            b"".join(errs).decode("utf-8", "replace"),
        )

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self._proc.stdin is not None
                self._proc.stdin.write(b"-stay_open\nFalse\n")
                self._proc.stdin.flush()
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> ExifTool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_READ_TAGS = ["-XMP-mwg-rs:RegionInfo", "-XMP-iptcExt:PersonInImage", "-XMP-dc:Subject"]


def _exif_error(stderr: str) -> str | None:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip().startswith("Error")]
    return lines[0] if lines else None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


# --------------------------------------------------------------------------- export


@dataclass
class XmpExportOptions:
    sidecar: str = "auto"  # auto | ext | base
    in_place: bool = False
    keywords: bool = False
    people: list[str] = field(default_factory=list)  # names or ids; empty = every named person
    dry_run: bool = False


@dataclass
class XmpExportSummary:
    photos: int = 0
    written: list[str] = field(default_factory=list)  # files created or updated
    unchanged: int = 0
    regions: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    dry_run: bool = False
    seconds: float = 0.0


@dataclass
class _PhotoFaces:
    photo_id: int
    path: str
    width: int
    height: int
    regions: list[Region] = field(default_factory=list)


def _named_faces(session: Session, people: list[str]) -> list[_PhotoFaces]:
    q = (
        select(
            Photo.id,
            Photo.path,
            Photo.width,
            Photo.height,
            Face.left,
            Face.top,
            Face.right,
            Face.bottom,
            Person.id,
            Person.name,
        )
        .join(Face, Face.photo_id == Photo.id)
        .join(Person, Person.id == Face.person_id)
        .where(Person.name.is_not(None), Photo.status == PhotoStatus.OK)
    )
    if people:
        ids = []
        for ref in people:
            if ref.strip().isdigit():
                found = session.get(Person, int(ref))
            else:
                found = find_person_by_name(session, ref)
            if found is None or found.name is None:
                raise NotFound(f"No named person {ref!r} (see `photocluster people`).")
            ids.append(found.id)
        q = q.where(Person.id.in_(ids))
    else:
        q = q.where(Person.hidden.is_(False))
    photos: dict[int, _PhotoFaces] = {}
    for r in session.execute(q.order_by(Photo.path, Face.left, Face.top)):
        if not r[2] or not r[3]:
            continue
        pf = photos.setdefault(r[0], _PhotoFaces(r[0], r[1], r[2], r[3]))
        pf.regions.append(face_region(r[4], r[5], r[6], r[7], r[2], r[3], r[9]))
    return sorted(photos.values(), key=lambda p: p.path)


def _region_json(r: Region) -> dict[str, Any]:
    return {
        "Area": {"X": r.x, "Y": r.y, "W": r.w, "H": r.h, "Unit": "normalized"},
        "Name": r.name,
        "Type": r.type or "Face",
    }


def _json_region_box(item: dict[str, Any]) -> tuple[float, float, float, float] | None:
    area = item.get("Area")
    if not isinstance(area, dict):
        return None
    try:
        x, y, w, h = (float(area[k]) for k in ("X", "Y", "W", "H"))
    except (KeyError, TypeError, ValueError):
        return None
    return (x - w / 2, y - h / 2, x + w / 2, y + h / 2)


def _same(a: Any, b: Any) -> bool:
    """Equal JSON values, numbers compared as numbers (exiftool prints 0.5 for 0.500000)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        fa, fb = float(a), float(b)
        return abs(fa - fb) < 1e-6
    except (TypeError, ValueError):
        return str(a) == str(b)


def _minus(values: Iterable[str], drop: set[str]) -> list[str]:
    return [v for v in values if v not in drop]


def _plus(values: list[str], add: Iterable[str]) -> list[str]:
    out = list(values)
    for v in add:
        if v not in out:
            out.append(v)
    return out


def plan_xmp(
    existing: dict[str, Any], ours: _PhotoFaces, keywords: bool
) -> tuple[dict[str, Any], list[str], list[str] | None]:
    """The merged RegionInfo, PersonInImage and (if asked) dc:subject for one photo."""
    info = existing.get("RegionInfo") if isinstance(existing.get("RegionInfo"), dict) else {}
    assert isinstance(info, dict)
    old_list = info.get("RegionList") if isinstance(info.get("RegionList"), list) else []
    assert isinstance(old_list, list)
    our_boxes = [r.box() for r in ours.regions]
    kept: list[Any] = []
    replaced_names: set[str] = set()
    for item in old_list:
        box = _json_region_box(item) if isinstance(item, dict) else None
        is_face = isinstance(item, dict) and str(item.get("Type", "Face")) == "Face"
        if box and is_face and any(overlap(box, b) >= MIN_OVERLAP for b in our_boxes):
            if item.get("Name") is not None:
                replaced_names.add(str(item["Name"]))
            continue
        kept.append(item)
    our_names = [r.name for r in ours.regions if r.name]
    new_info = {
        "AppliedToDimensions": {"W": ours.width, "H": ours.height, "Unit": "pixel"},
        "RegionList": kept + [_region_json(r) for r in ours.regions],
    }
    people = _plus(_minus(_as_list(existing.get("PersonInImage")), replaced_names), our_names)
    subject = None
    if keywords:
        subject = _plus(_minus(_as_list(existing.get("Subject")), replaced_names), our_names)
    return new_info, people, subject


def export_xmp(
    catalog: Catalog,
    options: XmpExportOptions,
    progress: Progress | None = None,
    exiftool: str | None = None,
) -> XmpExportSummary:
    """Write MWG face regions for every photo with named faces. See the module docstring."""
    progress = progress or NoProgress()
    started = time.perf_counter()
    if options.sidecar not in SIDECAR_STYLES:
        raise PhotoclusterError(
            f"Unknown sidecar style {options.sidecar!r}; use {', '.join(SIDECAR_STYLES)}."
        )
    executable = exiftool or find_exiftool()
    if executable is None:
        raise PhotoclusterError(INSTALL_EXIFTOOL)
    with catalog.session() as session:
        photos = _named_faces(session, options.people)
    summary = XmpExportSummary(photos=len(photos), dry_run=options.dry_run)

    # Several photos may map to one sidecar (IMG_1.jpg and IMG_1.cr2 with base names).
    owner: dict[str, str] = {}
    jobs: list[tuple[str, _PhotoFaces]] = []
    for pf in photos:
        target = pf.path if options.in_place else sidecar_for(pf.path, options.sidecar)
        if target in owner:
            summary.failures.append(
                (pf.path, f"shares the sidecar {target} with {owner[target]}; use --sidecar ext")
            )
            continue
        owner[target] = pf.path
        jobs.append((target, pf))

    touched: list[int] = []
    progress.start(len(jobs), "Writing XMP")
    try:
        with ExifTool(executable) as tool, tempfile.TemporaryDirectory() as tmp:
            for target, pf in jobs:
                try:
                    if _export_one(tool, tmp, target, pf, options, summary):
                        touched.append(pf.photo_id)
                except XmpError as exc:
                    summary.failures.append((target, str(exc)))
                progress.advance()
    finally:
        progress.finish()
    if options.in_place and touched and not options.dry_run:
        _refresh_photos(catalog, touched)
    summary.seconds = time.perf_counter() - started
    return summary


def _export_one(
    tool: ExifTool,
    tmp: str,
    target: str,
    pf: _PhotoFaces,
    options: XmpExportOptions,
    summary: XmpExportSummary,
) -> bool:
    """Merge and write one file; True if it changed."""
    if options.in_place and not os.path.isfile(target):
        raise XmpError("photo not found (run `photocluster scan` again)")
    existing: dict[str, Any] = {}
    if os.path.lexists(target):
        if not os.path.isfile(target):
            raise XmpError("is not a regular file")
        if not options.in_place:
            size = os.path.getsize(target)
            if size > MAX_XMP_BYTES:
                raise XmpError(f"existing sidecar is larger than {MAX_XMP_BYTES // 2**20} MiB")
            with open(target, "rb") as fh:
                try:
                    parse_xmp(fh.read())
                except XmpError as exc:
                    raise XmpError(f"existing sidecar left unchanged: {exc}") from exc
        stdout, stderr = tool.run(["-j", "-struct", "-charset", "UTF8", *_READ_TAGS, target])
        error = _exif_error(stderr)
        if error:
            raise XmpError(f"exiftool cannot read it: {error}")
        try:
            # Keep numbers as text: a name like "1984" must stay a string.
            rows = json.loads(stdout or "[]", parse_float=str, parse_int=str)
            existing = rows[0] if rows else {}
        except (ValueError, IndexError) as exc:
            raise XmpError(f"exiftool output was not JSON: {exc}") from exc
    info, people, subject = plan_xmp(existing, pf, options.keywords)
    summary.regions += len(pf.regions)
    same = (
        _same(existing.get("RegionInfo"), info)
        and _as_list(existing.get("PersonInImage")) == people
        and (subject is None or _as_list(existing.get("Subject")) == subject)
    )
    if same:
        summary.unchanged += 1
        return False
    if options.dry_run:
        summary.written.append(target)
        return False
    record: dict[str, Any] = {"SourceFile": "*", "XMP-mwg-rs:RegionInfo": info}
    extra: list[str] = []
    if people:
        record["XMP-iptcExt:PersonInImage"] = people
    else:
        extra.append("-XMP-iptcExt:PersonInImage=")
    if subject is not None:
        if subject:
            record["XMP-dc:Subject"] = subject
        else:
            extra.append("-XMP-dc:Subject=")
    job = os.path.join(tmp, "tags.json")
    with open(job, "w", encoding="utf-8") as fh:
        json.dump([record], fh, ensure_ascii=False)
    _stdout, stderr = tool.run(
        ["-overwrite_original", "-charset", "UTF8", f"-j={job}", *extra, target]
    )
    error = _exif_error(stderr)
    if error:
        raise XmpError(f"exiftool could not write it: {error}")
    summary.written.append(target)
    return True


def _refresh_photos(catalog: Catalog, photo_ids: list[int]) -> None:
    """After writing into photos, record their new size/mtime/hash so scan sees them unchanged."""
    with catalog.session() as session:
        for pid in photo_ids:
            photo = session.get(Photo, pid)
            if photo is None:
                continue
            try:
                st = os.stat(photo.path)
                photo.content_hash = hash_file(photo.path)
            except OSError:
                continue
            photo.size = st.st_size
            photo.mtime_ns = st.st_mtime_ns


# --------------------------------------------------------------------------- import


@dataclass
class ImportOptions:
    folder: str
    min_overlap: float = MIN_OVERLAP
    dry_run: bool = False


@dataclass
class ImportSummary:
    files_read: int = 0
    photos: int = 0
    regions: int = 0
    matched: int = 0
    assigned: int = 0  # faces newly confirmed
    already: int = 0  # faces already confirmed with that name
    people_created: list[str] = field(default_factory=list)
    by_name: dict[str, int] = field(default_factory=dict)
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (photo, name)
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)  # (photo, xmp, catalog)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    dry_run: bool = False
    seconds: float = 0.0


@dataclass
class _FaceRow:
    id: int
    box: tuple[float, float, float, float]  # normalised
    person_id: int | None
    person_name: str | None
    confirmed: bool


def _sidecars_of(path: str, sidecars: dict[str, str]) -> list[str]:
    """Sidecar files (by lower-cased path) that belong to the photo at ``path``."""
    found = []
    for candidate in (path + ".xmp", os.path.splitext(path)[0] + ".xmp"):
        real = sidecars.get(candidate.lower())
        if real and real not in found:
            found.append(real)
    return found


def _dedupe(regions: list[Region]) -> list[Region]:
    """Drop a region repeating an earlier one (same name, same place: sidecar and embedded)."""
    out: list[Region] = []
    for r in regions:
        if not any(o.name == r.name and overlap(o.box(), r.box()) > 0.5 for o in out):
            out.append(r)
    return out


def _walk(folder: str, skipped: list[tuple[str, str]]) -> dict[str, str]:
    """Every ``.xmp`` file under ``folder`` (hidden folders skipped), keyed by lower-cased path.

    Names that are not regular files (FIFOs, sockets, devices, broken links) go to ``skipped``."""
    sidecars: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(root, name)
            if os.path.splitext(name)[1].lower() != ".xmp":
                continue
            try:
                why = _not_regular(os.stat(path).st_mode)
            except OSError as exc:
                why = f"cannot read: {exc.strerror}"
            if why:
                skipped.append((path, why))
            else:
                sidecars[path.lower()] = path
    return sidecars


def import_xmp(
    catalog: Catalog, options: ImportOptions, progress: Progress | None = None
) -> ImportSummary:
    """Turn names on MWG face regions under a folder into confirmed faces. See module docstring."""
    progress = progress or NoProgress()
    started = time.perf_counter()
    folder = os.path.abspath(os.path.expanduser(options.folder))
    if not os.path.isdir(folder):
        raise PhotoclusterError(f"Folder not found: {folder}")
    summary = ImportSummary(dry_run=options.dry_run)
    sidecars = _walk(folder, summary.skipped)

    with catalog.session() as session:
        if not options.dry_run:
            # before the reads the decisions below are based on: a decision someone makes
            # meanwhile is seen, never overwritten (see db.hold_write_lock)
            hold_write_lock(session, "import-xmp")
        faces = _faces_under(session, folder)
        wanted = _WantedNames()
        used_sidecars: set[str] = set()
        progress.start(len(faces), "Reading XMP")
        for path in sorted(faces):
            progress.advance()
            named = _named_regions(path, sidecars, used_sidecars, summary)
            if named:
                _match_photo(path, named, faces[path], options.min_overlap, wanted, summary)
        progress.finish()
        for sidecar in sorted(set(sidecars.values()) - used_sidecars):
            summary.skipped.append((sidecar, "no photo with faces in the catalog for it"))
        _assign_names(session, wanted, summary, dry_run=options.dry_run)
        if options.dry_run:
            session.rollback()
    summary.seconds = time.perf_counter() - started
    return summary


def _faces_under(session: Session, folder: str) -> dict[str, list[_FaceRow]]:
    """The catalog's faces of the photos under ``folder``, by photo path, boxes normalised."""
    prefix = folder.rstrip(os.sep) + os.sep
    rows = session.execute(
        select(
            Photo.id,
            Photo.path,
            Photo.width,
            Photo.height,
            Face.id,
            Face.left,
            Face.top,
            Face.right,
            Face.bottom,
            Face.person_id,
            Person.name,
            Face.confirmed,
        )
        .join(Face, Face.photo_id == Photo.id)
        .outerjoin(Person, Person.id == Face.person_id)
        .where(Photo.path.startswith(prefix, autoescape=True))
    ).all()
    faces: dict[str, list[_FaceRow]] = defaultdict(list)
    for r in rows:
        if not r[2] or not r[3]:
            continue
        box = (r[5] / r[2], r[6] / r[3], r[7] / r[2], r[8] / r[3])
        faces[r[1]].append(_FaceRow(r[4], box, r[9], r[10], bool(r[11])))
    return faces


def _named_regions(
    path: str, sidecars: dict[str, str], used_sidecars: set[str], summary: ImportSummary
) -> list[Region]:
    """The named face regions of one photo, from its sidecars and its embedded XMP."""
    regions: list[Region] = []
    for sidecar in _sidecars_of(path, sidecars):
        used_sidecars.add(sidecar)
        try:
            found = read_sidecar(sidecar)
        except XmpError as exc:
            summary.skipped.append((sidecar, str(exc)))
            continue
        summary.files_read += 1
        regions.extend(found.regions)
        summary.skipped.extend((sidecar, why) for why in found.skipped)
    if os.path.isfile(path):
        try:
            embedded = read_embedded(path)
        except XmpError as exc:
            summary.skipped.append((path, str(exc)))
            embedded = None
        if embedded is not None:
            summary.files_read += 1
            regions.extend(embedded.regions)
            summary.skipped.extend((path, why) for why in embedded.skipped)
    return _dedupe([r for r in regions if r.name and (r.type or "Face") == "Face"])


@dataclass
class _WantedNames:
    """Faces to confirm, by name (:func:`names.name_key`), and how often each spelling came."""

    faces: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    spellings: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, name: str, face_id: int) -> None:
        # one person however the name is spelled (case, spaces)
        self.faces[name_key(name)].append(face_id)
        self.spellings[name_key(name)][tidy_name(name)] += 1


def _match_photo(
    path: str,
    named: list[Region],
    faces: list[_FaceRow],
    min_overlap: float,
    wanted: _WantedNames,
    summary: ImportSummary,
) -> None:
    """Pair one photo's named regions with its faces, best overlap first, one to one."""
    summary.photos += 1
    summary.regions += len(named)
    pairs = sorted(
        ((overlap(r.box(), f.box), i, j) for i, r in enumerate(named) for j, f in enumerate(faces)),
        reverse=True,
    )
    region_done: set[int] = set()
    face_done: set[int] = set()
    for score, i, j in pairs:
        if score < min_overlap:
            break
        if i in region_done or j in face_done:
            continue
        face = faces[j]
        name = str(named[i].name).strip()
        region_done.add(i)
        face_done.add(j)
        summary.matched += 1
        if face.confirmed and same_name(face.person_name, name):
            summary.already += 1
        elif face.confirmed and face.person_id is not None:
            label = face.person_name or f"person {face.person_id}"
            summary.conflicts.append((path, name, label))
        else:
            wanted.add(name, face.id)
    for i, region in enumerate(named):
        if i not in region_done:
            summary.unmatched.append((path, str(region.name)))


def _assign_names(
    session: Session, wanted: _WantedNames, summary: ImportSummary, *, dry_run: bool
) -> None:
    """Confirm the wanted faces as their people (created as needed), under the usual spelling."""
    chosen = {k: wanted.spellings[k].most_common(1)[0][0] for k in wanted.faces}
    for key in sorted(wanted.faces, key=lambda k: chosen[k]):
        name = chosen[key]
        ids = sorted(set(wanted.faces[key]))
        summary.by_name[name] = len(ids)
        if dry_run:
            if find_person_by_name(session, name) is None:
                summary.people_created.append(name)
            summary.assigned += len(ids)
            continue
        existed = find_person_by_name(session, name) is not None
        try:  # an unusable name fails before anything changes
            assign_faces(session, ids, name, actor="import-xmp", create=True)
        except PhotoclusterError as exc:
            summary.skipped.append((name, f"name not imported: {exc}"))
            summary.by_name.pop(name, None)
            continue
        if not existed:
            summary.people_created.append(name)
        summary.assigned += len(ids)
