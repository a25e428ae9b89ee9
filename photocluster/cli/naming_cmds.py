"""`name`, `rename`, `merge`, `reject`, `assign`, `hide`, `unhide`, `undo`, `log`.

`name` wires the terminal to :func:`photocluster.decisions.session.run_naming` through
:class:`TerminalPrompter` (readline completion of existing names, optional system viewer and
inline images). The other commands are one call each into :mod:`photocluster.decisions.log`.
"""

from __future__ import annotations

import base64
import getpass
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from PIL import Image

from photocluster.catalog.models import Decision
from photocluster.cli.app import app
from photocluster.cli.common import DbOption, JsonOption, catalog_for, err, make_settings, out
from photocluster.decisions.contact_sheet import DEFAULT_COUNT, DEFAULT_TILE, number_ranges
from photocluster.decisions.log import (
    NameConflict,
    assign_faces,
    history,
    merge_people,
    reject_faces,
    rename_person,
    set_hidden,
    undo_last,
)
from photocluster.decisions.prompter import FacesItem, QueueItem, Suggestion
from photocluster.decisions.session import (
    NamingOptions,
    NamingSummary,
    QueueStatus,
    is_maybe,
    load_queue,
    queue_status,
    run_naming,
)
from photocluster.errors import PhotoclusterError
from photocluster.people.suggestions import LIKELY
from photocluster.people.unassigned import FaceGroup

LOG_SCHEMA_VERSION = 1
PersonArg = Annotated[str, typer.Argument(help="Person id (as in `photocluster people`) or name.")]


def _actor(command: str) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user} via {command}"


def _done(decision: Decision) -> None:
    out(f"Done: {decision.summary}.")
    err("Undo with `photocluster undo`; see every decision with `photocluster log`.")


# --- inline images ------------------------------------------------------------------------------


def detect_inline_protocol(env: dict[str, str] | os._Environ[str]) -> str | None:
    """kitty or iterm2 when the terminal announces itself, else None."""
    term, program = env.get("TERM", ""), env.get("TERM_PROGRAM", "")
    if env.get("KITTY_WINDOW_ID") or "kitty" in term or program in ("ghostty", "WezTerm"):
        return "kitty"
    if program == "iTerm.app" or env.get("LC_TERMINAL") == "iTerm2":
        return "iterm2"
    return None


def inline_image(path: Path, protocol: str) -> str:
    """Escape codes that draw the image at ``path`` in a kitty or iTerm2 terminal."""
    if protocol == "iterm2":
        data = path.read_bytes()
        b64 = base64.b64encode(data).decode()
        return f"\033]1337;File=inline=1;size={len(data)};preserveAspectRatio=1:{b64}\a\n"
    if protocol != "kitty":
        raise PhotoclusterError(f"Unknown inline image protocol {protocol!r}: use kitty or iterm2.")
    with Image.open(path) as img:  # kitty's graphics protocol takes PNG (f=100)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
    b64 = base64.b64encode(buf.getvalue()).decode()
    chunks = [b64[i : i + 4096] for i in range(0, len(b64), 4096)] or [""]
    parts = []
    for i, chunk in enumerate(chunks):
        more = 1 if i < len(chunks) - 1 else 0
        head = f"a=T,f=100,m={more}" if i == 0 else f"m={more}"
        parts.append(f"\033_G{head};{chunk}\033\\")
    return "".join(parts) + "\n"


