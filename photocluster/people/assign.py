"""People in the catalog: clustering faces into stable identities, and queries about people.

:func:`cluster_catalog` is the one unit of work that changes who is who. It owns its session.

* Incremental (default): faces not seen by a previous run first join the existing person whose
  centroid is nearest (within ``ATTACH_DISTANCE``, clearly nearer than the runner-up, never a
  person the face was rejected from, never a person who already has a face of that photo).
  The rest, with the faces earlier runs left unassigned, go through
  :func:`photocluster.people.clustering.cluster_embeddings`; every cluster made mostly of such
  leftovers becomes a new person. (All faces are clustered, as context: HDBSCAN's density is
  relative, and leftovers clustered alone would turn sparse noise into people.) With no new
  faces, an incremental run changes nothing.
* Full (``full=True``): every face is re-clustered, and unnamed faces are grouped as a fresh
  catalog would group them (but for the confirmed faces, rejections and one-face-per-photo rule
  below). Clusters and existing people are matched one to one by their members (largest
  overlap first, then Jaccard), so the matched person keeps its id; every other cluster, a
  further piece of a matched person included, becomes a new person. Noise faces end up
  unassigned. A hidden person stays hidden on its matched id; its other pieces become new,
  visible people (a wrong merge hidden as a stranger gives back whoever was mixed in). Named
  people keep their unconfirmed faces (the user named them) and may gain faces through
  matching; ``reassign_named=True`` lets the new clustering move their unconfirmed faces too
  (the name stays on the matched id). Confirmed faces never move (and count as members of their
  person when matching); a cluster holding confirmed faces of several people is split between
  them by the nearest confirmed centroid. A face is never given to a person it was rejected
  from. :attr:`ClusterChanges.named_leaving` lists, per named person, the faces that leave it.

Both modes finish with the cannot-link rule per person (one face per photo; confirmed faces win,
then faces a named person kept) and report a :class:`ClusterChanges`. ``dry_run`` computes the
same changes and writes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from photocluster.catalog.db import Catalog, hold_write_lock, in_chunks
from photocluster.catalog.embeddings import blobs_to_matrix
from photocluster.catalog.models import Face, Meta, Person, Photo, Rejection
from photocluster.errors import PhotoclusterError
from photocluster.index.store import FaceIndex, knn_graph, sync_index
from photocluster.ingest.encoder import MODEL_ID, model_of
from photocluster.people.clustering import (
    NearestFaces,
    as_matrix,
    centroids,
    cluster_embeddings,
    copy_ids,
    members_by_label,
    place_faces,
)
from photocluster.people.params import ClusterParams
from photocluster.people.projection import Projection, placing_projection
from photocluster.people.thresholds import ATTACH_NEIGHBOURS
from photocluster.progress import NoProgress, Progress

if TYPE_CHECKING:
    from photocluster.people.knn_hdbscan import Neighbours

META_LAST_FACE = "cluster.last_face_id"
META_PARAMS = "cluster.params"

# A person key in a plan: an existing person id (>= 1) or a new person (negative placeholder).
PersonKey = int


@dataclass(frozen=True)
class ClusterOptions:
    """What `cluster` may be told. ``params`` drives HDBSCAN and its post-steps; incremental
    assignment of new faces uses the same attach distance and margin."""

    params: ClusterParams = field(default_factory=ClusterParams)


@dataclass(frozen=True)
class FaceMove:
    face_id: int
    from_person: int | None
    to_person: int | None  # negative = a person this run creates (id known after writing)


@dataclass(frozen=True)
class NamedLeaving:
    """A named person's faces that leave it (or would, with ``dry_run``)."""

    person_id: int
    name: str
    moves: list[FaceMove]  # from_person is person_id


