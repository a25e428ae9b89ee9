"""The JSON report: content, and validation against the shipped schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Person
from photocluster.cli import app
from photocluster.export.report import SCHEMA, build_report, report_schema
from photocluster.ingest.scan import scan
from photocluster.people.assign import ClusterOptions, cluster_catalog
from tests.fakes import make_photo


@pytest.fixture
def report(tmp_path: Path, catalog: Catalog, fake_options) -> dict:  # type: ignore[no-untyped-def]
    root = tmp_path / "p"
    for k in range(4):
        make_photo(root / f"ada{k}.png", [("ada", (10 + 5 * k, 10, 40))])
    make_photo(root / "group.png", [("ada", (10, 10, 40)), ("bob", (200, 100, 50))])
    make_photo(root / "empty.png", [])
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    scan(catalog, fake_options(root))
    cluster_catalog(catalog, ClusterOptions())
    with catalog.session() as s:
        s.execute(update(Person).values(name="Ada"))
        return build_report(s)


def test_report_validates_and_counts_add_up(report: dict) -> None:
    jsonschema.validate(report, report_schema())
    c = report["counts"]
    assert report["schema"] == SCHEMA
    assert c == {
        "photos": 7,
        "photos_failed": 1,
        "faces": 6,
        "people": 1,
        "named_people": 1,
        "hidden_people": 0,
        "unassigned_faces": 1,
    }
    (ada,) = report["people"]
    assert ada["name"] == "Ada" and ada["face_count"] == ada["photo_count"] == 5
    bob = report["unassigned"][0]
    assert bob["photo"].endswith("group.png")
    assert bob["box"] == {"left": 200, "top": 100, "right": 250, "bottom": 150}
    status = {Path(p["path"]).name: p["status"] for p in report["photos"]}
    assert status["empty.png"] == "no_faces" and status["broken.jpg"] == "failed"


def test_schema_rejects_a_broken_report(report: dict) -> None:
    bad = json.loads(json.dumps(report))
    bad["people"][0]["faces"][0]["box"].pop("left")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, report_schema())
    bad = dict(report, schema="photocluster.report/0")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, report_schema())


def test_cli_report_to_stdout_and_file(report: dict, db_path: str, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["report", "--db", db_path])
    assert r.exit_code == 0
    jsonschema.validate(json.loads(r.stdout), report_schema())
    target = tmp_path / "out" / "report.json"
    r = runner.invoke(app, ["report", "--db", db_path, "--output", str(target)])
    assert r.exit_code == 0 and r.stdout == ""
    assert json.loads(target.read_text())["counts"]["faces"] == 6


def test_hidden_and_empty_people_are_not_counted_as_people(
    report: dict, catalog: Catalog, db_path: str
) -> None:
    """Version 2: people are people with faces, not hidden; a person whose faces all left is
    not listed at all (version 1 counted both)."""
    from datetime import datetime

    from photocluster.catalog.models import Face

    with catalog.session() as s:
        ada = s.scalars(select(Person.id)).one()
        empty = Person(name=None, hidden=False, created_at=datetime(2024, 1, 1))
        stranger = Person(name=None, hidden=True, created_at=datetime(2024, 1, 1))
        s.add_all([empty, stranger])
        s.flush()
        bob = s.scalars(select(Face).where(Face.person_id.is_(None))).one()
        bob.person_id = stranger.id
        empty_id = empty.id
    with catalog.session() as s:
        again = build_report(s)
    jsonschema.validate(again, report_schema())
    c = again["counts"]
    assert (c["people"], c["named_people"], c["hidden_people"]) == (1, 1, 1)
    assert [p["id"] for p in again["people"]] == [ada, stranger.id]
    assert empty_id not in {p["id"] for p in again["people"]}
    r = CliRunner().invoke(
        app, ["report", "--db", db_path, "--output", str(Path(db_path).parent / "r.json")]
    )
    assert r.exit_code == 0 and "(1 person, 1 hidden, 6 faces)" in r.stderr
