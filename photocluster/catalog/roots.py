"""The folders that were scanned into a catalog (its photo library), remembered in its meta table.

One meta row per folder, keyed by a hash of the path, so two clients scanning different folders
into one shared catalog never overwrite each other's row. The path is stored as JSON text, which
keeps a name that is not valid UTF-8 exactly (as ``\\udcXX`` escapes). Catalogs scanned before
this was recorded have no rows; callers fall back to what the photos' own folders tell.
"""

from __future__ import annotations

import hashlib
import json
import os

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from photocluster.catalog.models import Meta

KEY_PREFIX = "scanned_root:"


def _key(root: str) -> str:
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:40]
    return KEY_PREFIX + digest  # 53 characters: the key column holds 64


def remember_root(session: Session, root: str) -> None:
    """Record ``root`` (absolute) as a scanned folder; already known is fine. Never commits."""
    key = _key(root)
    if session.get(Meta, key) is not None:
        return
    try:
        with session.begin_nested():
            session.add(Meta(key=key, value=json.dumps(root)))
    except IntegrityError:
        pass  # another client recorded the same folder a moment ago


def scanned_roots(session: Session) -> list[str]:
    """Every folder ever scanned into this catalog, sorted."""
    rows = session.scalars(select(Meta.value).where(Meta.key.startswith(KEY_PREFIX)))
    return sorted(json.loads(value) for value in rows)
