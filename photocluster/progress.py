"""The progress interface core jobs report to. The CLI renders it (tqdm on stderr)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int, description: str) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    """Reports nowhere: the default for library use and tests."""

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass
