"""Progress on stderr: rich bars on a terminal, plain lines otherwise, nothing with ``-q``.

stdout may carry an archive (``lamina save`` to a pipe), so progress never goes there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol


class _LayerLike(Protocol):
    @property
    def digest(self) -> str: ...

    @property
    def size(self) -> int: ...


class LayerProgress:
    """A callback ``(index, total, layer)`` for each layer, usable as a context manager."""

    def __init__(self, *, verb: str, quiet: bool) -> None:
        self._verb = verb
        self._quiet = quiet
        self._rich: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int, int, Any], None]:
        if not self._quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._rich = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._rich.start()
        return self

    def __call__(self, index: int, total: int, layer: _LayerLike) -> None:
        if self._quiet:
            return
        if self._rich is not None:
            if self._task is None:
                self._task = self._rich.add_task(f"{self._verb} layers", total=total)
            self._rich.update(
                self._task,
                completed=index,
                description=(f"{self._verb} blob {str(layer.digest)[7:19]} ({layer.size:,} bytes)"),
            )
            return
        print(
            f"{self._verb} blob {layer.digest} ({index + 1}/{total}, {layer.size} bytes)",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._rich is not None:
            self._rich.stop()
