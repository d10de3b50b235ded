"""The lamina shim: one small monitor process per running container.

The shim is what lets ``run -d``, ``logs``, ``stop`` and a ``kill -9`` of the CLI work without a
daemon. It is forked from the launching process (no exec, so it costs no interpreter start),
leaves its session, and then owns a foreground ``runc run``:

- runc relays the container's stdout/stderr through two pipes; the shim appends them to the
  json-file log and, when attached, also copies them to the launcher's stdout/stderr
  (inherited fds, so the copy survives only as long as someone reads them; a vanished reader
  just ends the copying, never the container);
- signals the shim receives (forwarded by an attached launcher) go to runc, which hands them
  to the container's init process; ``stop``/``kill`` use ``runc kill`` directly;
- when runc exits (the container's status, 128+N for a signal N) the shim writes the state
  record (:mod:`lamina.runtime.state`) atomically and exits with the same status.

The launcher learns the outcome of the start through a sync pipe: one JSON line, either
``{"shim_pid": P, "pid": N, "started_at": T}`` or ``{"shim_pid": P, "error": MSG,
"exit_code": 125|126|127}``. A detached shim is double-forked so that nobody has to reap it
and it outlives the launcher; an attached one stays the launcher's child, which waits for it.

Fd hygiene matters because the launcher may hold store locks and database handles: the
child closes every fd but its stdio and the sync pipe straight after the fork, so nothing the
launcher holds stays open (or locked) for the container's lifetime.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from lamina.runtime.logs import LogWriter, rfc3339_nano
from lamina.runtime.runc import last_error
from lamina.runtime.state import (
    ContainerState,
    ContainerStatus,
    Record,
    self_start_time,
    write_record,
)

# What an attached launcher forwards and the shim passes on (Docker's sig-proxy, less the
# signals that are about the launcher itself: CHLD, PIPE, URG, and the unblockable ones).
FORWARDED: Final = frozenset(
    {
        signal.SIGHUP,
        signal.SIGINT,
        signal.SIGQUIT,
        signal.SIGTERM,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGWINCH,
    }
)
PID_FILE: Final = "pid"
RUNC_LOG: Final = "runc.log"
SHIM_ERR: Final = "shim.err"
_SYNC_FD: Final = 3
_POLL: Final = 0.002  # how often the pid file is looked for while runc creates the container


@dataclass(frozen=True, slots=True, kw_only=True)
class ShimConfig:
    container_id: str
    bundle: Path
    record_dir: Path  # holds the state record, runc's pid file and log
    log_path: Path  # the json-file log
    runc_argv: tuple[str, ...]  # a foreground ``runc run`` (Runc.run_argv)
    attach: bool  # copy output to the launcher's stdout/stderr too
    command: str  # args[0], for error messages


def start_failure_status(message: str) -> int:
    """Docker's exit status for a start that failed with runc's ``message``.

    runc reports exec failures only as text; matching it is what Docker does too
    (``daemon/start.go``). 127: the command does not exist; 126: it cannot be run."""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return 127
    if "permission denied" in lowered or "is a directory" in lowered:
        return 126
    return 125


class ShimProcess:
    """The launcher's handle on a forked shim."""

    def __init__(self, *, pid: int, sync_fd: int, detached: bool) -> None:
        self.pid = pid  # the shim itself when attached; the reaped middle child when detached
        self._sync_fd = sync_fd
        self._detached = detached

    @classmethod
    def spawn(cls, config: ShimConfig, *, detach: bool, stdin_fd: int | None) -> ShimProcess:
        """Fork the shim. ``stdin_fd`` becomes the container's stdin (None: /dev/null).

        The caller should block :data:`FORWARDED` signals around this call (and install its
        forwarding handlers before unblocking them): the child inherits the mask and only
        unblocks once its own handlers are in place."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover -- runs in the child; covered by integration tests
            os.close(r)
            _child(config, detach=detach, stdin_fd=stdin_fd, sync_w=w)
        os.close(w)
        if detach:
            os.waitpid(pid, 0)  # the middle child exits as soon as it has forked the shim
        return cls(pid=pid, sync_fd=r, detached=detach)

    def read_sync(self) -> dict[str, Any]:
        """Block until the shim reports the start's outcome ({} if it died without one)."""
        chunks = []
        while chunk := os.read(self._sync_fd, 4096):
            chunks.append(chunk)
        os.close(self._sync_fd)
        raw = b"".join(chunks).strip()
        return json.loads(raw) if raw else {}

    def wait(self) -> int:
        """Wait for an attached shim to exit; its exit status (the container's)."""
        assert not self._detached, "a detached shim is not our child"
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        return code if code >= 0 else 128 - code


def _child(config: ShimConfig, *, detach: bool, stdin_fd: int | None, sync_w: int) -> None:
    code = 125
    try:
        os.setsid()  # leave the launcher's session: its Ctrl-C and hangup are not ours
        if detach and os.fork() > 0:
            os._exit(0)
        _arrange_fds(attach=config.attach, stdin_fd=stdin_fd, sync_w=sync_w)
        code = _serve(config)
    except BaseException:
        with contextlib.suppress(BaseException):
            import traceback  # only on this path: it costs start-up time

            (config.record_dir / SHIM_ERR).write_text(traceback.format_exc())
    finally:
        os._exit(code)


