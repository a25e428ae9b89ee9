"""XMP face regions (Metadata Working Group) out of and into the catalog.

**Writing** (``writer.export_xmp``, `export-xmp`) goes through exiftool, the well-kept tool that
reads and writes MWG region structs, sidecars and embedded XMP without losing other tags. One
exiftool process serves the whole run (``-stay_open``). For each photo with named faces the
sidecar (or, with ``in_place``, the photo itself) gets:

* ``mwg-rs:Regions``: ``AppliedToDimensions`` = the displayed size in pixels, and one region per
  named face, ``Type=Face``, ``Name``, ``Area`` = normalised centre x/y and w/h of the face box
  *as displayed* (EXIF orientation applied; the catalog's boxes and sizes already are);
* ``Iptc4xmpExt:PersonInImage`` with the names, and ``dc:subject`` keywords when asked.

Merging keeps every other tag of an existing sidecar. Existing regions are kept too, except face
regions that overlap a face photocluster writes (those are replaced, so renames propagate);
their names leave ``PersonInImage``/keywords along with them. A photo whose sidecar already says
the same is not rewritten. Without exiftool (``exiftool``), ``export_xmp`` refuses with install
instructions (nothing is hand-written).

**Reading** (``regions``; ``importer.import_xmp``, `import-xmp`) does not need exiftool:
sidecars are parsed with defusedxml (no DTDs, no entity expansion, size-limited) and embedded
XMP comes from Pillow. Names on regions that overlap a detected face become confirmed faces via
``naming.assign_faces``. Broken or hostile XMP, and sidecar names that are not regular files (a
FIFO would block the read forever), are skipped with a reason. Packets ending in NUL padding are
read, as exiftool reads them.
"""
