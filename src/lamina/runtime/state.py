"""What the runtime knows about a container's process, on disk.

One small JSON record per container (``<state_dir>/shim/<id>/state.json``), replaced atomically
by whoever owns that stage: the launcher writes it before the shim exists, the shim while the
process runs and when it ends. Readers never need a lock: they see the old or the new record.
The shim's pid *and* its start time (``/proc/<pid>/stat`` field 22) are kept, so a recycled pid
is never taken for a live shim.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from msgspec import Struct
from msgspec.structs import asdict, replace

from lamina.atomic import write_atomic
from lamina.runtime.logs import ZERO_TIME

RECORD_NAME: Final = "state.json"
SHIM_DIR: Final = "shim"  # <state_dir>/shim/<id>/ holds a container's record


class ContainerStatus(enum.Enum):
    """Docker's ``State.Status`` values that a runtime can observe."""

    CREATED = "created"  # never started, or the start failed (see ``error``)
    RUNNING = "running"
    EXITED = "exited"


class ContainerState(Struct, frozen=True, kw_only=True):
    """A container process's state, shaped like Docker's inspect ``State``."""

    status: ContainerStatus
    pid: int = 0
    exit_code: int = 0
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    error: str = ""
    oom_killed: bool = False  # the kernel killed a process of it for memory (Docker's OOMKilled)
    # Observed at each read (the cgroup freezer of a running process), never stored: a pause
    # or unpause outside lamina (``runc pause``) shows as it is.
    paused: bool = False

    @property
    def docker_status(self) -> str:
        """Docker's ``State.Status`` word: the status, or "paused" for a paused one."""
        return "paused" if self.paused else self.status.value


class Record(Struct, frozen=True, kw_only=True):
    """The on-disk record: the state plus what is needed to find the shim and the logs."""

    container_id: str
    bundle: str
    log_path: str
    state: ContainerState
    shim_pid: int = 0
    shim_start_time: int = 0

    def to_json(self) -> bytes:
        body = asdict(self)
        body["state"] = asdict(self.state) | {"status": self.state.status.value}
        del body["state"]["paused"]  # observed, not recorded
        return json.dumps(body, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Record:
        body: dict[str, Any] = json.loads(raw)
        st = dict(body.pop("state"))
        st["status"] = ContainerStatus(st["status"])
        return cls(state=ContainerState(**st), **body)


def write_record(directory: Path, record: Record) -> None:
    # Not fsynced: the record is only meaningful while this boot's processes exist.
    write_atomic(directory / RECORD_NAME, record.to_json(), mode=0o600, durable=False)


def read_record(directory: Path) -> Record | None:
    try:
        raw = (directory / RECORD_NAME).read_bytes()
    except FileNotFoundError:
        return None
    return Record.from_json(raw)


def observed_state(
    rec: Record, *, directory: Path, runc_state: Callable[[], Mapping[str, Any] | None]
) -> ContainerState:
    """The state ``rec`` (read from ``directory``) gives, checked: a record that still says
    running while its shim is gone is read again (the shim writes the exit, then exits: the
    first read may have come just before that write), then put to ``runc_state()`` (runc's own
    view, asked only then), and if runc does not see the process either, the shim was killed
    before it could record the exit (``kill -9``), and the state says so. Reads /proc only,
    so ``ps`` and ``inspect`` need none of the runtime's other modules."""
    st = rec.state
    if st.status is not ContainerStatus.RUNNING:
        return st
    if process_alive(rec.shim_pid, rec.shim_start_time):
        return _with_pause(st)
    latest = read_record(directory)
    if latest is not None and latest.state.status is not ContainerStatus.RUNNING:
        return latest.state
    seen = runc_state()
    if seen is not None and seen.get("status") in ("running", "created", "paused"):
        return _with_pause(st)
    return ContainerState(
        status=ContainerStatus.EXITED,
        exit_code=255,
        started_at=st.started_at,
        error="the lamina shim died; the exit status was lost",
    )


def _with_pause(st: ContainerState) -> ContainerState:
    from lamina.runtime.cgroups import frozen

    return replace(st, paused=True) if frozen(st.pid) else st


def proc_start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks), None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parens: split after its last ')'.
    rest = raw[raw.rindex(b")") + 2 :].split()
    return int(rest[19])


def process_alive(pid: int, start_time: int) -> bool:
    """Whether the process ``pid`` that started at ``start_time`` still exists (not a zombie)."""
    if pid <= 0:
        return False
    if proc_start_time(pid) != start_time:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return False
    return raw[raw.rindex(b")") + 2 : raw.rindex(b")") + 3] != b"Z"


def self_start_time() -> int:
    start = proc_start_time(os.getpid())
    assert start is not None  # our own /proc entry always exists
    return start
