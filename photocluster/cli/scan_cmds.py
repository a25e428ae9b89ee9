"""`scan` and `status`: fill the catalog from a folder and summarise it."""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Annotated

import typer

from photocluster.catalog.status import (
    catalog_status,
    failed_photos,
    session_rows,
    sqlite_file_status,
)
from photocluster.cli.app import app
from photocluster.cli.common import (
    DbOption,
    JsonOption,
    QuietOption,
    TqdmProgress,
    catalog_for,
    count,
    encoder_factory,
    err,
    make_settings,
    out,
)
from photocluster.errors import PhotoclusterError
from photocluster.ingest.encoder import EncoderParams
from photocluster.settings import demo_db, is_sample_library

if TYPE_CHECKING:  # imported where used: `status` starts without the scanning machinery
    from photocluster.index.store import SyncReport
    from photocluster.ingest.scan import ScanOptions, ScanSummary
    from photocluster.people.assign import ClusterChanges

SMALL_FACES_DETECT_SIZE = 2400
ENV_SCHEDULER = "PHOTOCLUSTER_SCHEDULER"
ENV_ENCODER = "PHOTOCLUSTER_ENCODER"
ENCODERS = ("auto", "onnx", "dlib")  # onnx_encoder.BACKENDS, without importing it for dlib


def _clustered_dict(c: ClusterChanges | None) -> dict[str, object] | None:
    if c is None:
        return None
    return {
        "joined_existing_people": c.matched_to_existing,
        "people_created": len(c.people_created),
        "unassigned_faces": c.unassigned_faces,
        # the learned projection new faces were placed with (`learn`), null: the raw embedding
        "placed_with": c.placed_with,
    }


def _summary_dict(s: ScanSummary, clustered: ClusterChanges | None) -> dict[str, object]:
    return {
        "root": s.root,
        "seen": s.seen,
        "new": s.new,
        "changed": s.changed,
        "moved": s.moved,
        "unchanged": s.unchanged,
        "removed": s.removed,
        "failed": s.failed_total,
        "failed_by_reason": dict(s.failed),
        "failed_earlier": s.failed_earlier,
        "faces_found": s.faces_found,
        "no_faces": s.no_faces,
        "skipped_files": s.walk.skipped_files,
        "skipped_by_extension": dict(s.walk.skipped_by_extension),
        "sidecars": s.walk.sidecars,
        "unreadable_folders": [{"path": p, "reason": r} for p, r in s.walk.unreadable_dirs],
        "warnings": s.warnings,
        "seconds": round(s.seconds, 3),
        "clustered": _clustered_dict(clustered),
    }


def _print_summary(s: ScanSummary, clustered: ClusterChanges | None) -> None:
    out(f"Scanned {s.root} in {s.seconds:.1f} s")
    out(
        f"  photos seen {s.seen}: new {s.new}, changed {s.changed}, moved {s.moved}, "
        f"unchanged {s.unchanged}, removed from catalog {s.removed}"
    )
    read = s.new + s.changed - s.failed_total
    out(
        f"  faces found: {s.faces_found}"
        + (f" (photos without a face: {s.no_faces} of {read} read)" if read > 0 else "")
    )
    if s.failed:
        out(f"  failed: {s.failed_total}")
        for reason, n in s.failed.most_common():
            out(f"    {n:>5}  {reason}")
        out("  (see `photocluster status --failed` for each file)")
    else:
        out("  failed: 0")
    if s.failed_earlier:
        out(
            f"  still failed from earlier runs (unchanged, not retried): {s.failed_earlier} "
            "(`--retry-failed` tries them again)"
        )
    if s.walk.skipped_files:
        kinds = ", ".join(f"{ext} {n}" for ext, n in s.walk.skipped_by_extension.most_common(6))
        out(f"  other files skipped: {s.walk.skipped_files} ({kinds})")
    if s.walk.sidecars:
        out(f"  XMP sidecars (not photos; `photocluster import-xmp` reads them): {s.walk.sidecars}")
    if clustered is not None:
        c = clustered
        out(
            f"  clustered: {count(c.matched_to_existing, 'new face')} joined existing people, "
            f"{count(len(c.people_created), 'person', 'people')} created, "
            f"{count(c.unassigned_faces, 'face')} unassigned"
            + (f" (placed as learned from your names: {c.placed_with})" if c.placed_with else "")
        )
    for folder, reason in s.walk.unreadable_dirs:
        err(f"warning: could not read folder {folder}: {reason}")
    for warning in s.warnings:
        err(f"warning: {warning}")


