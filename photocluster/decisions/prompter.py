"""The human side of the name queue: what is shown (a person, a group of faces in no person, a
suggestion), the Prompter that answers (the terminal in the CLI, a scripted list in tests), and
what an answer means."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from photocluster.decisions.contact_sheet import ContactSheet
from photocluster.errors import PhotoclusterError
from photocluster.people.unassigned import FaceGroup

HELP = """\
  NAME       name this person (an existing name merges into that person, after asking)
  3 7 = NAME faces 3 and 7 are NAME (an existing person, or a new one)
  Enter      accept the suggestion ("Looks like"), or skip when there is none or it only
             "May be" someone
  y          they are the "May be" suggestion (merge into that person)
  s          skip this person for now
  i          ignore: hide this person (photocluster unhide PERSON brings it back)
  x 3 7 12   faces 3, 7 and 12 are not this person (ranges work: x 3-6)
  + / -      the next / previous page of faces (the first page ends with the least typical)
  u          undo the last decision
  =NAME      a name that looks like a command (=s names someone "s")
  ?          this help
  q          quit (every decision so far is already saved)
  A number keeps its face while this person is shown; a tile marked +2 stands for itself and
  2 near duplicates, and an answer about it covers all three."""

FACES_HELP = """\
  These faces are in no person. They are grouped by the person each looks most like; first a
  sheet of the likely ones, each captioned with who it probably is and the chance, then a sheet
  of the maybes (less likely: Enter leaves them).
  Enter      they are the suggested person (on the likely sheet: each is who its caption
             says), or skip when there is none
  y 3 7      on a sheet of suggestions: faces 3 and 7 are who their captions say (y: all on
             this page)
  NAME       the faces on this page are NAME (an existing person, after asking, or a new one)
  3 7 = NAME faces 3 and 7 are NAME
  x 3 7      faces 3 and 7 are not the suggested person (they come back with another guess)
  s          skip these faces for now (they stay in no person)
  + / -      the next / previous page
  u          undo the last decision
  =NAME      a name that looks like a command
  ?          this help
  q          quit (every decision so far is already saved)"""


@dataclass(frozen=True)
class Suggestion:
    person_id: int
    name: str
    distance: float
    chance: float | None = None  # the calibrated score (a small person), when there is one


@dataclass(frozen=True)
class QueueItem:
    """One person as shown to the human."""

    person_id: int
    position: int  # 1-based place in this session's queue
    total: int  # people in the queue when the session started
    faces: int
    photos: int
    sheet: ContactSheet
    suggestion: Suggestion | None


@dataclass(frozen=True)
class FacesItem:
    """A group of faces in no person as shown to the human: who they look like and how sure."""

    position: int  # 1-based place among the groups of faces
    total: int  # groups of faces in this session so far
    faces: int  # faces of the group still in no person
    photos: int
    sheet: ContactSheet
    group: FaceGroup  # their nearest person and `find`'s evidence for each face
    suggestion: Suggestion | None  # offered on Enter: only when the group is likely that person


class Prompter(Protocol):
    """Where answers come from. ``ask`` raises EOFError when there are no more answers.

    ``confirm`` is a yes/no question whose answer is no unless the human says yes."""

    def show(self, item: QueueItem | FacesItem) -> None: ...

    def ask(self, prompt: str, names: Sequence[str]) -> str: ...

    def confirm(self, question: str) -> bool: ...

    def say(self, text: str) -> None: ...


class ScriptedPrompter:
    """Answers from a list, in order; records what was shown and said (for tests)."""

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = deque(answers)
        self.shown: list[QueueItem | FacesItem] = []
        self.said: list[str] = []
        self.questions: list[str] = []

    def show(self, item: QueueItem | FacesItem) -> None:
        self.shown.append(item)

    def ask(self, prompt: str, names: Sequence[str]) -> str:
        self.questions.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.popleft()

    def confirm(self, question: str) -> bool:
        self.questions.append(question)
        if not self.answers:
            raise EOFError
        return self.answers.popleft().strip().lower() in ("y", "yes")  # Enter says no

    def say(self, text: str) -> None:
        self.said.append(text)


class AnswerKind(StrEnum):
    ACCEPT = "accept"  # Enter
    SKIP = "skip"
    HIDE = "hide"
    REJECT = "reject"  # x 3 7: these faces are not this person
    YES = "yes"  # y 3 7: on a sheet of suggestions, these faces are who their captions say
    UNDO = "undo"
    HELP = "help"
    QUIT = "quit"
    NAME = "name"  # NAME, or 3 7 = NAME
    MORE = "more"  # + : the next page
    BACK = "back"  # - : the previous page


@dataclass(frozen=True)
class Answer:
    kind: AnswerKind
    numbers: tuple[int, ...] = ()  # reject: these faces; name: only these faces are NAME
    name: str = ""


_COMMANDS = {
    "": AnswerKind.ACCEPT,
    "s": AnswerKind.SKIP,
    "i": AnswerKind.HIDE,
    "u": AnswerKind.UNDO,
    "?": AnswerKind.HELP,
    "q": AnswerKind.QUIT,
    "+": AnswerKind.MORE,
    "-": AnswerKind.BACK,
}


def _numbers(spec: str) -> tuple[int, ...]:
    numbers: list[int] = []
    for part in spec.replace(",", " ").split():
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise PhotoclusterError(f"{part!r} is not a face number or range like 3-6")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo or hi - lo > 10_000:
            raise PhotoclusterError(f"{part!r} is not a usable range")
        numbers.extend(range(lo, hi + 1))
    return tuple(dict.fromkeys(numbers))


def parse_answer(text: str) -> Answer:
    """What the human typed, as an :class:`Answer`; a malformed ``x`` is a PhotoclusterError."""
    raw = text.strip()
    if raw.startswith("="):
        return Answer(AnswerKind.NAME, name=raw[1:])
    low = raw.lower()
    if low in _COMMANDS:
        return Answer(_COMMANDS[low])
    if low == "h" or low == "help":
        return Answer(AnswerKind.HELP)
    if low == "y":  # a "May be" person is that person; on a sheet of suggestions: this page
        return Answer(AnswerKind.YES)
    if re.fullmatch(r"y[\s\d,\-]+", low):
        numbers = _numbers(low[1:])
        if not numbers:
            raise PhotoclusterError("Say which faces are who their captions say, e.g. y 3 7")
        return Answer(AnswerKind.YES, numbers=numbers)
    if low == "x" or re.fullmatch(r"x[\s\d,\-]+", low):
        numbers = _numbers(low[1:])
        if not numbers:
            raise PhotoclusterError("Say which faces are not this person, e.g. x 3 7 12")
        return Answer(AnswerKind.REJECT, numbers=numbers)
    some = re.fullmatch(r"([\d\s,\-]+)=(.*)", raw)
    if some and re.search(r"\d", some.group(1)):
        name = some.group(2).strip()
        if not name:
            raise PhotoclusterError("Say who these faces are, e.g. 3 7 = Ada Lovelace")
        return Answer(AnswerKind.NAME, numbers=_numbers(some.group(1)), name=name)
    return Answer(AnswerKind.NAME, name=raw)
