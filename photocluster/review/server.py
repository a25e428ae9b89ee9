"""The review web app (Starlette): pages, face and photo images, and the actions, over one open
catalog.

Safety: every request must carry the server's random token (``?token=`` in the URL, which every
link and image of the pages carries, or the ``X-Review-Token`` header), else 403; a request that
changes something must be a POST with the token in the header (a page on another site cannot set
it, so no cross-site form post gets through) and a JSON body. Images are looked up by face or photo
id (digits only in the route): the file read is the one the catalog names, never a path from the
request. A read-only app refuses every POST.

One owner per unit of work: each request opens its own session and commits it at the end; the
actions of the page are serialised within the server and take the catalog's write lock, which a
`photocluster` command holding it for long makes a clear "busy" answer (not a hung page).
"""

from __future__ import annotations

import errno
import hashlib
import io
import ipaddress
import json
import logging
import math
import os
import secrets
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from PIL import Image
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Photo
from photocluster.decisions.contact_sheet import DEFAULT_TILE, CropCache, crop_requests
from photocluster.decisions.log import NameConflict
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.index.store import FaceIndex, sync_index
from photocluster.ingest.imaging import UnreadableImage, load_view
from photocluster.people.suggestions import LIKELY
from photocluster.review import actions, queries

HERE = Path(__file__).resolve().parent
TOKEN_HEADER = "X-Review-Token"
PHOTO_SIDE = 1600  # long side of a photo as the photo page shows it
_log = logging.getLogger("photocluster.review")


class CatalogBusy(PhotoclusterError):
    """Another program holds the catalog's write lock: try again when it is done."""


def refuse_waiting(holder: str) -> None:
    """The catalog's ``on_wait`` for a server: never hang a page behind a long writer."""
    raise CatalogBusy(
        f"The catalog is busy: {holder} is writing it. Nothing was changed; try again when it "
        "has finished."
    )


@dataclass
class ReviewConfig:
    catalog: Catalog
    cache_dir: Path
    token: str
    actor: str
    read_only: bool = False


def _face_index(cfg: ReviewConfig) -> FaceIndex | None:
    """The face index, up to date (its graph finds nearest faces for suggestions); None when
    its cache folder cannot be written."""
    try:
        return sync_index(cfg.catalog, cfg.cache_dir)[0]
    except OSError:
        return None


def new_token() -> str:
    return secrets.token_urlsafe(24)


# --- token ----------------------------------------------------------------------------------


class _TokenCheck(BaseHTTPMiddleware):
    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        cfg: ReviewConfig = request.app.state.cfg
        given = request.headers.get(TOKEN_HEADER)
        if request.method != "POST":
            given = given or request.query_params.get("token")
        if not given or not secrets.compare_digest(given.encode(), cfg.token.encode()):
            what = (
                f"the {TOKEN_HEADER} header"
                if request.method == "POST"
                else "the token in the address"
            )
            return _refuse(
                request,
                403,
                f"Forbidden: {what} is missing or wrong. Open the "
                "address `photocluster review` printed (it holds the token).",
            )
        if request.method not in ("GET", "HEAD", "POST"):
            return _refuse(request, 405, "Only GET and POST are served.")
        path = cfg.catalog.path
        if path is not None and not path.exists():
            return _refuse(
                request,
                503,
                f"The catalog {path} is gone (moved or deleted while review was running). "
                "Stop this server and start `photocluster review --db PATH` again.",
            )
        return await call_next(request)


def _wants_json(request: Request) -> bool:
    return request.method == "POST" or request.url.path.startswith("/api/")


def _refuse(request: Request, status: int, message: str, **extra: Any) -> Response:
    if _wants_json(request) or request.url.path.endswith(".jpg"):
        return JSONResponse({"error": message, **extra}, status_code=status)
    return _error_page(request, status, message)


def _error_page(request: Request, status: int, message: str) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    cfg: ReviewConfig | None = getattr(request.app.state, "cfg", None)
    ok = cfg is not None and secrets.compare_digest(
        (request.query_params.get("token") or "").encode(), cfg.token.encode()
    )
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "message": message, "token": cfg.token if (ok and cfg) else None},
        status_code=status,
    )