# `scan`'s options
_ENCODER_PARAMS_DEFAULTS = EncoderParams()
_ScanJobs = Annotated[
    int, typer.Option("--jobs", "-j", help="Worker processes (0 = every core).", min=0)
]
_ScanDetector = Annotated[
    str, typer.Option(help="Face detector: hog (fast, default) or cnn (~30x slower on CPU).")
]
_ScanDetectSize = Annotated[
    int,
    typer.Option(
        help="Long side (px) of the view the detector scans. With --upsample 1 the smallest "
        "face found is ~80/2 px in that view: ~112 px on a 12-MP photo at 1440.",
        min=160,
    ),
]
_ScanUpsample = Annotated[
    int,
    typer.Option(help="Detector upsampling steps (each finds 2x smaller faces).", min=0, max=3),
]
_ScanSmallFaces = Annotated[
    bool,
    typer.Option(
        "--small-faces",
        help=f"Also find faces down to ~67 px on a 12-MP photo (detect size "
        f"{SMALL_FACES_DETECT_SIZE}; measured 2.8x the decode+detect time).",
    ),
]
_ScanIncludeHidden = Annotated[
    bool, typer.Option("--include-hidden", help="Also scan hidden files and folders.")
]
_ScanRetryFailed = Annotated[
    bool, typer.Option("--retry-failed", help="Try failed photos again even if unchanged.")
]
_ScanBatchSize = Annotated[
    int, typer.Option(help="Photos written per transaction (a crash loses at most one).", min=1)
]
_ScanExecutor = Annotated[
    str,
    typer.Option(
        "--executor",
        help="Where photos are analysed: local (worker processes on this machine) or dask "
        "(a Dask cluster, see --scheduler; workers must see FOLDER at the same path).",
    ),
]
_ScanScheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help=f"Dask scheduler address for --executor dask, e.g. tcp://HOST:8786. "
        f"Default: ${ENV_SCHEDULER}.",
        envvar=ENV_SCHEDULER,
        show_default=False,
    ),
]
_ScanEncoder = Annotated[
    str,
    typer.Option(
        "--encoder",
        help="Face descriptor code: auto (dlib's network through ONNX Runtime, converted "
        "once and checked against dlib; dlib if that fails), onnx (the same) or dlib. "
        "The numbers are the same either way.",
        envvar=ENV_ENCODER,
    ),
]
_ScanNoCluster = Annotated[
    bool,
    typer.Option(
        "--no-cluster",
        help="Do not place new faces into people afterwards (see `photocluster cluster`).",
    ),
]


