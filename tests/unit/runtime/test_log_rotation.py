"""The json-file log rotated as Docker 20.10's json-file driver rotates it (``--log-opt
max-size=1k --log-opt max-file=3``: files of about 1000 bytes, ``<log>.1`` and ``<log>.2``
then the current one, ``docker logs`` reading them oldest first), and read back across the
rotations, following too; and the ``none`` driver, which writes nothing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from lamina.runtime.logs import LogOptions, LogWriter, read_log

ROTATED = LogOptions(max_size=1000, max_files=3)


def _write_lines(log: Path, options: LogOptions, count: int, *, pause: float = 0.0) -> None:
    w = LogWriter(log, options=options)
    for i in range(1, count + 1):
        w.write("stdout", f"line{i}\n".encode())
        if pause:
            time.sleep(pause)
    w.close()


def _lines(path: Path) -> list[str]:
    return [
        e.line.strip() for e in read_log(path, follow=False, finished=lambda: True, options=ROTATED)
    ]


def test_files_are_rotated_before_the_entry_that_would_go_past_the_size(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    _write_lines(log, ROTATED, 100)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["c-json.log", "c-json.log.1", "c-json.log.2"]  # max-file 3: .3 dropped
    for name in ("c-json.log.1", "c-json.log.2"):
        size = (tmp_path / name).stat().st_size
        # Docker checks before each entry: a file reaches the size, and no more than an entry
        # past it (an entry here is under 100 bytes).
        assert 1000 <= size < 1100, (name, size)
    assert (tmp_path / "c-json.log").stat().st_size < 1100
    lines = _lines(log)
    assert lines == [f"line{i}" for i in range(101 - len(lines), 101)]  # the last ones, in order
    with open(tmp_path / "c-json.log.2", "rb") as f:  # the oldest holds the first of them
        assert lines[0] in f.readline().decode()


def test_one_file_kept_is_rotated_to_dot_1_and_not_read(tmp_path: Path) -> None:
    # docker 20.10 with max-size alone (max-file 1): the log moves to .1 at each rotation
    # (replacing it), and `docker logs` reads only the current file.
    log = tmp_path / "c-json.log"
    one = LogOptions(max_size=1000, max_files=1)
    _write_lines(log, one, 100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c-json.log", "c-json.log.1"]
    entries = read_log(log, follow=False, finished=lambda: True, options=one)
    lines = [e.line.strip() for e in entries]
    assert lines[-1] == "line100" and len(lines) < 14


def test_a_log_there_already_counts_towards_its_first_rotation(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    log.write_bytes(b"x" * 999 + b"\n")  # (not an entry: never read back here)
    w = LogWriter(log, options=ROTATED)
    w.write("stdout", b"first\n")
    w.close()
    assert (tmp_path / "c-json.log.1").stat().st_size == 1000  # rotated before "first"
    assert b"first" in log.read_bytes()


def test_a_follower_goes_on_across_rotations(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    log.touch()
    many = LogOptions(max_size=300, max_files=50)  # nothing dropped while it follows
    done = threading.Event()
    writer = threading.Thread(target=lambda: (_write_lines(log, many, 80, pause=0.002), done.set()))
    writer.start()
    got = [
        e.line.strip()
        for e in read_log(log, follow=True, finished=done.is_set, poll=0.001, options=many)
    ]
    writer.join()
    assert got == [f"line{i}" for i in range(1, 81)]  # each once, in order
    assert len(list(tmp_path.iterdir())) > 5


def test_the_none_driver_writes_nothing(tmp_path: Path) -> None:
    log = tmp_path / "c-json.log"
    w = LogWriter(log, options=LogOptions(driver="none"))
    w.write("stdout", b"hi\n")
    w.close()
    assert os.listdir(tmp_path) == []
