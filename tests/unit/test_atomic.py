"""Crash-safe writes: what the system refuses is a FileError naming the file, and nothing
is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.atomic import write_atomic
from lamina.errors import FileError


def test_writes_replace_atomically(tmp_path: Path) -> None:
    target = tmp_path / "f"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("missing/f", "No such file or directory"),
        ("n" * 300, "File name too long"),
        ("d", "Is a directory"),  # a dir in the way: the rename fails, the temp goes
        ("", "not a file name"),
    ],
)
def test_what_the_system_refuses_is_a_file_error(tmp_path: Path, name: str, reason: str) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inside").write_text("x")
    with pytest.raises(FileError, match=reason):
        write_atomic(tmp_path / name if name else Path(""), b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
