"""What became of one photo's analysis: the values of ``photos.status`` and ``PhotoResult.status``.

A module of its own, apart from the catalog's tables, so the analysis workers name a status
without loading SQLAlchemy.
"""

from __future__ import annotations


class PhotoStatus:
    OK = "ok"  # analysed, with faces
    NO_FACES = "no_faces"  # analysed, no face found
    FAILED = "failed"  # could not be analysed; ``error`` says why