def _arrange_fds(*, attach: bool, stdin_fd: int | None, sync_w: int) -> None:
    """0 = the container's stdin, 1/2 = the launcher's stdout/stderr (attached) or /dev/null,
    3 = the sync pipe; everything else closed."""
    null = os.open(os.devnull, os.O_RDWR)
    # Park the sources above the target range first, so a dup2 never clobbers one of them.
    src_in = fcntl.fcntl(null if stdin_fd is None else stdin_fd, fcntl.F_DUPFD_CLOEXEC, 10)
    src_sync = fcntl.fcntl(sync_w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.dup2(src_in, 0)
    if not attach:
        os.dup2(null, 1)
        os.dup2(null, 2)
    os.dup2(src_sync, _SYNC_FD, inheritable=False)
    os.closerange(_SYNC_FD + 1, os.sysconf("SC_OPEN_MAX"))


def _send_sync(message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the launcher may be gone (kill -9): that is fine
        os.write(_SYNC_FD, json.dumps(message).encode() + b"\n")
    with contextlib.suppress(OSError):
        os.close(_SYNC_FD)


def _read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None  # runc renames it into place, but be safe


class _Output:
    """Where container output goes: the log, and (attached) the launcher's stdio."""

    def __init__(self, log: LogWriter, *, attach: bool) -> None:
        self._log = log
        self._tee = {"stdout": 1, "stderr": 2} if attach else {}

    def emit(self, stream: str, data: bytes) -> None:
        self._log.write(stream, data)
        fd = self._tee.get(stream)
        if fd is None:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            del self._tee[stream]  # the reader went away; keep logging

    def close(self) -> None:
        self._log.close()


def _serve(config: ShimConfig) -> int:
    shim_pid, shim_start = os.getpid(), self_start_time()
    runc: subprocess.Popen[bytes] | None = None
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if runc is None:
            pending.append(signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(runc.pid, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)

    def record(state: ContainerState) -> None:
        write_record(
            config.record_dir,
            Record(
                container_id=config.container_id,
                bundle=str(config.bundle),
                log_path=str(config.log_path),
                state=state,
                shim_pid=shim_pid,
                shim_start_time=shim_start,
            ),
        )

    pid_file = config.record_dir / PID_FILE
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        runc = subprocess.Popen(
            config.runc_argv, stdin=0, stdout=out_w, stderr=err_w, cwd=config.bundle
        )
    except OSError as exc:  # runc missing or not executable
        message = f"cannot run {config.runc_argv[0]}: {exc.strerror or exc}"
        record(ContainerState(status=ContainerStatus.CREATED, exit_code=125, error=message))
        _send_sync({"shim_pid": shim_pid, "error": message, "exit_code": 125})
        return 125
    os.close(out_w)
    os.close(err_w)
    for early in pending:
        with contextlib.suppress(ProcessLookupError):
            os.kill(runc.pid, early)

    output = _Output(LogWriter(config.log_path), attach=config.attach)
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ, "stdout")
    sel.register(err_r, selectors.EVENT_READ, "stderr")
    held: list[tuple[str, bytes]] = []  # output before the start is confirmed: maybe runc's
    pid: int | None = None
    started_at = ""
    open_streams = 2
    while open_streams:
        events = sel.select(timeout=None if pid else _POLL)
        if pid is None and (pid := _read_pid(pid_file)) is not None:
            started_at = rfc3339_nano()
            record(ContainerState(status=ContainerStatus.RUNNING, pid=pid, started_at=started_at))
            _send_sync({"shim_pid": shim_pid, "pid": pid, "started_at": started_at})
            for stream, data in held:
                output.emit(stream, data)
            held.clear()
        for key, _ in events:
            data = os.read(key.fd, 1 << 16)
            if not data:
                sel.unregister(key.fd)
                os.close(key.fd)
                open_streams -= 1
            elif pid is None:
                held.append((key.data, data))
            else:
                output.emit(key.data, data)
    status = runc.wait()
    code = status if status >= 0 else 128 - status
    if pid is None and (pid := _read_pid(pid_file)) is not None:
        # The container ran and ended between two looks at the pid file.
        started_at = rfc3339_nano()
        _send_sync({"shim_pid": shim_pid, "pid": pid, "started_at": started_at})
        for stream, data in held:
            output.emit(stream, data)
    if pid is None:
        # runc failed before the process started; what it printed was its own error.
        output.close()
        message = (
            last_error(config.record_dir / RUNC_LOG)
            or b"".join(d for s, d in held if s == "stderr").decode("utf-8", "replace").strip()
            or f"runc exited with status {status}"
        )
        code = start_failure_status(message)
        record(ContainerState(status=ContainerStatus.CREATED, exit_code=code, error=message))
        _send_sync({"shim_pid": shim_pid, "error": message, "exit_code": code})
        return code
    output.close()
    record(
        ContainerState(
            status=ContainerStatus.EXITED,
            pid=0,
            exit_code=code,
            started_at=started_at,
            finished_at=rfc3339_nano(),
        )
    )
    return code