@dataclass
class ClusterChanges:
    """What a clustering run changed (or would change, with ``dry_run``)."""

    mode: str  # "incremental" | "full"
    dry_run: bool
    reassign_named: bool = False  # full: named people's unconfirmed faces followed the clustering
    faces: int = 0  # faces in the catalog
    faces_considered: int = 0  # faces this run could move
    matched_to_existing: int = 0  # incremental: new faces that joined existing people
    # incremental: the learned projection new faces were placed with (None: the raw embedding)
    placed_with: str | None = None
    moves: list[FaceMove] = field(default_factory=list)
    people_created: dict[int, int] = field(default_factory=dict)  # id (or placeholder) -> faces
    people_merged: list[tuple[int, int]] = field(default_factory=list)  # (absorbed, into)
    people_emptied: list[int] = field(default_factory=list)
    people_deleted: list[int] = field(default_factory=list)  # emptied, unnamed and not hidden
    unassigned_faces: int = 0  # after the run
    detached_same_photo: int = 0  # faces unassigned by the one-face-per-photo rule
    params: dict[str, Any] = field(default_factory=dict)
    named_leaving: list[NamedLeaving] = field(default_factory=list)  # by person id
    replanned: int = 0  # plans made again because the catalog changed while planning

    @property
    def faces_moved(self) -> int:
        return len(self.moves)

    def destination(self, move: FaceMove) -> str:
        """Where a moved face goes: "person" (existing), "new_person" or "unassigned"."""
        if move.to_person is None:
            return "unassigned"
        return "new_person" if move.to_person in self.people_created else "person"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["faces_moved"] = self.faces_moved
        data["people_created"] = [
            {"id": k if k > 0 else None, "faces": v} for k, v in self.people_created.items()
        ]
        data["people_merged"] = [{"absorbed": a, "into": b} for a, b in self.people_merged]
        # to_person: the person's id; for a new person in a dry run, a negative placeholder
        # shared by the faces that would form it (as in "moves").
        data["named_leaving"] = [
            {
                "person_id": n.person_id,
                "name": n.name,
                "faces": [
                    {"face_id": m.face_id, "to": self.destination(m), "to_person": m.to_person}
                    for m in n.moves
                ],
            }
            for n in self.named_leaving
        ]
        return data


@dataclass
class _Faces:
    ids: np.ndarray
    photo: np.ndarray
    person: np.ndarray  # -1 = unassigned
    confirmed: np.ndarray
    x: np.ndarray
    # The k-NN graph of x from the face index, when scan keeps an HNSW one (large catalogs).
    neighbours: Neighbours | None = None


def _load_faces(session: Session) -> _Faces:
    rows = session.execute(
        select(Face.id, Face.photo_id, Face.person_id, Face.confirmed, Face.embedding).order_by(
            Face.id
        )
    ).all()
    return _Faces(
        ids=np.array([r.id for r in rows], dtype=np.int64),
        photo=np.array([r.photo_id for r in rows], dtype=np.int64),
        person=np.array(
            [r.person_id if r.person_id is not None else -1 for r in rows], dtype=np.int64
        ),
        confirmed=np.array([bool(r.confirmed) for r in rows], dtype=bool),
        x=as_matrix(blobs_to_matrix([r.embedding for r in rows])),
    )


def check_clusterable(session: Session) -> None:
    """Raise a clear error for an empty catalog, a single face or mixed encoder models."""
    faces = session.scalar(select(func.count()).select_from(Face)) or 0
    if faces == 0:
        raise PhotoclusterError(
            "No faces cached yet — run `photocluster scan DIR` first, then `photocluster cluster`."
        )
    if faces == 1:
        raise PhotoclusterError(
            "Only one face in the catalog: clustering needs at least two. Scan more photos first."
        )
    with_faces = Photo.id.in_(select(Face.photo_id).distinct())
    keys = session.execute(
        select(Photo.encoder, func.count(), func.min(Photo.path))
        .where(with_faces)
        .group_by(Photo.encoder)
    ).all()
    per_model: dict[str, tuple[int, str]] = {}
    for key, count, path in keys:
        n, example = per_model.get(model_of(key), (0, path))
        per_model[model_of(key)] = (n + count, min(example, path))
    if len(per_model) > 1:
        found = "; ".join(
            f"{m}: {n} photo{'s' if n != 1 else ''} (e.g. {p})"
            for m, (n, p) in sorted(per_model.items())
        )
        raise PhotoclusterError(
            f"Faces come from different encoder models, whose distances cannot be compared "
            f"({found}). Scan the folders of the photos not made with {MODEL_ID} again "
            "(`photocluster scan DIR`; names and decisions are kept), then cluster again."
        )


def _rejections(session: Session) -> dict[int, set[int]]:
    out: dict[int, set[int]] = defaultdict(set)
    for face_id, person_id in session.execute(select(Rejection.face_id, Rejection.person_id)):
        out[face_id].add(person_id)
    return out


