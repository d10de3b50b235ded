"""The CLI run in-process (:func:`lamina.cli.main.main`) against one store, its output
captured: what tests/cli's verb tests drive."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.cli.main import main


class Cli:
    def __init__(
        self, root: Path, capfd: pytest.CaptureFixture[str], *, driver: str | None = None
    ) -> None:
        self.root = root
        self.capfd = capfd
        self.options = ["--root", str(root), *(["--storage-driver", driver] if driver else [])]

    def __call__(self, *args: str) -> tuple[int, str, str]:
        """(exit status, stdout, stderr) of ``lamina ARGS``."""
        self.capfd.readouterr()
        code = main([*self.options, *args])
        out, err = self.capfd.readouterr()
        return code, out, err

    def ok(self, *args: str) -> str:
        """stdout of ``lamina ARGS``, which must succeed."""
        code, out, err = self(*args)
        assert code == 0, err
        return out
