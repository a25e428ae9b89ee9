"""`tune`: the parameter grid on a catalog, with and without named people."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face, Photo
from photocluster.cli import app
from photocluster.decisions.log import assign_faces
from photocluster.evaluation.tuning import load_tune_data, tune_grid
from photocluster.ingest.scan import scan
from photocluster.people.params import ClusterParams
from tests.fakes import make_photo

runner = CliRunner()


def _library(root: Path) -> None:
    for i in range(6):
        make_photo(root / f"ada{i}.png", [("ada", (20 + i, 20, 60))])
        make_photo(root / f"bob{i}.png", [("bob", (200, 30 + i, 60))])
    make_photo(root / "cyd.png", [("cyd", (100, 100, 60))])


def test_grid_reports_people_unassigned_and_agreement_with_names(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:
    _library(tmp_path / "lib")
    scan(catalog, fake_options(tmp_path / "lib"))
    with catalog.session() as s:
        data = load_tune_data(s, 10_000)
        assert (data.name == "").all()
        rows = tune_grid(data, ClusterParams(pair_distance=0), {"min_cluster_size": [4, 8]})
    assert [r.params["min_cluster_size"] for r in rows] == [4, 8]
    assert rows[0].people == 2 and rows[0].precision is None
    assert rows[1].people == 0 and rows[1].unassigned_share == 1.0  # 6 faces < 8
    with catalog.session() as s:
        ada = [
            f for (f,) in s.execute(select(Face.id).join(Photo).where(Photo.path.contains("ada")))
        ]
        bob = [
            f for (f,) in s.execute(select(Face.id).join(Photo).where(Photo.path.contains("bob")))
        ]
        assign_faces(s, ada, "Ada", actor="test")
        assign_faces(s, bob, "Bob", actor="test")
    with catalog.session() as s:
        data = load_tune_data(s, 10_000)
        rows = tune_grid(data, ClusterParams(pair_distance=0), {"min_cluster_size": [4, 8]})
    good, tiny = rows
    assert good.named_faces == 12
    assert (good.precision, good.recall, good.purity) == (1.0, 1.0, 1.0)
    assert tiny.recall == 0.0 and tiny.purity == 0.0  # everything unassigned


SPREAD = str(ClusterParams().spread_ratio)  # the default, so its row is marked


def test_tune_command_prints_a_table_and_json(tmp_path: Path, db_path: str, fake_options) -> None:
    from photocluster.catalog.db import open_catalog

    _library(tmp_path / "lib")
    cat = open_catalog(db_path)
    scan(cat, fake_options(tmp_path / "lib"))
    cat.close()
    result = runner.invoke(
        app,
        ["tune", "--db", db_path, "--sizes", "2,4", "--samples", "3", "--spreads", SPREAD, "-q"],
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "size",
        "samples",
        "spread",
        "people",
        "unassigned",
        "precision",
        "recall",
        "purity",
    ]
    assert lines[2].startswith("*   4")  # the current default is marked
    result = runner.invoke(
        app,
        [
            "tune",
            "--db",
            db_path,
            "--sizes",
            "4",
            "--samples",
            "3",
            "--spreads",
            SPREAD,
            "--json",
            "-q",
        ],
    )
    data = json.loads(result.stdout)
    assert data["faces"] == 13 and data["rows"][0]["people"] == 2


def test_tune_bad_input_is_a_clear_error(tmp_path: Path, db_path: str, catalog: Catalog) -> None:
    # an empty catalog (a missing one is refused as by every command that reads)
    result = runner.invoke(app, ["tune", "--db", db_path, "--sizes", "two"])
    assert result.exit_code == 1 and "comma-separated numbers" in result.stderr
    result = runner.invoke(app, ["tune", "--db", db_path, "--sizes", "1"])
    assert result.exit_code == 1 and "at least 2" in result.stderr
    result = runner.invoke(app, ["tune", "--db", db_path])
    assert result.exit_code == 1 and "No faces cached yet" in result.stderr