def _centroids(x: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each person key (sorted, placeholders included) and the mean embedding of its faces."""
    return centroids(x, owner, owner != -1)


def _get_meta(session: Session, key: str) -> str | None:
    row = session.get(Meta, key)
    return row.value if row else None


def _set_meta(session: Session, key: str, value: str) -> None:
    row = session.get(Meta, key)
    if row is None:
        session.add(Meta(key=key, value=value))
    else:
        row.value = value


def saved_params(catalog: Catalog) -> ClusterParams | None:
    """The parameters the last clustering run used (remembered in the catalog), if any.

    A user who chose parameters with `cluster` keeps them for every later run, including the
    incremental clustering after `scan`; parameters they did not change follow the built-in
    defaults of the version that runs. Unknown or invalid stored values are ignored.
    """
    with catalog.session() as session:
        text = _get_meta(session, META_PARAMS)
    if not text:
        return None
    try:
        stored = json.loads(text)
        if stored.get("format") == _PARAMS_FORMAT:
            stored = stored["changed"]  # the rest follows the built-in defaults of today
        known = {f.name for f in dataclasses.fields(ClusterParams)}
        return ClusterParams(**{k: v for k, v in stored.items() if k in known})
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _face_index(catalog: Catalog, index_dir: Path | None) -> FaceIndex | None:
    """The face index, up to date, if there is a folder for it and it can be had."""
    if index_dir is None:
        return None
    try:
        return sync_index(catalog, index_dir)[0]
    except OSError:  # unwritable cache: cluster builds its own k-NN graph
        return None


def _nearest_faces(f: _Faces, rows: np.ndarray, space: np.ndarray) -> NearestFaces:
    """Each face's ``ATTACH_NEIGHBOURS`` nearest faces in ``space`` (``f.x`` or the learned
    space; asked for ``rows`` and their nearest): by exact search, or from the face index's
    HNSW graph (of the raw embeddings) when that search would be long (many new faces, a large
    catalog)."""
    graph = None
    if f.neighbours is not None and len(rows) * len(f.x) > _EXACT_SEARCH_WORK:
        graph = f.neighbours(ATTACH_NEIGHBOURS + 1)[1]
    return NearestFaces(space, ATTACH_NEIGHBOURS, graph)


# Face pairs compared by an exact search for new faces' nearest faces before the face index's
# graph is used instead (10 000 new faces in a catalog of 200 000: a few seconds).
_EXACT_SEARCH_WORK = 2_000_000_000


def _plan_incremental(
    f: _Faces,
    rejected: dict[int, set[int]],
    params: ClusterParams,
    last_face: int,
    placing: Callable[[], Projection | None] = lambda: None,
) -> tuple[np.ndarray, int, np.ndarray, str | None]:
    """New owner per face (existing ids, negative placeholders for new people, -1 for none),
    new faces that joined people, the faces left over, and the learned projection new faces
    were placed with (``placing()``, asked only when there are new faces to place; None:
    raw)."""
    owner = f.person.copy()
    unassigned = owner == -1
    new = unassigned & (f.ids > last_face)
    matched = 0
    placed_with = None
    new_idx = np.nonzero(new)[0]
    photo_people: dict[int, set[int]] = defaultdict(set)
    for i in np.nonzero(owner != -1)[0].tolist():
        photo_people[int(f.photo[i])].add(int(owner[i]))

    def forbidden_for(rows: np.ndarray) -> list[set[int]]:
        return [
            rejected.get(int(f.ids[i]), set()) | photo_people.get(int(f.photo[i]), set())
            for i in rows.tolist()
        ]

    if len(new_idx) and (owner != -1).any():
        # The same rule as a leftover face joining a cluster: near the person's centroid
        # within its own spread (or mutual nearest neighbours with some of the person's faces),
        # clearly nearer than the runner-up, and the face's own nearest faces mostly that
        # person's.
        # In the space learned from the user's names when it placed their held-out faces
        # better (people.projection), else raw.
        space = f.x
        projection = placing()
        if projection is not None:
            space, placed_with = projection.transform(f.x), projection.method
        nearest = _nearest_faces(f, new_idx, space) if params.attach_share > 0 else None
        got = place_faces(
            space,
            owner,
            new_idx,
            params,
            forbidden=forbidden_for(new_idx),
            nearest=nearest,
            copies=copy_ids(f.x),
        )
        # Two new faces of one photo may pick the same person: the per-person rule sorts it out.
        owner[new_idx] = got
        matched = int((got != -1).sum())
    rest = np.nonzero(owner == -1)[0]
    if not new.any() or len(rest) < 2:
        return owner, matched, rest[:0], placed_with
    # HDBSCAN's density is relative, so leftovers clustered alone would turn sparse noise into
    # people. Cluster everything for context: a cluster that is mostly leftovers is a new
    # person; leftovers in a cluster that is mostly one person's faces join that person (as a
    # fresh clustering would have put them), unless rejected or their photo is already there.
    labels = cluster_embeddings(f.x, params, f.photo, f.neighbours)
    is_rest = owner == -1
    key = -2  # placeholders -2, -3, ... (-1 means unassigned)
    for members in members_by_label(labels)[1]:
        leftovers = members[is_rest[members]]
        # cluster_embeddings already applied the size rules (including small pair-ups).
        if len(leftovers) * 2 > len(members) and len(leftovers) >= 2:
            owner[leftovers] = key
            key -= 1
        elif len(leftovers):
            person, n = Counter(owner[members].tolist()).most_common(1)[0]
            if person > 0 and n * 2 > len(members):
                for i, banned in zip(leftovers.tolist(), forbidden_for(leftovers), strict=True):
                    if person not in banned:
                        owner[i] = person
    return owner, matched, rest, placed_with


def _plan_full(
    f: _Faces,
    rejected: dict[int, set[int]],
    params: ClusterParams,
    existing: set[int],
    keeps_faces: set[int],
) -> tuple[np.ndarray, np.ndarray]:
    """New owner per face (existing ids, negative placeholders for new people, -1 for none),
    and the faces that stayed because their person keeps its faces (``keeps_faces``: the named
    people, unless their faces are reassigned too)."""
    labels = cluster_embeddings(f.x, params, f.photo, f.neighbours)
    keepers = np.fromiter(keeps_faces, dtype=np.int64, count=len(keeps_faces))
    kept = ~f.confirmed & np.isin(f.person, keepers)
    # Confirmed faces never move; nor do the unconfirmed faces of a person who keeps them.
    fixed = f.confirmed | kept
    owner = np.full(len(f.ids), -1, dtype=np.int64)
    owner[fixed] = f.person[fixed]

    # Split clusters holding confirmed faces of several people; tie others to their people.
    groups: list[tuple[np.ndarray, int | None]] = []  # member indices, forced person
    for members in members_by_label(labels)[1]:
        conf = members[f.confirmed[members] & (f.person[members] != -1)]
        persons = sorted(set(f.person[conf].tolist()))
        if len(persons) < 2:
            # Matched by overlap like any cluster (a confirmed stray must not drag the others).
            groups.append((members, None))
            continue
        cents = np.stack([f.x[conf[f.person[conf] == p]].mean(axis=0) for p in persons])
        free = members[~fixed[members]]
        d = np.linalg.norm(f.x[free][:, None, :] - cents[None, :, :], axis=2)
        nearest = np.argmin(d, axis=1) if len(free) else np.zeros(0, dtype=np.int64)
        for k, p in enumerate(persons):
            part = np.r_[free[nearest == k], conf[f.person[conf] == p]]
            groups.append((part, p))

    taken: set[int] = {p for _, p in groups if p is not None}
    cluster_person: list[int | None] = [p for _, p in groups]
    # One-to-one matching of the other clusters by member overlap (largest first, then Jaccard).
    sizes = Counter(f.person[f.person != -1].tolist())
    candidates: list[tuple[int, float, int, int]] = []
    for g, (members, forced) in enumerate(groups):
        if forced is not None:
            continue
        overlap = Counter(p for p in f.person[members].tolist() if p != -1)
        for p, n in overlap.items():
            jaccard = n / (len(members) + sizes[p] - n)
            candidates.append((n, jaccard, g, p))
    for _n, _j, g, p in sorted(candidates, key=lambda c: (-c[0], -c[1], c[2], c[3])):
        if cluster_person[g] is None and p not in taken and p in existing:
            cluster_person[g] = p
            taken.add(p)
    # Every other cluster is a new person, even one made mostly of a matched person's faces:
    # rejoining such a piece to its old id would bring back the merge the new clustering undid.
    new_key = -1  # placeholders -2, -3, ... (-1 means unassigned)
    for g, (members, _forced) in enumerate(groups):
        person = cluster_person[g]
        if person is None:
            new_key -= 1
            person = new_key
        owner[members[~fixed[members]]] = person
    # Never give a face to a person it was rejected from.
    for i in np.nonzero(~f.confirmed & (owner > 0))[0].tolist():
        if int(owner[i]) in rejected.get(int(f.ids[i]), set()):
            owner[i] = -1
    return owner, kept


def _one_face_per_photo(f: _Faces, owner: np.ndarray, kept: np.ndarray | None = None) -> int:
    """Per person, keep one face per photo: a confirmed one, else the nearest to the centroid
    among the faces the person kept (``kept``: a named person's own faces in a full run), if
    any, else among all."""
    by_key: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in np.nonzero(owner != -1)[0].tolist():
        by_key[(int(owner[i]), int(f.photo[i]))].append(i)
    clashes = [(k, v) for k, v in by_key.items() if len(v) > 1]
    if not clashes:
        return 0
    keys, cents = _centroids(f.x, owner)
    where = {int(k): j for j, k in enumerate(keys.tolist())}
    detached = 0
    for (person, _photo), members in clashes:
        confirmed = [i for i in members if f.confirmed[i]]
        if confirmed:
            keep = set(confirmed)
        else:
            pool = [i for i in members if kept is not None and kept[i]] or members
            d = np.linalg.norm(f.x[pool] - cents[where[person]], axis=1)
            keep = {pool[int(np.argmin(d))]}
        for i in members:
            if i not in keep and not f.confirmed[i]:
                owner[i] = -1
                detached += 1
    return detached


# A plan is made without the write lock (minutes on a large catalog) and written under it only
# if nothing it was made from changed meanwhile; otherwise it is made again. The last try plans
# under the lock, so a busy catalog cannot keep a clustering from finishing.
_PLAN_TRIES = 3


@dataclass
class _Inputs:
    """What a plan was made from, but the embeddings (a changed embedding is a photo scanned
    again: its ``scanned_at`` moves). Any difference under the write lock: plan again."""

    faces: np.ndarray  # (n, 4): id, photo, person (-1 none), confirmed; by id
    rejections: set[tuple[int, int]]
    people: dict[int, tuple[str | None, bool]]
    last_face: int
    last_scan: datetime | None

    @classmethod
    def read(cls, session: Session) -> _Inputs:
        rows = session.execute(
            select(Face.id, Face.photo_id, Face.person_id, Face.confirmed).order_by(Face.id)
        ).all()
        faces = np.array(
            [(r[0], r[1], -1 if r[2] is None else r[2], bool(r[3])) for r in rows], dtype=np.int64
        ).reshape(-1, 4)
        people = session.execute(select(Person.id, Person.name, Person.hidden)).all()
        return cls(
            faces=faces,
            rejections={
                (a, b) for a, b in session.execute(select(Rejection.face_id, Rejection.person_id))
            },
            people={int(i): (n, bool(h)) for i, n, h in people},
            last_face=int(_get_meta(session, META_LAST_FACE) or 0),
            last_scan=_last_scan(session),
        )

    @classmethod
    def of(
        cls,
        f: _Faces,
        rejected: dict[int, set[int]],
        people: dict[int, Person],
        last_face: int,
        last_scan: datetime | None,
    ) -> _Inputs:
        """The inputs exactly as the plan saw them."""
        return cls(
            faces=np.column_stack([f.ids, f.photo, f.person, f.confirmed]).astype(np.int64),
            rejections={(face, person) for face, ps in rejected.items() for person in ps},
            people={pid: (p.name, bool(p.hidden)) for pid, p in people.items()},
            last_face=last_face,
            last_scan=last_scan,
        )

    def same_as(self, other: _Inputs) -> bool:
        return (
            np.array_equal(self.faces, other.faces)
            and self.rejections == other.rejections
            and self.people == other.people
            and self.last_face == other.last_face
            and self.last_scan == other.last_scan
        )


def _last_scan(session: Session) -> datetime | None:
    return session.scalar(select(func.max(Photo.scanned_at)))


@dataclass
class _Plan:
    changes: ClusterChanges
    f: _Faces
    owner: np.ndarray
    people: dict[int, Person]
    named: dict[int, str]
    inputs: _Inputs
    meta: dict[str, str | None]  # the stored values _write sets

    def writes_nothing(self, params: ClusterParams) -> bool:
        c = self.changes
        return (
            not c.moves
            and not c.people_created
            and not c.people_deleted
            and (not len(self.f.ids) or self.meta.get(META_LAST_FACE) == str(int(self.f.ids.max())))
            and self.meta.get(META_PARAMS) == _params_text(params)
        )


_PARAMS_FORMAT = 2


def _params_text(params: ClusterParams) -> str:
    """The parameters as remembered: only those that differ from the built-in defaults, so a
    better default in a later version reaches every catalog whose user did not choose otherwise.
    (Format 1, every field, is still read: such catalogs keep what they had until
    `cluster --defaults`.)"""
    default = asdict(ClusterParams())
    changed = {k: v for k, v in asdict(params).items() if default.get(k) != v}
    return json.dumps({"format": _PARAMS_FORMAT, "changed": changed}, sort_keys=True)


def _plan(
    session: Session,
    index: FaceIndex | None,
    params: ClusterParams,
    changes: ClusterChanges,
    progress: Progress,
) -> _Plan:
    """Read the catalog and decide every face's person; writes nothing."""
    last_scan = _last_scan(session)  # first: a photo written after it makes the plan stale
    f = _load_faces(session)
    if index is not None and index.kind == "hnsw":
        alive = np.sort(index.ids[index.ids >= 0])
        if np.array_equal(alive, f.ids):  # not changed by someone else meanwhile
            f.neighbours = functools.partial(knn_graph, index, f.ids, f.x)
    rejected = _rejections(session)
    people = {p.id: p for p in session.execute(select(Person)).scalars()}
    last_face = int(_get_meta(session, META_LAST_FACE) or 0)
    progress.advance()
    changes.faces = len(f.ids)
    named = {pid: p.name for pid, p in people.items() if p.name is not None}
    kept: np.ndarray | None = None
    if changes.mode == "full":
        keeps_faces = set() if changes.reassign_named else set(named)
        owner, kept = _plan_full(f, rejected, params, set(people), keeps_faces)
        changes.faces_considered = int((~f.confirmed & ~kept).sum())
    else:
        owner, changes.matched_to_existing, rest, changes.placed_with = _plan_incremental(
            f, rejected, params, last_face, functools.partial(placing_projection, session)
        )
        changes.faces_considered = changes.matched_to_existing + len(rest)
    progress.advance()
    changes.detached_same_photo = _one_face_per_photo(f, owner, kept)
    changes.unassigned_faces = int((owner == -1).sum())
    _describe(changes, f, owner, people)
    inputs = _Inputs.of(f, rejected, people, last_face, last_scan)
    meta = {key: _get_meta(session, key) for key in (META_LAST_FACE, META_PARAMS)}
    return _Plan(changes, f, owner, people, named, inputs, meta)


def cluster_catalog(
    catalog: Catalog,
    options: ClusterOptions,
    *,
    full: bool = False,
    reassign_named: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    index_dir: Path | None = None,
) -> ClusterChanges:
    """Cluster the catalog's faces into people (see the module docstring).

    ``reassign_named`` (full runs only): named people's unconfirmed faces follow the new
    clustering too, instead of staying with their person.
    ``index_dir`` (``Settings.cache_dir``): where `find`'s face index lives. Brought up to date
    first; when it is an HNSW graph, HDBSCAN's k-NN graph comes from it instead of being built.

    Planned without the catalog's write lock, written under it, and only if the faces, people,
    rejections and scans it was planned from are unchanged: a decision made (or a scan written)
    while this run was planning makes it plan again (``ClusterChanges.replanned``), so it is
    never overwritten by a plan that did not know it.
    """
    if reassign_named and not full:
        raise ValueError("reassign_named applies to full runs only")
    progress = progress or NoProgress()
    with catalog.session() as session:
        check_clusterable(session)  # before any work
    # Steps: the face index (minutes when a large catalog's HNSW graph is first built), loading
    # faces, clustering, writing.
    progress.start(4, "Clustering")
    index = _face_index(catalog, index_dir)
    progress.advance()
    params = options.params
    what = "cluster --full" if full else "cluster"
    for attempt in range(_PLAN_TRIES):
        if attempt:
            progress.finish()
            progress.start(3, "Clustering again (the catalog changed meanwhile)")
        locked = attempt == _PLAN_TRIES - 1 and not dry_run
        changes = ClusterChanges(
            mode="full" if full else "incremental", dry_run=dry_run, reassign_named=reassign_named
        )
        changes.params = asdict(params)
        changes.replanned = attempt
        with catalog.session() as session:
            if locked:
                hold_write_lock(session, what)
                check_clusterable(session)
            plan = _plan(session, index, params, changes, progress)
            if locked:
                _write(session, plan, params)
        if dry_run or locked or plan.writes_nothing(params):
            break  # (nothing to write: a repeated run takes no lock and reads nothing more)
        with catalog.session() as session:
            hold_write_lock(session, what)
            if _Inputs.read(session).same_as(plan.inputs):
                _write(session, plan, params)
                break
    changes.named_leaving = _named_leaving(changes.moves, plan.named)
    progress.advance()
    progress.finish()
    return changes


def _write(session: Session, plan: _Plan, params: ClusterParams) -> None:
    _apply(session, plan.changes, plan.f, plan.owner, plan.people)
    if len(plan.f.ids):
        _set_meta(session, META_LAST_FACE, str(int(plan.f.ids.max())))
    _set_meta(session, META_PARAMS, _params_text(params))


def _describe(
    changes: ClusterChanges, f: _Faces, owner: np.ndarray, people: dict[int, Person]
) -> None:
    before = f.person
    for i in np.nonzero(before != owner)[0].tolist():
        old = int(before[i])
        new = int(owner[i])
        changes.moves.append(
            FaceMove(int(f.ids[i]), old if old != -1 else None, new if new != -1 else None)
        )
    created = Counter(int(k) for k in owner[owner < -1].tolist())
    changes.people_created = dict(sorted(created.items(), reverse=True))
    after = Counter(int(k) for k in owner[owner > 0].tolist())
    person_ids, their_faces = members_by_label(before, before > 0)
    had_faces = dict(zip(person_ids.tolist(), their_faces, strict=True))
    for pid in sorted(people):
        had = had_faces.get(pid)
        person = people[pid]
        if had is None and changes.mode == "full" and person.name is None and not person.hidden:
            changes.people_deleted.append(pid)  # empty already (left by decisions or older runs)
        if had is None or after.get(pid):
            continue
        dest = Counter(int(k) for k in owner[had].tolist() if k != -1 and k > 0)
        if dest and dest.most_common(1)[0][1] * 2 > len(had):
            changes.people_merged.append((pid, dest.most_common(1)[0][0]))
        else:
            changes.people_emptied.append(pid)
        if person.name is None and not person.hidden:
            changes.people_deleted.append(pid)


def _named_leaving(moves: list[FaceMove], named: dict[int, str]) -> list[NamedLeaving]:
    """The moves out of each named person, by person id (``moves`` as finally reported)."""
    leaving: dict[int, list[FaceMove]] = defaultdict(list)
    for m in moves:
        if m.from_person in named:
            leaving[m.from_person].append(m)
    return [NamedLeaving(pid, named[pid], leaving[pid]) for pid in sorted(leaving)]


def _apply(
    session: Session,
    changes: ClusterChanges,
    f: _Faces,
    owner: np.ndarray,
    people: dict[int, Person],
) -> None:
    now = datetime.now()
    created = {
        key: Person(name=None, hidden=False, created_at=now) for key in changes.people_created
    }
    session.add_all(created.values())
    session.flush()  # one batched INSERT ... RETURNING for all of them
    real: dict[int, int] = {key: person.id for key, person in created.items()}
    final = {k: real.get(k, k) for k in set(owner.tolist())}
    by_person: dict[int | None, list[int]] = defaultdict(list)
    for i in np.nonzero(f.person != owner)[0].tolist():
        target = final[int(owner[i])]
        by_person[target if target != -1 else None].append(int(f.ids[i]))
    for person_id, face_ids in by_person.items():
        for chunk in in_chunks(face_ids):
            # No ORM faces are loaded here: skip the per-statement scan of the session's
            # objects ("evaluate" sync), quadratic with 50 000 new people in the session.
            session.execute(
                update(Face)
                .where(Face.id.in_(chunk))
                .values(person_id=person_id)
                .execution_options(synchronize_session=False)
            )
    if changes.people_deleted:
        session.execute(delete(Person).where(Person.id.in_(changes.people_deleted)))
    changes.people_created = {real[k]: v for k, v in changes.people_created.items()}
    changes.moves = [
        FaceMove(m.face_id, m.from_person, final.get(m.to_person, m.to_person))
        if m.to_person is not None
        else m
        for m in changes.moves
    ]


# --- queries (take a session, never commit) ----------------------------------------------------
