"""State shared by every command: the global options, the engine (opened on first use), and
the exit status a command that succeeded but found problems wants (``verify``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lamina.cli.entry import settle_gc

if TYPE_CHECKING:
    from lamina.engine.engine import Engine


class Context:
    """What the global options decided; opens the engine on first use."""

    def __init__(self, *, root: Path | None, driver: str | None) -> None:
        self.root = root
        self.driver = driver
        self._engine: Engine | None = None

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


pass_ctx = click.make_pass_decorator(Context)

_status = [0]


def set_exit_status(code: int) -> None:
    """Commands that succeed but report findings (verify) set a non-zero status here."""
    _status[0] = code


def pop_exit_status() -> int:
    code = _status[0]
    _status[0] = 0
    return code
