"""State shared by every command: the global options, the engine (opened on first use), and
the exit status a command that succeeded but found problems wants (``verify``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from lamina.cli.startup import settle_gc

if TYPE_CHECKING:
    from lamina.engine.engine import Engine
    from lamina.errors import LaminaError

T = TypeVar("T")


class Context:
    """What the global options decided; opens the engine on first use."""

    def __init__(self, *, root: Path | None, driver: str | None) -> None:
        self.root = root
        self.driver = driver
        self._engine: Engine | None = None
        # Commands that succeed but report findings (verify) or partial failures (rm A B,
        # see each) set a non-zero status here.
        self.exit_status = 0

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from lamina.engine.engine import Engine

            self._engine = Engine.open(self.root, driver=self.driver)
            settle_gc()
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def each(self, items: Sequence[T], act: Callable[[T], object], *, echo: bool = False) -> None:
        """Apply ``act`` to every item, as Docker's verbs of several names do (``rm A B``,
        ``rmi A B``): one item's error is printed and the rest still go, and the status is 1
        if any failed. A single item's error is raised as it is (with its own status). With
        ``echo``, each item that succeeded is printed as given (``docker stop A B``)."""
        from lamina.errors import LaminaError

        for item in items:
            try:
                act(item)
                if echo:
                    print(item)
            except LaminaError as exc:
                if len(items) == 1:
                    raise
                print_error(exc)
                self.exit_status = 1


def print_error(exc: LaminaError) -> None:
    """``error: <message>``, its notes and its hint, on stderr."""
    print(f"error: {exc}", file=sys.stderr)
    for note in getattr(exc, "__notes__", ()):
        print(f"  {note}", file=sys.stderr)
    if exc.hint:
        print(f"hint: {exc.hint}", file=sys.stderr)


class Aborted(Exception):
    """The user did not confirm (exit 130, as for an interrupt)."""


def confirm(question: str) -> None:
    """Ask on stderr and read the answer from stdin; return on yes, raise :class:`Aborted`
    on no, an empty answer or end of input."""
    while True:
        sys.stderr.write(f"{question} [y/N]: ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise Aborted
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return
        if answer in ("", "n", "no"):
            raise Aborted
        sys.stderr.write("Error: invalid input\n")