# --- errors ---------------------------------------------------------------------------------


def _status(exc: PhotoclusterError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, CatalogBusy):
        return 503
    if isinstance(exc, actions.Stale | actions.NameTaken | NameConflict):
        return 409
    return 400


async def _on_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, PhotoclusterError):
        extra: dict[str, Any] = {}
        if isinstance(exc, actions.NameTaken):
            extra = {"holder": exc.holder, "holder_name": exc.name}
        elif isinstance(exc, NameConflict):
            extra = {"names": exc.names}
        return _refuse(request, _status(exc), str(exc), **extra)
    if isinstance(exc, OperationalError):
        _log.warning("database error: %s", exc)
        return _refuse(
            request,
            503,
            "The catalog could not be read or written just now (locked or unavailable): "
            f"{exc.orig}. Nothing was changed; try again in a moment.",
        )
    _log.exception("bug while serving %s", request.url.path)
    return _refuse(request, 500, f"Internal error ({type(exc).__name__}); see the server's log.")


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _refuse(request, exc.status_code, str(exc.detail))


# --- pages ----------------------------------------------------------------------------------


def _int(request: Request, key: str, default: int = 1) -> int:
    raw = request.query_params.get(key, "")
    return int(raw) if raw.isdigit() and len(raw) < 9 else default


def _common(session: Session, request: Request) -> dict[str, Any]:
    cfg: ReviewConfig = request.app.state.cfg
    return {
        "token": cfg.token,
        "read_only": cfg.read_only,
        "last": queries.last_decision(session),
        "names": queries.names(session),
    }


def _render(request: Request, name: str, **context: Any) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context)


def people(request: Request) -> Response:
    cfg: ReviewConfig = request.app.state.cfg
    with cfg.catalog.session() as s:
        page = queries.people_page(s, _int(request, "page"))
        return _render(request, "people.html", page=page, **_common(s, request))


def person(request: Request) -> Response:
    cfg: ReviewConfig = request.app.state.cfg
    atypical = request.query_params.get("order") == "atypical"
    with cfg.catalog.session() as s:
        view = queries.person_view(
            s,
            request.path_params["person_id"],
            _int(request, "page"),
            atypical_first=atypical,
            cache=request.app.state.ranks,
        )
        return _render(request, "person.html", view=view, **_common(s, request))


def unassigned(request: Request) -> Response:
    cfg: ReviewConfig = request.app.state.cfg
    with cfg.catalog.session() as s:
        view = queries.unassigned_view(s, _int(request, "page"), cache=request.app.state.unassigned)
        return _render(request, "unassigned.html", view=view, **_common(s, request))


def photo(request: Request) -> Response:
    cfg: ReviewConfig = request.app.state.cfg
    with cfg.catalog.session() as s:
        view = queries.photo_view(s, request.path_params["photo_id"])
        return _render(request, "photo.html", view=view, **_common(s, request))


def log_page(request: Request) -> Response:
    cfg: ReviewConfig = request.app.state.cfg
    with cfg.catalog.session() as s:
        entries = queries.log_entries(s)
        return _render(request, "log.html", entries=entries, **_common(s, request))


def suggestion(request: Request) -> Response:
    cfg: ReviewConfig = request.app.state.cfg
    with cfg.catalog.session() as s:
        found = queries.person_suggestion(
            s, request.path_params["person_id"], request.app.state.unassigned
        )
    if found is None:
        return JSONResponse({"suggestion": None})
    return JSONResponse(
        {
            "suggestion": {
                "id": found.person_id,
                "name": found.name,
                "score": found.score,
                "chance": found.chance,  # the chance it is them (a small person), or null
                "likely": found.chance is None or found.chance >= LIKELY,  # else "May be"
            }
        }
    )


# --- images ---------------------------------------------------------------------------------


