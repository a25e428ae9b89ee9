"""`photocluster name` in a real terminal: tmux types the answers, the screen and catalog are read.

The catalog is built in-process with the fake encoder; the real CLI (``python -m photocluster``)
then runs inside a detached tmux session on its own socket. Waits poll the screen with a generous
deadline (they are waits, not speed assertions).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face, Person, Rejection
from photocluster.ingest.scan import scan
from tests.test_naming import COLUMN, build_library, faces_of, make_person

pytestmark = [
    pytest.mark.skipif(
        shutil.which("tmux") is None, reason="tmux is not installed (CI installs it in .ci/run)"
    ),
    pytest.mark.slow,  # a real terminal session per test
]

WAIT_SECONDS = 60


class Tmux:
    def __init__(self, socket: str, session: str) -> None:
        self.socket = socket
        self.session = session

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        )
        return done.stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-J", "-S", "-2000", "-t", self.session)

    def wait_for(self, text: str, times: int = 1) -> str:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            screen = self.screen()
            if screen.count(text) >= times:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {text!r} x{times} on the screen:\n{screen}")
            time.sleep(0.1)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux(f"pc-test-{uuid.uuid4().hex[:8]}", "naming")
    try:
        yield t
    finally:
        subprocess.run(["tmux", "-L", t.socket, "kill-server"], capture_output=True)


def test_name_in_a_real_terminal(
    tmp_path: Path, catalog: Catalog, db_path: str, fake_options, tmux: Tmux
) -> None:  # type: ignore[no-untyped-def]
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 5, "bob": 4, "cyd": 3})))
    ada = make_person(catalog, faces_of(catalog, "ada"))
    cyd = make_person(catalog, faces_of(catalog, "cyd"))
    bob = faces_of(catalog, "bob")
    named_bob = make_person(catalog, bob[:2], name="Bob")
    rest_of_bob = make_person(catalog, bob[2:])
    # Queue: ada (5 faces), cyd (3), the rest of bob (2; suggested: Bob).

    command = " ".join(
        [
            shlex.quote(sys.executable),
            "-m",
            "photocluster",
            "name",
            "--db",
            shlex.quote(db_path),
        ]
    )
    shell = f"{command}; echo EXIT:$?; sleep 600"
    tmux.run("new-session", "-d", "-s", tmux.session, "-x", "160", "-y", "50", shell)

    prompt = "Name (Enter = "
    tmux.wait_for("[1/3] " + prompt)
    tmux.keys("Ada Lovelace", literal=True)
    tmux.keys("Enter")
    screen = tmux.wait_for("[2/3] " + prompt)
    assert "Named Ada Lovelace." in screen
    assert f"Person {cyd}: 3 faces in 3 photos" in screen
    # Tab (and only Tab) completes an existing name; the merge it leads to is asked about, and
    # Enter there says no.
    tmux.keys("ada l", literal=True)
    tmux.keys("Tab")
    tmux.wait_for("? = help): Ada Lovelace")  # readline replaced "ada l" with the full name
    tmux.keys("Enter")
    screen = tmux.wait_for("Merge this person into them? [y/N]")
    assert "Ada Lovelace already exists (5 faces)" in screen
    tmux.keys("Enter")
    tmux.wait_for("[2/3] " + prompt, times=2)
    tmux.keys("x 1", literal=True)
    tmux.keys("Enter")
    screen = tmux.wait_for("[2/3] " + prompt, times=3)
    assert "Removed 1 face(s) from this person." in screen
    assert f"Person {cyd}: 2 faces in 2 photos" in screen
    tmux.keys("?", "Enter")
    tmux.wait_for("x 3 7 12   faces 3, 7 and 12 are not this person")
    tmux.keys("i", "Enter")
    screen = tmux.wait_for("[3/3] Name (Enter = accept Bob")
    # Ada and Bob named: enough names to score, so this small person is offered with the chance
    assert "Looks like Bob (chance " in screen
    tmux.keys("Enter")
    # Then the faces in no person: cyd's rejected face, probably nobody you named.
    screen = tmux.wait_for("[faces 1/1] Who is this? (Enter = skip, ? = help): ")
    assert "Faces in no person: 1 face in 1 photo" in screen
    assert "Probably nobody you named. Nearest: " in screen
    assert "unassigned-" in screen.split("Faces in no person")[1]  # its contact sheet
    tmux.keys("s", "Enter")
    screen = tmux.wait_for("EXIT:")
    assert "EXIT:0" in screen
    assert (
        "Named 1, merged 1, hidden 1, skipped 0, faces rejected 1, faces assigned 0, "
        "faces skipped 1, undone 0." in screen
    )
    assert "Everyone in the queue is named or hidden." in screen
    assert "1 face(s) in no person: `photocluster name` shows them after the people" in screen

    with catalog.session() as s:
        people = {p.id: (p.name, p.hidden) for p in s.scalars(select(Person))}
        rejections = s.scalar(select(func.count()).select_from(Rejection))
        bob_owners = set(s.scalars(select(Face.person_id).where(Face.left == COLUMN["bob"])))
    assert people[ada] == ("Ada Lovelace", False)
    assert people[cyd] == (None, True)
    assert rest_of_bob not in people and bob_owners == {named_bob}
    assert rejections == 1


def test_ctrl_c_at_the_prompt_keeps_decisions(
    tmp_path: Path, catalog: Catalog, db_path: str, fake_options, tmux: Tmux
) -> None:  # type: ignore[no-untyped-def]
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 4, "bob": 3})))
    ada = make_person(catalog, faces_of(catalog, "ada"))
    bob = make_person(catalog, faces_of(catalog, "bob"))
    shell = f"{shlex.quote(sys.executable)} -m photocluster name --db {shlex.quote(db_path)}"
    tmux.run(
        "new-session",
        "-d",
        "-s",
        tmux.session,
        "-x",
        "160",
        "-y",
        "50",
        shell + "; echo EXIT:$?; sleep 600",
    )
    tmux.wait_for("[1/2] Name")
    tmux.keys("Ada", literal=True)
    tmux.keys("Enter")
    tmux.wait_for("[2/2] Name")
    tmux.keys("Bo", literal=True)  # half-typed answer, then Ctrl-C
    tmux.keys("C-c")
    screen = tmux.wait_for("EXIT:")
    assert "EXIT:130" in screen
    assert "Named 1" in screen
    with catalog.session() as s:
        assert s.get(Person, ada).name == "Ada"  # type: ignore[union-attr]
        assert s.get(Person, bob).name is None  # type: ignore[union-attr]
