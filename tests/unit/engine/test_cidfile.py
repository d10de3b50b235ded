"""``--cidfile`` as docker 20.10's CLI writes it; the words are the ones it printed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lamina.engine.cidfile import CidFile
from lamina.errors import HostFileError

ID = "0123456789abcdef" * 4


def test_the_id_without_a_newline_in_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "cid"
    old = os.umask(0o022)
    try:
        cid = CidFile(str(path))
    finally:
        os.umask(old)
    assert path.read_bytes() == b""  # made before the container is
    cid.write(ID)
    assert path.read_bytes() == ID.encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # docker's: -rw-r--r-- under umask 022
    cid.discard()  # written: kept
    assert path.exists()


def test_a_failed_create_takes_the_file_back(tmp_path: Path) -> None:
    path = tmp_path / "cid"
    cid = CidFile(str(path))
    cid.discard()
    cid.discard()
    assert not path.exists()


@pytest.mark.parametrize("what", ["file", "dir"])
def test_something_there_is_refused(tmp_path: Path, what: str) -> None:
    path = tmp_path / "cid"
    if what == "file":
        path.write_text("old")
    else:
        path.mkdir()
    with pytest.raises(HostFileError) as err:
        CidFile(str(path))
    assert str(err.value) == (
        f"container ID file found, make sure the other container isn't running or delete {path}"
    )
    assert err.value.exit_status == 1  # docker run: 125
    if what == "file":
        assert path.read_text() == "old"


def test_a_file_that_cannot_be_made(tmp_path: Path) -> None:
    # docker 20.10: "failed to create the container ID file: open /nonexistent/dir/cid: no
    # such file or directory"; docker run exits 127 for it (its CLI reads those words).
    path = tmp_path / "nonexistent" / "cid"
    with pytest.raises(HostFileError) as err:
        CidFile(str(path))
    assert str(err.value) == (
        f"failed to create the container ID file: open {path}: no such file or directory"
    )
    assert err.value.exit_status == 127