def face_image(request: Request) -> Response:
    """A face crop from the content-hash crop cache (cut once, then read from the cache)."""
    cfg: ReviewConfig = request.app.state.cfg
    face_id = request.path_params["face_id"]
    with cfg.catalog.session() as s:
        reqs = crop_requests(s, [face_id])
    if not reqs:
        raise NotFound(f"There is no face {face_id} (removed by a scan since?).")
    cache = CropCache(cfg.cache_dir, DEFAULT_TILE)
    path = cache.key(reqs[0])
    if not path.is_file():
        crop, problem = cache.get(reqs[0])
        if problem is not None or not path.is_file():
            return _jpeg(crop, headers={"Cache-Control": "no-store"})
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private"})


def photo_image(request: Request) -> Response:
    """The photo, upright and at most ``PHOTO_SIDE`` pixels long, cached beside the crops."""
    cfg: ReviewConfig = request.app.state.cfg
    photo_id = request.path_params["photo_id"]
    with cfg.catalog.session() as s:
        row = s.get(Photo, photo_id)
        if row is None:
            raise NotFound(f"There is no photo {photo_id} (removed by a scan since?).")
        source, digest, mtime = str(row.path), row.content_hash, row.mtime_ns
    ident = digest or hashlib.sha1(f"{source}\0{mtime}".encode()).hexdigest()
    cached = cfg.cache_dir / "review-photos" / ident[:2] / f"{ident}-{PHOTO_SIDE}.jpg"
    if not cached.is_file():
        try:
            view = load_view(Path(source).read_bytes(), PHOTO_SIDE)
        except (OSError, UnreadableImage) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise NotFound(f"Photo {photo_id} cannot be read ({reason}).") from exc
        _store(cached, Image.fromarray(view.pixels))
    return FileResponse(cached, media_type="image/jpeg", headers={"Cache-Control": "private"})


