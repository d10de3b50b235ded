"""json-file logs, RFC 3339 times, the state record, and start-failure classification."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lamina.runtime.logs import MAX_LINE, LogEntry, LogWriter, encode_entry, read_log, rfc3339_nano
from lamina.runtime.shim import start_failure_status
from lamina.runtime.state import (
    ContainerState,
    ContainerStatus,
    Record,
    observed_state,
    proc_start_time,
    process_alive,
    read_record,
    write_record,
)

NS = 1_714_564_800 * 10**9  # 2024-05-01T12:00:00Z


def test_rfc3339_nano_trims_like_go() -> None:
    assert rfc3339_nano(NS) == "2024-05-01T12:00:00Z"
    assert rfc3339_nano(NS + 123_456_789) == "2024-05-01T12:00:00.123456789Z"
    assert rfc3339_nano(NS + 120_000_000) == "2024-05-01T12:00:00.12Z"
    assert rfc3339_nano(NS + 1) == "2024-05-01T12:00:00.000000001Z"


def test_encode_entry_matches_docker_bytes() -> None:
    line = encode_entry(stream="stdout", data=b"hi\n", ns=NS + 5)
    assert line == b'{"log":"hi\\n","stream":"stdout","time":"2024-05-01T12:00:00.000000005Z"}\n'
    odd = encode_entry(stream="stderr", data=b"<a&b> \xff caf\xc3\xa9\n", ns=NS)
    assert b"\\u003ca\\u0026b\\u003e" in odd
    assert json.loads(odd)["log"] == "<a&b> \ufffd caf\u00e9\n"


def _go_encoded(data: bytes) -> str:
    """What Go's encoder writes for ``data`` as a string: JSON with <, >, & and U+2028/9
    escaped, invalid UTF-8 as U+FFFD (the slow path, spelled out independently)."""
    text = json.dumps(data.decode("utf-8", "replace"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


@settings(max_examples=400)
@given(st.binary(max_size=64) | st.text(max_size=32).map(lambda t: t.encode()))
def test_every_line_encodes_as_go_would(data: bytes) -> None:
    line = encode_entry(stream="stdout", data=data, ns=NS)
    expected = '{"log":' + _go_encoded(data) + ',"stream":"stdout","time":"2024-05-01T12:00:00Z"}\n'
    assert line == expected.encode()


def test_writer_keeps_up_with_many_short_lines(tmp_path: Path) -> None:
    # `yes` in a container: 64 KiB reads of "y\n" must become 32768 entries per read, each
    # exactly one line (the writer once re-sliced the buffer per line: quadratic).
    path = tmp_path / "c-json.log"
    w = LogWriter(path)
    for _ in range(8):
        w.write("stdout", b"y\n" * 32768)
    w.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 8 * 32768
    assert {json.loads(line)["log"] for line in lines[::4096]} == {"y\n"}


def test_writer_splits_lines_and_flushes_partials(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = LogWriter(path)
    w.write("stdout", b"one\ntw")
    w.write("stderr", b"err\n")
    w.write("stdout", b"o\n" + b"x" * (MAX_LINE + 5))
    w.write("stdout", b"tail")
    w.close()
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stdout", "one\n"),
        ("stderr", "err\n"),
        ("stdout", "two\n"),
        ("stdout", "x" * MAX_LINE),
        ("stdout", "xxxxxtail"),
    ]
    assert all(e["time"].endswith("Z") for e in entries)


def test_read_log_follow_waits_for_the_end(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    done = threading.Event()

    def writer() -> None:
        w = LogWriter(path)
        for i in range(3):
            w.write("stdout", f"{i}\n".encode())
            time.sleep(0.05)
        w.close()
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    got = [e.line for e in read_log(path, follow=True, finished=done.is_set, poll=0.01)]
    t.join()
    assert got == ["0\n", "1\n", "2\n"]
    first = next(iter(read_log(path, follow=False, finished=lambda: True)))
    assert isinstance(first, LogEntry)
    stream, line, _when = first
    assert (stream, line) == ("stdout", "0\n")
    assert list(read_log(tmp_path / "none", follow=False, finished=lambda: True)) == []


def test_record_round_trip(tmp_path: Path) -> None:
    rec = Record(
        container_id="abc",
        bundle="/b",
        log_path="/b/abc-json.log",
        state=ContainerState(status=ContainerStatus.EXITED, exit_code=3, error="e"),
        shim_pid=5,
        shim_start_time=7,
    )
    write_record(tmp_path, rec)
    assert read_record(tmp_path) == rec
    assert read_record(tmp_path / "missing") is None


def test_an_exit_recorded_as_the_shim_leaves_is_not_taken_for_a_lost_one(tmp_path: Path) -> None:
    # A reader read "running", then the shim wrote the exit and left: seeing the shim gone,
    # the state is the record's new one, not "the shim died" (255; a race `wait` once hit).
    start = proc_start_time(os.getpid())
    assert start is not None
    gone = dict(shim_pid=os.getpid(), shim_start_time=start + 1)  # not a live shim
    running = Record(
        container_id="abc",
        bundle="/b",
        log_path="/l",
        state=ContainerState(status=ContainerStatus.RUNNING, pid=1),
        **gone,
    )
    exited = ContainerState(status=ContainerStatus.EXITED, exit_code=137)
    write_record(tmp_path, Record(container_id="abc", bundle="/b", log_path="/l", state=exited))
    assert observed_state(running, directory=tmp_path, runc_state=lambda: None) == exited
    # Still "running" on disk and unknown to runc: the shim was killed before recording.
    write_record(tmp_path, running)
    lost = observed_state(running, directory=tmp_path, runc_state=lambda: None)
    assert (lost.status, lost.exit_code) == (ContainerStatus.EXITED, 255)


def test_process_alive_checks_start_time() -> None:
    start = proc_start_time(os.getpid())
    assert start is not None
    assert process_alive(os.getpid(), start)
    assert not process_alive(os.getpid(), start + 1)  # a recycled pid is not our process
    assert not process_alive(0, 0)


def test_start_failure_status() -> None:
    assert start_failure_status('exec: "x": executable file not found in $PATH') == 127
    assert start_failure_status('exec: "/x": stat /x: no such file or directory') == 127
    assert start_failure_status('exec: "/etc": permission denied') == 126
    assert start_failure_status("cgroup: something else") == 125