@app.command("scan")
def scan_command(
    folder: Annotated[str, typer.Argument(help="Folder of photos to scan (recursively).")],
    db: DbOption = None,
    jobs: _ScanJobs = 0,
    detector: _ScanDetector = "hog",
    detect_size: _ScanDetectSize = _ENCODER_PARAMS_DEFAULTS.detect_size,
    upsample: _ScanUpsample = _ENCODER_PARAMS_DEFAULTS.upsample,
    small_faces: _ScanSmallFaces = False,
    include_hidden: _ScanIncludeHidden = False,
    retry_failed: _ScanRetryFailed = False,
    batch_size: _ScanBatchSize = 32,
    executor: _ScanExecutor = "local",
    scheduler: _ScanScheduler = None,
    encoder: _ScanEncoder = "auto",
    no_cluster: _ScanNoCluster = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Find and encode every face under FOLDER, caching results in the catalog.

    Re-runs skip unchanged files, follow moved ones by content hash, re-read changed ones and
    drop deleted ones. Ctrl-C keeps finished photos; run the same command again to continue.

    With --executor dask the photos are analysed on a Dask cluster; this process still writes
    the catalog, so interrupting and re-running behave exactly as for a local scan.

    The bundled sample photos (sample_data/), scanned without --db or PHOTOCLUSTER_DB, go into
    a demo catalog of their own (demo.sqlite3 beside the default catalog), never yours.

    Example: photocluster scan ~/Pictures --jobs 2
    """
    # imported when this command runs: the module's other commands start without it
    from photocluster.ingest.dask import DaskCluster
    from photocluster.usecases import scan_library

    demo = db is None and is_sample_library(folder)
    settings = make_settings(demo_db() if demo else db, quiet)
    params = _encoder_params(detector, detect_size, upsample, small_faces)
    _check_backends(encoder, executor, scheduler)
    options = _scan_options(folder, params, jobs, batch_size, include_hidden, retry_failed)
    with contextlib.ExitStack() as stack:
        if executor == "dask":
            assert scheduler is not None
            # Connect first: an unreachable scheduler must fail before the catalog changes.
            cluster = stack.enter_context(DaskCluster(scheduler))
            options.executor_factory = cluster.executor_factory
            if not settings.quiet:
                err(f"Dask scheduler {scheduler}: {cluster.describe()}")
        if demo:
            err(
                f"{folder} holds photocluster's sample photos: they go into a demo catalog of "
                f"their own, {settings.db} (your catalog is not touched)."
            )
        catalog = stack.enter_context(catalog_for(settings, create=True, write=True, verify=True))
        options.encoder_factory, descriptor = encoder_factory(encoder, executor, settings.quiet)
        result = scan_library(
            catalog,
            options,
            settings.cache_dir,
            cluster=not no_cluster,
            progress=TqdmProgress(settings.quiet),
        )
        for note in result.notes:
            err(f"note: {note}")
        _say_index(result.index, settings.quiet)
        summary, clustered = result.scan, result.clustered
    if as_json:
        out(json.dumps({**_summary_dict(summary, clustered), "descriptor": descriptor}, indent=2))
    else:
        _print_summary(summary, clustered)
    if demo:
        # Said the way this command was typed: under `uv run`, `photocluster` is not on PATH.
        prog = "uv run photocluster" if os.environ.get("UV_RUN_RECURSION_DEPTH") else "photocluster"
        err(
            f"Look at the demo with --db: `{prog} people --db {settings.db}`, then "
            f"`{prog} name --db {settings.db}`."
        )


def _encoder_params(
    detector: str, detect_size: int, upsample: int, small_faces: bool
) -> EncoderParams:
    """The face finder's settings (the cache key), or the reason they cannot be used."""
    try:
        return EncoderParams(
            detector=detector,
            detect_size=SMALL_FACES_DETECT_SIZE if small_faces else detect_size,
            upsample=upsample,
        )
    except ValueError as exc:
        raise PhotoclusterError(str(exc)) from exc


def _check_backends(encoder: str, executor: str, scheduler: str | None) -> None:
    """Refuse an unknown encoder or executor, and Dask without a scheduler."""
    if encoder not in ENCODERS:
        raise PhotoclusterError(f"unknown encoder {encoder!r} (choose {', '.join(ENCODERS)})")
    if executor not in ("local", "dask"):
        raise PhotoclusterError(f"unknown executor {executor!r} (choose local or dask)")
    if executor == "dask" and not scheduler:
        raise PhotoclusterError(
            f"--executor dask needs --scheduler ADDRESS (or {ENV_SCHEDULER}), e.g. tcp://HOST:8786."
        )


def _scan_options(
    folder: str,
    params: EncoderParams,
    jobs: int,
    batch_size: int,
    include_hidden: bool,
    retry_failed: bool,
) -> ScanOptions:
    # imported when `scan` runs: the module's other commands start without it
    from photocluster.ingest.scan import ScanOptions

    return ScanOptions(
        root=folder,
        params=params,
        jobs=jobs,
        batch_size=batch_size,
        include_hidden=include_hidden,
        retry_failed=retry_failed,
    )


def _say_index(report: SyncReport | None, quiet: bool) -> None:
    """One line when the face index changed (a failure to update it is among the notes)."""
    if report is None or report.not_saved or quiet:
        return
    if report.rebuilt or report.added or report.removed:
        graph = " and an HNSW graph for clustering" if report.kind == "hnsw" else ""
        err(f"Face index: {report.faces} faces{graph}.")


@app.command("status")
def status_command(
    db: DbOption = None,
    failed: Annotated[bool, typer.Option("--failed", help="List failed photos with reasons.")] = (
        False
    ),
    as_json: JsonOption = False,
) -> None:
    """Summarise the catalog: photos by status, faces, people, encoder settings.

    Example: photocluster status --failed
    """
    settings = make_settings(db)
    # An up-to-date SQLite catalog file is summarised with sqlite3 alone (start-up time: no
    # SQLAlchemy); anything else is opened as every command opens it.
    status = None if failed else sqlite_file_status(settings.db)
    if status is None:
        with catalog_for(settings) as catalog, catalog.session() as session:
            if failed:
                _print_failed(failed_photos(session), as_json)
                return
            status = catalog_status(session_rows(session))
        status["catalog"] = catalog.url
    if as_json:
        out(json.dumps(status, indent=2, default=str))
        return
    out(f"Catalog: {status['catalog']}")
    out(
        f"Photos: {status['photos']} (with faces {status['photos_ok']}, no faces "
        f"{status['photos_no_faces']}, failed {status['photos_failed']})"
    )
    out(
        f"Faces: {status['faces']} (in people {status['assigned_faces']}, "
        f"unassigned {status['unassigned_faces']})"
    )
    out(
        f"People: {status['people']} (named {status['named_people']}, hidden "
        f"{status['hidden_people']})"
    )
    for key, n in status["encoders"].items():
        out(f"Encoder settings: {key} ({n} photos)")
    if status["photos"] == 0:
        out("The catalog is empty: run `photocluster scan DIR` first.")


def _print_failed(rows: list[tuple[str, str]], as_json: bool) -> None:
    """`status --failed`: each failed photo with its reason."""
    if as_json:
        out(json.dumps([{"path": p, "error": e} for p, e in rows], indent=2))
        return
    if not rows:
        out("No failed photos.")
    for path, error in rows:
        out(f"{path}\t{error}")