def _store(path: Path, img: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            img.save(fh, format="JPEG", quality=85)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jpeg(img: Image.Image, headers: dict[str, str]) -> Response:

    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return Response(buf.getvalue(), media_type="image/jpeg", headers=headers)


# --- actions --------------------------------------------------------------------------------


def _body(request_body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(request_body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PhotoclusterError("The request body is not JSON.") from exc
    if not isinstance(data, dict):
        raise PhotoclusterError("The request body must be a JSON object.")
    return data


def _id(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PhotoclusterError(f"{key!r} must be an id (a whole number).")
    return value


def _text(data: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise PhotoclusterError(f"{key!r} must be text.")
    return value


def _seen_faces(data: dict[str, Any]) -> dict[int, int | None]:
    seen = data.get("faces")
    if not isinstance(seen, dict) or not seen:
        raise PhotoclusterError("No faces selected: select faces first (click, shift-click, a).")
    out: dict[int, int | None] = {}
    for key, value in seen.items():
        if not str(key).isdigit() or not (value is None or isinstance(value, int)):
            raise PhotoclusterError("'faces' maps face ids to the person each was in.")
        out[int(key)] = value
    return out


def _act(session: Session, kind: str, data: dict[str, Any], actor: str) -> actions.Outcome:
    if kind == "rename":
        return actions.rename(
            session,
            _id(data, "person"),
            _text(data, "name") or "",
            _text(data, "seen", optional=True),
            actor,
        )
    if kind == "merge":
        into = data.get("into")
        if isinstance(into, bool) or not isinstance(into, int | str) or str(into).strip() == "":
            raise PhotoclusterError("Say whom to merge into: a name or a person id.")
        return actions.merge(
            session,
            _id(data, "person"),
            str(into),
            _text(data, "seen", optional=True),
            actor,
            into_seen=_text(data, "into_seen", optional=True),
            into_checked="into_seen" in data,
            name=_text(data, "name", optional=True),
        )
    if kind == "hide":
        hidden = data.get("hidden")
        if not isinstance(hidden, bool):
            raise PhotoclusterError("'hidden' must be true or false.")
        return actions.hide(session, _id(data, "person"), hidden, not hidden, actor)
    if kind == "reject":
        who = data.get("person")
        return actions.reject(
            session,
            _seen_faces(data),
            actor,
            person_id=None if who is None else _id(data, "person"),
        )
    if kind == "assign":
        to = data.get("to")
        if isinstance(to, bool) or not isinstance(to, int | str) or str(to).strip() == "":
            raise PhotoclusterError("Say whom these faces are: a name or a person id.")
        return actions.assign(
            session, _seen_faces(data), to, actor, create=bool(data.get("create"))
        )
    if kind == "undo":
        expect = data.get("expect")
        return actions.undo(session, None if expect is None else _id(data, "expect"))
    raise NotFound(f"No action {kind!r}.")


async def act(request: Request) -> Response:
    cfg: ReviewConfig = request.app.state.cfg
    if cfg.read_only:
        return _refuse(
            request, 403, "This review is read-only (--read-only): nothing can be changed here."
        )
    if not request.headers.get("content-type", "").startswith("application/json"):
        return _refuse(request, 415, "Actions take a JSON body (Content-Type: application/json).")
    data = _body(await request.body())
    kind = request.path_params["action"]
    from starlette.concurrency import run_in_threadpool

    def work() -> actions.Outcome:
        with request.app.state.write_lock, cfg.catalog.session() as s:
            return _act(s, kind, data, cfg.actor)

    outcome = await run_in_threadpool(work)
    return JSONResponse(
        {"message": outcome.message, "decision": outcome.decision, "go": outcome.go}
    )


# --- the app --------------------------------------------------------------------------------


def _url(token: str) -> Callable[..., str]:
    def url(path: str, **params: Any) -> str:
        query = {k: v for k, v in params.items() if v is not None}
        query["token"] = token
        return f"{path}?{urlencode(query)}"

    return url


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def create_app(cfg: ReviewConfig) -> Starlette:
    """The review app over ``cfg.catalog`` (which the caller opened and closes)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["url"] = _url(cfg.token)
    templates.env.filters["fmt"] = _fmt
    # The stylesheet goes into each page: no request before the first paint.
    templates.env.globals["stylesheet"] = (HERE / "static" / "review.css").read_text("utf-8")
    routes = [
        Route("/", people),
        Route("/person/{person_id:int}", person),
        Route("/unassigned", unassigned),
        Route("/photo/{photo_id:int}", photo),
        Route("/log", log_page),
        Route("/face/{face_id:int}.jpg", face_image),
        Route("/image/{photo_id:int}.jpg", photo_image),
        Route("/api/person/{person_id:int}/suggestion", suggestion),
        Route("/api/{action:str}", act, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_TokenCheck)],
        exception_handlers={
            PhotoclusterError: _on_error,
            OperationalError: _on_error,
            HTTPException: _on_http,
            Exception: _on_error,  # a bug: a short page; Starlette still logs the traceback
        },
    )
    app.state.cfg = cfg
    app.state.templates = templates
    app.state.write_lock = threading.Lock()
    app.state.ranks = queries.RankCache()
    app.state.unassigned = queries.ReviewCache(partial(_face_index, cfg))
    return app


# --- serving --------------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything is served: a port in use is a clear error."""
    try:
        return socket.create_server(
            (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PhotoclusterError(
                f"Port {port} on {host} is already in use (another review, or another program). "
                "Choose another with --port N, or --port 0 for any free port."
            ) from exc
        raise PhotoclusterError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from exc


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Server:
    """uvicorn serving ``app`` on an already bound socket; :meth:`run` blocks until stopped."""

    def __init__(self, app: Starlette, sock: socket.socket) -> None:
        import uvicorn

        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self.sock = sock

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def run(self) -> None:
        self._server.run(sockets=[self.sock])

    def stop(self) -> None:
        self._server.should_exit = True


__all__ = [
    "TOKEN_HEADER",
    "CatalogBusy",
    "ReviewConfig",
    "Server",
    "bind",
    "create_app",
    "is_loopback",
    "new_token",
    "refuse_waiting",
]