def open_in_viewer(path: Path) -> str | None:
    """Open ``path`` with the system viewer without waiting; a problem comes back as text."""
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    exe = shutil.which(opener)
    if exe is None:
        return f"cannot open the sheet: `{opener}` is not installed"
    try:
        subprocess.Popen(
            [exe, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        return f"cannot open the sheet with {opener}: {exc.strerror}"
    return None


# --- the terminal prompter ----------------------------------------------------------------------


class TerminalPrompter:
    """The interactive terminal: prints each person, reads answers with name completion.

    Completion happens on an explicit Tab only (readline binds nothing else to it), offers the
    names that start with what was typed, and is off while a yes/no question is asked; such a
    question is answered no unless the human types y."""

    def __init__(self, *, open_sheet: bool = False, inline: str | None = None) -> None:
        self.open_sheet = open_sheet
        self.inline = inline
        self._names: list[str] = []
        self._readline: Any = None
        try:
            import readline
        except ImportError:  # Windows without pyreadline: answers still work, no completion
            return
        self._readline = readline
        readline.set_completer_delims("")  # complete the whole line: names have spaces
        readline.set_completer(self._complete)
        binding = (
            "bind ^I rl_complete" if "libedit" in (readline.__doc__ or "") else "tab: complete"
        )
        readline.parse_and_bind(binding)

    def _complete(self, text: str, state: int) -> str | None:
        low = text.lower()
        matches = [n for n in self._names if n.lower().startswith(low)]
        return matches[state] if state < len(matches) else None

    def show(self, item: QueueItem | FacesItem) -> None:
        out("")
        if isinstance(item, FacesItem):
            self._show_faces(item)
        else:
            out(
                f"Person {item.person_id}: {item.faces} faces in {item.photos} photos  "
                f"[{item.position}/{item.total} in this session]"
            )
            self._show_sheet(item.sheet.path, item)
        if item.suggestion and isinstance(item, QueueItem):
            how = "y if so, Enter to skip" if is_maybe(item.suggestion) else "Enter to accept"
            out(f"{describe_suggestion(item.suggestion)} — {how}")

    def _show_faces(self, item: FacesItem) -> None:
        g = item.group
        out(
            f"Faces in no person: {item.faces} face{'s' if item.faces != 1 else ''} in "
            f"{item.photos} photo{'s' if item.photos != 1 else ''}  "
            f"[group {item.position}/{item.total}]"
        )
        out(f"  {describe_group(g)}")
        self._show_sheet(item.sheet.path, item)
        if item.group.suggested == "likely":
            out(
                "Enter: each is who its caption says; x 3 7: those are not (they come back "
                "with their next guess); 3 7 = NAME: those are NAME."
            )
        elif item.group.suggested:
            out(
                "y 3 7: those are who their captions say; x 3 7: those are not; Enter leaves "
                "them all in no person."
            )
        elif item.suggestion:
            out(f"Enter: they are {item.suggestion.name}; a name: they are that person.")
        else:
            out("Say who they are (a name, or 3 7 = NAME for some), or s to leave them for now.")

    def _show_sheet(self, path: Path, item: QueueItem | FacesItem) -> None:
        sheet = item.sheet
        out(f"Contact sheet: {path}")
        shown = len(sheet.faces)
        numbers = number_ranges([f.number for f in sheet.faces])
        if sheet.pages > 1:
            tail = [f.number for f in sheet.faces if f.least_typical]
            what = (
                f"the {shown - len(tail)} most typical, then the {len(tail)} least typical "
                f"(orange: {number_ranges(tail)})"
                if sheet.page == 0
                else f"{shown} more, from the least typical inward ({numbers})"
            )
            out(
                f"  page {sheet.page + 1}/{sheet.pages} of {sheet.tiles} tiles: {what}; "
                "+ next page, - previous"
            )
        if sheet.tiles < sheet.total_faces:
            out(
                f"  {sheet.total_faces - sheet.tiles} near duplicate(s) share a tile (marked +N): "
                "an answer about a tile covers them"
            )
        missing = [f for f in sheet.faces if f.problem]
        if missing:
            err(f"  {len(missing)} photo(s) could not be read, e.g. {missing[0].problem}")
        if self.inline:
            sys.stdout.write(inline_image(path, self.inline))
            sys.stdout.flush()
        if self.open_sheet:
            problem = open_in_viewer(path)
            if problem:
                err(f"  {problem}")
                self.open_sheet = False

    def ask(self, prompt: str, names: Sequence[str]) -> str:
        self._names = list(names)
        return input(prompt)

    def confirm(self, question: str) -> bool:
        self._names = []  # no completion in a yes/no answer
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    def say(self, text: str) -> None:
        out(text)


def describe_suggestion(s: Suggestion) -> str:
    """The name offered for an unnamed person: with the chance it is them (a small person,
    scored as `suggestions` scores it), else with the distance the merge step's test measured."""
    if s.chance is None:
        return f"Looks like {s.name} (distance {s.distance:.2f})"
    who = "Looks like" if s.chance >= LIKELY else "May be"
    return f"{who} {s.name} (chance {round(100 * s.chance)} %)"


def describe_group(g: FaceGroup) -> str:
    """Who a group of faces in no person probably is, and `find`'s evidence, in one line."""
    if g.suggested:
        who = "probably is" if g.suggested == "likely" else "may be (less likely)"
        return (
            f"Under each face: who it {who} and the chance (its score, measured on your own names)."
        )
    e = g.evidence()
    if e is None:
        return "Probably nobody you named: nobody in the catalog looks like them."
    if e.limit is None:
        spread = f"{g.label} has one face, so no spread to compare with"
    else:
        side = "inside" if e.distance <= e.limit else "outside"
        spread = f"{side} their own spread ({e.limit:.2f})"
    facts = (
        f"{e.distance:.2f} from their mean face, {spread}; "
        f"{e.near_faces} of the {e.of} nearest faces are theirs"
    )
    if g.likely:
        if g.score is not None:
            return (
                f"Looks like {g.label}: score {g.score:.2f}, the chance it is them, measured on "
                f"your own names; {facts}."
            )
        sure = "known" if e.known and not e.probably else "probably"
        return f"Looks like {g.label} ({sure}): {facts}."
    return f"Probably nobody you named. Nearest: {g.label}, {facts}."


def _print_summary(s: NamingSummary, remaining: int, faces_left: int) -> None:
    out("")
    out(
        f"Named {s.named}, merged {s.merged}, hidden {s.hidden}, skipped {s.skipped}, "
        f"faces rejected {s.rejected_faces}, faces assigned {s.faces_assigned}, "
        f"faces skipped {s.faces_skipped}, undone {s.undone}."
    )
    if remaining:
        out(f"{remaining} people still to name: run `photocluster name` again to continue.")
    elif s.queued:
        out("Everyone in the queue is named or hidden.")
    if faces_left:
        out(
            f"{faces_left} face(s) in no person: `photocluster name` shows them after the "
            "people; `photocluster show unassigned` lists them."
        )
    if s.unclustered:
        out(
            f"{s.unclustered} face(s) are not clustered yet: run `photocluster cluster` to "
            "place them."
        )


def nothing_to_name(status: QueueStatus, min_faces: int) -> str:
    """Why `name` had nobody and no face to show, and what to do about it."""
    if status.photos == 0:
        return "The catalog has no photos yet: run `photocluster scan DIR` first."
    if status.faces == 0:
        return (
            f"No faces were found in the {status.photos} scanned photo(s), so there is nobody to "
            "name. Scan a folder with people in it: `photocluster scan DIR`."
        )
    if status.unclustered_faces == status.faces:
        return (
            f"The {status.faces} face(s) are not grouped into people yet: run "
            "`photocluster cluster`, then `photocluster name`."
        )
    parts = [
        f"{status.named} of {status.people} people named" if status.people else "no people yet",
        f"{status.hidden} hidden" if status.hidden else "",
        (
            f"{status.below_min_faces} unnamed with fewer than {min_faces} faces "
            "(lower --min-faces to see them)"
            if status.below_min_faces
            else ""
        ),
        f"{status.unassigned_faces} face(s) in no person" if status.unassigned_faces else "",
        (
            f"{status.unclustered_faces} face(s) not clustered yet (run `photocluster cluster`)"
            if status.unclustered_faces
            else ""
        ),
    ]
    return "Nobody to name: " + "; ".join(p for p in parts if p) + "."


def _inline_protocol(asked: str) -> str | None:
    """The inline image protocol for --inline: the one asked for, or the terminal's (None, said
    on stderr, when the terminal does not say it can show images)."""
    protocol = detect_inline_protocol(os.environ) if asked == "auto" else asked
    if protocol in ("kitty", "iterm2"):
        return protocol
    if asked != "auto":
        raise PhotoclusterError(f"Unknown inline image protocol {asked!r}: use kitty or iterm2.")
    err("This terminal does not say it can show images; printing sheet paths instead.")
    err("(Force it with --inline-protocol kitty or --inline-protocol iterm2.)")
    return None


@app.command("name")
def name_command(
    db: DbOption = None,
    min_faces: Annotated[
        int, typer.Option("--min-faces", help="Only people with at least this many faces.", min=1)
    ] = 1,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Show this person (id or name) first.", show_default=False),
    ] = None,
    count: Annotated[
        int, typer.Option("--count", help="Faces on each contact sheet.", min=1, max=400)
    ] = DEFAULT_COUNT,
    tile: Annotated[
        int, typer.Option("--tile", help="Pixels per face on the sheet.", min=32, max=512)
    ] = DEFAULT_TILE,
    open_sheet: Annotated[
        bool, typer.Option("--open", help="Open each contact sheet with the system viewer.")
    ] = False,
    inline: Annotated[
        bool,
        typer.Option("--inline", help="Show each sheet in the terminal (kitty or iTerm2)."),
    ] = False,
    inline_protocol: Annotated[
        str,
        typer.Option(help="Inline image protocol: auto, kitty or iterm2."),
    ] = "auto",
    unassigned: Annotated[
        bool | None,
        typer.Option(
            "--unassigned/--no-unassigned",
            help="After the people, show the faces in no person (one-photo guests, rejected "
            "faces), grouped by the person they look most like. Default: yes, unless "
            "--min-faces is above 1.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Name people one by one: a contact sheet of their faces, a suggestion, your answer.

    Unnamed, not-hidden people come largest first; then the faces in no person, grouped by the
    person each looks most like (or "probably nobody you named"). Answer with a name (an
    existing name merges into that person, or puts the faces there, after a question whose
    default is no), 3 7 = NAME (those faces are NAME), Enter (accept the suggestion, else skip),
    s (skip), i (ignore: hide), x 3 7 12 (those faces are not this person), + / - (next or
    previous page of faces), u (undo), ? (help) or q (quit). Names match whatever their case
    and spacing. Tab completes existing names. Every answer is saved at once; q or Ctrl-C keeps
    them all.

    Example: photocluster name --min-faces 3 --open
    """
    settings = make_settings(db)
    protocol = _inline_protocol(inline_protocol) if inline else None
    prompter = TerminalPrompter(open_sheet=open_sheet, inline=protocol)
    options = NamingOptions(
        min_faces=min_faces,
        start=start,
        count=count,
        tile=tile,
        actor=_actor("name"),
        unassigned=min_faces == 1 if unassigned is None else unassigned,
    )
    with catalog_for(settings, write=True) as catalog:
        summary = run_naming(catalog, prompter, settings.cache_dir, options)
        if summary.shown == 0 and not summary.interrupted:
            assert summary.status is not None
            out(nothing_to_name(summary.status, min_faces))
            return
        with catalog.session() as s:
            remaining = len(load_queue(s, min_faces=min_faces))
            faces_left = queue_status(s, min_faces).unassigned_faces
    _print_summary(summary, remaining, faces_left)
    if summary.interrupted:
        raise typer.Exit(130)


# --- non-interactive commands ------------------------------------------------------------------


@app.command("rename")
def rename_command(
    person: PersonArg,
    name: Annotated[str, typer.Argument(help="The new name.")],
    db: DbOption = None,
) -> None:
    """Give a person a name (and confirm all its faces, so clustering keeps them together).

    Example: photocluster rename 7 "Ada Lovelace"
    """
    settings = make_settings(db)
    with catalog_for(settings, write=True) as catalog, catalog.session() as s:
        decision = rename_person(s, person, name, actor=_actor("rename"))
    _done(decision)


def _choose_name(conflict: NameConflict) -> str:
    if not sys.stdin.isatty():
        raise conflict
    err(str(conflict).split(" Say which")[0])
    for i, n in enumerate(conflict.names, start=1):
        err(f"  {i}. {n}")
    choice = typer.prompt("Which name does the merged person keep? (number)", type=int)
    if not 1 <= choice <= len(conflict.names):
        raise PhotoclusterError(f"Choose a number from 1 to {len(conflict.names)}.")
    return conflict.names[choice - 1]


@app.command("merge")
def merge_command(
    people: Annotated[list[str], typer.Argument(help="People (ids or names) to merge away.")],
    into: Annotated[str, typer.Option("--into", help="The person who stays (id or name).")],
    name: Annotated[
        str | None,
        typer.Option("--name", help="Name of the merged person (needed when several have names)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Merge people into one: their faces (and rejections) move to --into, then they are deleted.

    When more than one of them is named, --name says which name wins (asked when interactive).

    Example: photocluster merge 12 15 --into "Ada Lovelace"
    """
    settings = make_settings(db)
    with catalog_for(settings, write=True) as catalog:
        try:
            with catalog.session() as s:
                decision = merge_people(s, people, into, name=name, actor=_actor("merge"))
        except NameConflict as conflict:
            chosen = _choose_name(conflict)
            with catalog.session() as s:
                decision = merge_people(s, people, into, name=chosen, actor=_actor("merge"))
    _done(decision)


@app.command("reject")
def reject_command(
    faces: Annotated[list[int], typer.Argument(help="Face ids (see `photocluster show PERSON`).")],
    from_person: Annotated[
        str | None,
        typer.Option("--from", help="The person they are not (default: the one they are in)."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Say faces are not a person: they leave it, and clustering never puts them back.

    Example: photocluster reject 301 302 --from "Ada Lovelace"
    """
    settings = make_settings(db)
    with catalog_for(settings, write=True) as catalog, catalog.session() as s:
        decision = reject_faces(s, faces, person=from_person, actor=_actor("reject"))
    _done(decision)


@app.command("assign")
def assign_command(
    faces: Annotated[list[int], typer.Argument(help="Face ids (see `photocluster show PERSON`).")],
    to: Annotated[str, typer.Option("--to", help="Person id or name (a new name creates them).")],
    create: Annotated[
        bool, typer.Option("--create/--no-create", help="Create the person if the name is new.")
    ] = True,
    db: DbOption = None,
) -> None:
    """Put faces into a person and confirm them; clustering will never move them.

    Example: photocluster assign 301 302 --to "Grace Hopper"
    """
    settings = make_settings(db)
    with catalog_for(settings, write=True) as catalog, catalog.session() as s:
        decision = assign_faces(s, faces, to, create=create, actor=_actor("assign"))
    _done(decision)


@app.command("hide")
def hide_command(person: PersonArg, db: DbOption = None) -> None:
    """Hide a person (strangers, statues, posters): out of the naming queue and listings.

    Example: photocluster hide 42
    """
    settings = make_settings(db)
    with catalog_for(settings, write=True) as catalog, catalog.session() as s:
        decision = set_hidden(s, person, True, actor=_actor("hide"))
    _done(decision)


@app.command("unhide")
def unhide_command(person: PersonArg, db: DbOption = None) -> None:
    """Show a hidden person again.

    Example: photocluster unhide 42
    """
    settings = make_settings(db)
    with catalog_for(settings, write=True) as catalog, catalog.session() as s:
        decision = set_hidden(s, person, False, actor=_actor("unhide"))
    _done(decision)


@app.command("undo")
def undo_command(db: DbOption = None) -> None:
    """Undo the newest naming decision not undone yet (from any session), restoring its rows.

    Run it again to go further back.

    Example: photocluster undo
    """
    settings = make_settings(db)
    with catalog_for(settings, write=True) as catalog, catalog.session() as s:
        decision = undo_last(s)
    out(f"Undone: {decision.summary} (decision {decision.id}, {decision.actor}).")


@app.command("log")
def log_command(
    db: DbOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Newest N decisions (0 = all).")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show naming decisions, newest first: when, who, what, and whether it was undone.

    JSON (--json): {"version": 1, "decisions": [{"id", "created_at", "actor", "action",
    "summary", "undone_at"}]} with times in ISO 8601 (UTC).

    Example: photocluster log -n 50
    """
    settings = make_settings(db)
    with catalog_for(settings) as catalog, catalog.session() as s:
        entries = history(s, limit=limit or None)
    if as_json:
        rows = [
            {
                "id": e.id,
                "created_at": e.created_at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "summary": e.summary,
                "undone_at": e.undone_at.isoformat() if e.undone_at else None,
            }
            for e in entries
        ]
        out(json.dumps({"version": LOG_SCHEMA_VERSION, "decisions": rows}, indent=2))
        return
    if not entries:
        err("No naming decisions yet: run `photocluster name`.")
        return
    for e in entries:
        undone = f"  [undone {e.undone_at:%Y-%m-%d %H:%M}]" if e.undone_at else ""
        out(f"{e.id:>5}  {e.created_at:%Y-%m-%d %H:%M:%S}  {e.actor:<24} {e.summary}{undone}")
