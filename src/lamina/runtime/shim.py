"""The lamina shim: one small monitor process per running container.

The shim is what lets ``run -d``, ``logs``, ``stop`` and a ``kill -9`` of the CLI work without a
daemon. It is forked from the launching process (no exec, so it costs no interpreter start),
leaves its session, makes itself a child subreaper, and runs ``runc run --detach``, which
starts the container and exits, leaving its init to the shim (the orphan is re-parented to
it, so its pid cannot be reused under us and its status is ours to reap):

- the init's stdout/stderr are two pipes the shim gave runc; the shim appends them to the
  json-file log and, when attached, also copies them to the launcher's stdout/stderr
  (inherited fds, so the copy survives only as long as someone reads them; a vanished reader
  just ends the copying, never the container);
- its stdin is the launcher's (attached ``-i``), /dev/null, or -- for a container that keeps
  its stdin open (``-i``) with no launcher's stdin to give it (``run -di``) -- a pipe whose
  write end the shim holds, so it stays open for ``attach`` (and closes at the first attached
  client's end of input for a ``StdinOnce`` container, ``create -i``, as Docker's);
- it serves the attach socket (:mod:`lamina.runtime.attach`: ``attach.sock`` in the record
  dir, 0600): every client gets the output from the moment it connects, writes to the
  container's stdin (if open), resizes its terminal, forwards signals, and gets the exit
  status. It is bound while runc starts the container, before the record says it runs, so
  whoever sees it running can attach; it costs the shim ~0.5 ms of work beside runc's;
- signals the shim receives (forwarded by an attached launcher) go to the init;
  ``stop``/``kill`` use ``runc kill`` directly;
- when the init exits (its status, 128+N for a signal N) the shim reads its memory cgroup's
  OOM-kill counter (:mod:`lamina.runtime.cgroups`), runs ``runc delete`` (which kills what is
  left and removes the cgroup), drains the pipes, writes the state record
  (:mod:`lamina.runtime.state`) atomically and exits with the same status.

A process with a terminal (``-t``) is served the same way with a pty instead of pipes
(:mod:`lamina.runtime.console`: runc relays a terminal only to a terminal of its own and
takes ``--console-socket`` only with ``--detach``): runc sends the pty master to a socket in
the bundle, and the shim copies the master to the log (one stream, ``stdout``, as Docker) and
to an attached launcher's stdout, and an interactive launcher's stdin to the master; it
resizes the pty on SIGWINCH from the launcher's terminal. Nothing of this needs the launcher,
so ``run -d -t`` and a ``kill -9`` of an attached launcher leave the container and its log
alone. The interactive launcher's stdin is watched for the detach keys (``run -it``, ``start
-ai``; :class:`~lamina.runtime.attach.EscapeFilter`, the attach clients' too): on them the
shim lets go of the launcher's stdio (/dev/null on 0-2) and tells it so on the sync pipe,
which such a start keeps open; the launcher returns and the container runs on.

The launcher learns the outcome of the start through a sync pipe: one JSON line, either
``{"shim_pid": P, "pid": N, "started_at": T}`` (with ``"detachable": true`` when the pipe
stays open for a later ``{"detached": true}``) or ``{"shim_pid": P, "error": MSG,
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
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from msgspec import Struct

from lamina.runtime import cgroups, console
from lamina.runtime.logs import DEFAULT_OPTIONS, LogOptions, LogWriter, rfc3339_nano
from lamina.runtime.runc import last_error
from lamina.runtime.signals import Wakeup
from lamina.runtime.state import (
    ContainerState,
    ContainerStatus,
    Record,
    self_start_time,
    write_record,
)

if TYPE_CHECKING:
    # Imported by the shim itself (after the fork): a launcher never serves the socket.
    from lamina.runtime import attach

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
_DRAIN: Final = 1.0  # after the init exited: how long a silent pty master is waited on for EOF
_PR_SET_CHILD_SUBREAPER: Final = 36  # <linux/prctl.h>


class ShimConfig(Struct, frozen=True, kw_only=True):
    container_id: str
    bundle: Path
    record_dir: Path  # holds the state record, runc's pid file and log
    log_path: Path  # the json-file log
    runc_argv: tuple[str, ...]  # a foreground ``runc run`` (Runc.run_argv)
    attach: bool  # copy output to the launcher's stdout/stderr too
    command: str  # args[0], for error messages
    # The process has a terminal: runc_argv is a detached run that sends the pty master to
    # bundle/console.SOCKET_NAME, and delete_argv removes what runc leaves once it ends.
    terminal: bool = False
    delete_argv: tuple[str, ...] = ()
    # The container keeps its stdin open (Docker's OpenStdin, ``-i``): attach clients may
    # write to it. With no launcher's stdin to give it, the shim makes it a pipe and holds
    # the write end (``run -di``: stdin stays open with nobody attached, as Docker's).
    open_stdin: bool = False
    stdin_once: bool = False  # Docker's StdinOnce: a client's end of input closes that pipe
    # The launcher's stdin relayed to a terminal (``run -it``) is watched for these keys
    # (attach.detach_keys); empty: not watched.
    detach_keys: bytes = b""
    log: LogOptions = DEFAULT_OPTIONS  # the logging driver and its rotation


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
        self._unread = b""  # what followed the start message on the sync pipe

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

    def read_sync(self, wake: Wakeup | None = None) -> dict[str, Any]:
        """Block until the shim reports the start's outcome ({} if it died without one);
        with ``wake``, signal handlers run while it waits (:class:`~signals.Wakeup`). A
        ``detachable`` start keeps the pipe open: the shim reports a detach on it."""
        line = self._read_line(wake)
        message: dict[str, Any] = json.loads(line) if line.strip() else {}
        if not message.get("detachable"):
            self._close_sync()
        return message

    def _read_line(self, wake: Wakeup | None) -> bytes:
        """The next line from the sync pipe (b"" at its end)."""
        buf = self._unread
        while b"\n" not in buf:
            if wake is not None:
                wake.wait_readable(self._sync_fd)
            chunk = os.read(self._sync_fd, 4096)
            if not chunk:
                break
            buf += chunk
        line, _, self._unread = buf.partition(b"\n")
        return line

    def _close_sync(self) -> None:
        if self._sync_fd >= 0:
            os.close(self._sync_fd)
            self._sync_fd = -1

    def wait(self, wake: Wakeup | None = None) -> int | None:
        """Wait for an attached shim to exit; its exit status (the container's), or None
        when the shim reported a detach instead (the container runs on). With ``wake``,
        signal handlers run while it waits (:class:`~signals.Wakeup`)."""
        assert not self._detached, "a detached shim is not our child"
        if self._sync_fd >= 0:
            # A detach is a line; the pipe's end is the shim's exit (the pidfd is waited on
            # next, so a shim that ends without closing it first is still seen to end).
            detached = b"detached" in self._read_line(wake)
            self._close_sync()
            if detached:
                return None
        if wake is not None:
            wake.wait_process(self.pid)
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        return code if code >= 0 else 128 - code


def _child(config: ShimConfig, *, detach: bool, stdin_fd: int | None, sync_w: int) -> None:
    code = 125
    try:
        os.setsid()  # leave the launcher's session: its Ctrl-C and hangup are not ours
        if detach and os.fork() > 0:
            os._exit(0)
        arrange_fds(attach=config.attach, stdin_fd=stdin_fd, sync_w=sync_w)
        shim = _Shim(config)
        if config.terminal:
            code = _serve_terminal(shim, relay_stdin=stdin_fd is not None)
        else:
            code = _serve_pipes(shim, own_stdin=config.open_stdin and stdin_fd is None)
    except BaseException:
        with contextlib.suppress(BaseException):
            import traceback  # only on this path: it costs start-up time

            (config.record_dir / SHIM_ERR).write_text(traceback.format_exc())
    finally:
        with contextlib.suppress(BaseException):  # a start that failed: nobody to serve
            from lamina.runtime.attach import SOCKET_NAME

            os.unlink(config.record_dir / SOCKET_NAME)
        os._exit(code)


def arrange_fds(*, attach: bool, stdin_fd: int | None, sync_w: int) -> None:
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


def send_sync(message: dict[str, Any], *, keep_open: bool = False) -> None:
    """One line to the launcher; the pipe is closed after it unless ``keep_open``."""
    with contextlib.suppress(OSError):  # the launcher may be gone (kill -9): that is fine
        os.write(_SYNC_FD, json.dumps(message).encode() + b"\n")
    if not keep_open:
        with contextlib.suppress(OSError):
            os.close(_SYNC_FD)


def read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None  # runc renames it into place, but be safe


class _Output:
    """Where container output goes: the log, the attach socket's clients, and (attached)
    the launcher's stdio."""

    def __init__(self, log: LogWriter, *, attach: bool, clients: attach.Server) -> None:
        self._log = log
        self._clients = clients
        self._tee = {"stdout": 1, "stderr": 2} if attach else {}

    def leave_launcher(self) -> None:
        """Stop copying to the launcher (it detached)."""
        self._tee.clear()

    def emit(self, stream: str, data: bytes) -> None:
        self._log.write(stream, data)
        self._clients.broadcast(stream, data)
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


class _Shim:
    """What both ways of serving share: the record, the launcher's sync message, and where
    forwarded signals go (held until there is a process to send them to)."""

    def __init__(self, config: ShimConfig) -> None:
        self.config = config
        self.pid, self.start_time = os.getpid(), self_start_time()
        self._target: int | None = None
        self._pending: list[int] = []
        self.on_winch: Callable[[], None] | None = None  # terminal: resize, not pass it on
        for sig in FORWARDED:
            signal.signal(sig, self._forward)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)

    def _forward(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGWINCH and self.on_winch is not None:
            self.on_winch()
        elif self._target is None:
            self._pending.append(signum)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._target, signum)

    def send(self, signum: int) -> None:
        """Pass on a signal an attach client forwards (``--sig-proxy``), as :meth:`_forward`
        passes on the launcher's: only those, and only to a process that runs."""
        if signum in FORWARDED and self._target is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._target, signum)

    def aim(self, pid: int) -> None:
        """Send forwarded signals to ``pid`` from now on, the held ones first."""
        self._target = pid
        for early in self._pending:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, early)
        self._pending.clear()

    def record(self, state: ContainerState) -> None:
        write_record(
            self.config.record_dir,
            Record(
                container_id=self.config.container_id,
                bundle=str(self.config.bundle),
                log_path=str(self.config.log_path),
                state=state,
                shim_pid=self.pid,
                shim_start_time=self.start_time,
            ),
        )

    def running(self, pid: int, *, detachable: bool = False) -> str:
        """Record and report that the container runs as ``pid``; its start time. A
        ``detachable`` launcher keeps the sync pipe, for :meth:`launcher_detached`."""
        started_at = rfc3339_nano()
        self.record(ContainerState(status=ContainerStatus.RUNNING, pid=pid, started_at=started_at))
        message: dict[str, Any] = {"shim_pid": self.pid, "pid": pid, "started_at": started_at}
        if detachable:
            message["detachable"] = True
        send_sync(message, keep_open=detachable)
        return started_at

    def launcher_detached(self, output: _Output) -> None:
        """The launcher typed the detach keys: tell it (it returns, leaving the container
        running) and let go of its terminal, which the shim must not hold open or write to."""
        output.leave_launcher()
        self.on_winch = None
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        send_sync({"detached": True})

    def failed(self, message: str, code: int) -> int:
        """Record and report a start that failed; ``code`` is returned."""
        self.record(ContainerState(status=ContainerStatus.CREATED, exit_code=code, error=message))
        send_sync({"shim_pid": self.pid, "error": message, "exit_code": code})
        return code

    def exited(self, code: int, *, started_at: str, oom_killed: bool = False) -> int:
        self.record(
            ContainerState(
                status=ContainerStatus.EXITED,
                pid=0,
                exit_code=code,
                started_at=started_at,
                finished_at=rfc3339_nano(),
                oom_killed=oom_killed,
            )
        )
        return code

    def start_error(self, status: int, stderr: bytes) -> int:
        """A run that failed before the process started: runc's message, Docker's status."""
        message = (
            last_error(self.config.record_dir / RUNC_LOG)
            or stderr.decode("utf-8", "replace").strip()
            or f"runc exited with status {status}"
        )
        return self.failed(message, start_failure_status(message))


def _serve_pipes(shim: _Shim, *, own_stdin: bool) -> int:
    """Serve a container without a terminal; ``own_stdin``: its stdin is a pipe the shim
    holds open for attach clients (else it is our fd 0: the launcher's, or /dev/null)."""
    from lamina.runtime import attach

    config = shim.config
    pid_file = config.record_dir / PID_FILE
    wake_r = _watch_children()  # the init is ours to reap once ``runc run --detach`` exits
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe2(os.O_CLOEXEC) if own_stdin else (0, None)
    try:
        # runc hands these pipes to the init as its stdio and exits once it runs.
        runc = subprocess.Popen(
            config.runc_argv, stdin=in_r, stdout=out_w, stderr=err_w, cwd=config.bundle
        )
    except OSError as exc:  # runc missing or not executable
        return shim.failed(f"cannot run {config.runc_argv[0]}: {exc.strerror or exc}", 125)
    os.close(out_w)
    os.close(err_w)
    if in_w is not None:
        os.close(in_r)
    # Bound while runc starts the container (the other core's work), before the record says
    # it runs: whoever sees it running can attach.
    server = attach.Server(
        attach.listen(config.record_dir),
        directory=config.record_dir,
        tty=False,
        sink=in_w,
        stdin_once=config.stdin_once,
        on_signal=shim.send,
        on_resize=None,
    )

    output = _Output(
        LogWriter(config.log_path, options=config.log), attach=config.attach, clients=server
    )
    sel = selectors.DefaultSelector()
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    sel.register(out_r, selectors.EVENT_READ, "stdout")
    sel.register(err_r, selectors.EVENT_READ, "stderr")
    held: list[tuple[str, bytes]] = []  # output before the start is confirmed: maybe runc's
    ended: dict[int, int] = {}  # reaped children: pid -> exit status (128+N for a signal N)
    pid: int | None = None
    started_at = ""
    memcg = None
    while pid is None or pid not in ended:
        for key, mask in sel.select():
            if key.data == "wake":
                _drain(wake_r)
            elif key.data == attach.TAG:
                server.ready(key.fd, mask)
            elif not _relay(sel, key.fd, key.data, output, held if pid is None else None):
                continue
        ended.update(_reap_all())
        if pid is None and runc.pid in ended:
            runc.returncode = ended[runc.pid]  # reaped here, not by Popen
            pid = read_pid(pid_file) if runc.returncode == 0 else None
            if pid is None:
                # runc failed before the process started; what it printed was its own error.
                _runc_delete(config)
                output.close()
                status = runc.returncode if runc.returncode else 125
                return shim.start_error(status, b"".join(d for s, d in held if s == "stderr"))
            memcg = cgroups.memory_cgroup(pid)
            shim.aim(pid)
            server.watch(sel)  # clients come once the record says it runs
            started_at = shim.running(pid)
            for stream, data in held:
                output.emit(stream, data)
            held.clear()
    # The init has exited: its cgroup is still there until runc delete (which also kills
    # what it left running, so the pipes end). What is left goes to the clients attached
    # now; no more are taken.
    server.unwatch()
    oom = memcg is not None and cgroups.oom_kills(memcg) > 0
    _runc_delete(config)
    sel.unregister(wake_r)
    quiet_until = time.monotonic() + _DRAIN
    while len(sel.get_map()) and time.monotonic() < quiet_until:
        for key, _ in sel.select(max(0.0, quiet_until - time.monotonic())):
            _relay(sel, key.fd, key.data, output, None)
    output.close()
    code = shim.exited(ended[pid], started_at=started_at, oom_killed=oom)
    server.finish(code)
    return code


def _relay(
    sel: selectors.BaseSelector,
    fd: int,
    stream: str,
    output: _Output,
    held: list[tuple[str, bytes]] | None,
) -> bool:
    """Copy what ``fd`` has to ``output`` (or to ``held``); False (and ``fd`` closed) at EOF."""
    data = os.read(fd, 1 << 16)
    if not data:
        sel.unregister(fd)
        os.close(fd)
        return False
    if held is not None:
        held.append((stream, data))
    else:
        output.emit(stream, data)
    return True


def _reap_all() -> dict[int, int]:
    """Reap every child that has ended (the init, runc, strays reparented to us); their exit
    statuses (128+N for a signal N)."""
    ended: dict[int, int] = {}
    while True:
        try:
            got, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if got == 0:
            return ended
        code = os.waitstatus_to_exitcode(status)
        ended[got] = code if code >= 0 else 128 - code


def become_subreaper() -> None:
    """Orphans below us (the container's init, once ``runc run --detach`` exits) become our
    children, so we can wait for the init's status and signal it without a pid race."""
    import ctypes  # the shim alone needs it

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _reap(pid: int) -> int | None:
    """Reap every child that has ended (strays of runc's included); ``pid``'s exit status
    (128+N for a signal N) if it was among them."""
    return _reap_all().get(pid)


def _watch_children() -> int:
    """Become the subreaper of the container's init and have SIGCHLD wake a select loop: the
    read end of the wakeup pipe (each serve loop selects on it)."""
    become_subreaper()
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)  # a handler: it wakes the loop
    return wake_r


def _serve_terminal(shim: _Shim, *, relay_stdin: bool) -> int:
    from lamina.runtime import attach

    config = shim.config
    wake_r = _watch_children()
    os.chdir(config.bundle)  # runc runs here too: both name the socket relative to it
    listener = console.listen(console.SOCKET_NAME)
    try:
        try:
            runc = subprocess.Popen(
                config.runc_argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            return shim.failed(f"cannot run {config.runc_argv[0]}: {exc.strerror or exc}", 125)
        attach_listener = attach.listen(config.record_dir)  # while runc starts it
        _, stderr = runc.communicate()
        if runc.returncode != 0:
            _runc_delete(config)
            return shim.start_error(runc.returncode, stderr)
        pid = read_pid(config.record_dir / PID_FILE)
        if pid is None:
            _runc_delete(config)  # --force: kills the process we cannot name
            return shim.failed("runc started the container but wrote no pid file", 125)
        try:
            master = console.receive_master(listener)
        except OSError as exc:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _runc_delete(config)
            return shim.failed(f"no terminal from runc: {exc}", 125)
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(console.SOCKET_NAME)

    def resize() -> None:
        if size := console.terminal_size():  # the attached launcher's terminal, if any
            with contextlib.suppress(OSError):
                console.set_size(master, size)

    def resize_to(rows: int, cols: int) -> None:  # an attach client's terminal
        with contextlib.suppress(OSError):
            console.set_size(master, (rows, cols))

    if config.attach:
        shim.on_winch = resize
    shim.aim(pid)
    memcg = cgroups.memory_cgroup(pid)
    server = attach.Server(
        attach_listener,
        directory=config.record_dir,
        tty=True,
        # A second fd for the master, so the clients' input has its own place in the
        # select loop; a container without -i takes none.
        sink=os.dup(master) if config.open_stdin else None,
        stdin_once=False,
        on_signal=shim.send,
        on_resize=resize_to,
    )
    escape = None
    if relay_stdin and config.detach_keys:
        escape = attach.EscapeFilter(config.detach_keys)
    started_at = shim.running(pid, detachable=escape is not None)
    code = _copy_terminal(
        master, pid, wake_r, shim=shim, relay_stdin=relay_stdin, server=server, escape=escape
    )
    oom = memcg is not None and cgroups.oom_kills(memcg) > 0  # before delete removes it
    _runc_delete(config)
    code = shim.exited(code, started_at=started_at, oom_killed=oom)
    server.finish(code)
    return code


def _runc_delete(config: ShimConfig) -> None:
    """Remove what a detached runc left (best effort: ``Runtime`` deletes leftovers too)."""
    if config.delete_argv:
        with contextlib.suppress(OSError):
            subprocess.run(config.delete_argv, capture_output=True, check=False)


def _copy_terminal(
    master: int,
    pid: int,
    wake_r: int,
    *,
    shim: _Shim,
    relay_stdin: bool,
    server: attach.Server,
    escape: attach.EscapeFilter | None,
) -> int:
    """Copy the pty master to the output and (``relay_stdin``) our stdin to the master until
    the init ``pid`` has exited and the master is drained; the init's exit status. Our stdin
    is watched for the detach keys with ``escape``: then the launcher is let go."""
    from lamina.runtime import attach

    os.set_blocking(master, False)
    output = _Output(
        LogWriter(shim.config.log_path, options=shim.config.log),
        attach=shim.config.attach,
        clients=server,
    )
    sel = selectors.PollSelector()  # poll takes any fd (epoll refuses a regular-file stdin)
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    sel.register(master, selectors.EVENT_READ, "master")
    if relay_stdin:
        sel.register(0, selectors.EVENT_READ, "stdin")
    server.watch(sel)
    to_master = bytearray()
    master_open = True

    def close_terminal() -> None:
        nonlocal master_open
        master_open = False
        for fd in (master, 0):
            with contextlib.suppress(KeyError):
                sel.unregister(fd)

    code = _reap(pid)  # it may have ended before the SIGCHLD handler could tell us
    if code is not None:
        server.unwatch()
    quiet_until = time.monotonic() + _DRAIN
    # Until the init has exited, and then until the master reports EOF (EIO: every holder of
    # the slave end is gone) or stays silent for _DRAIN seconds. Once it has exited, the
    # clients attached get what is left and no input; no more are taken.
    while code is None or (master_open and time.monotonic() < quiet_until):
        timeout = None if code is None else max(0.0, quiet_until - time.monotonic())
        for key, mask in sel.select(timeout):
            if key.data == "wake":
                _drain(wake_r)
            elif key.data == attach.TAG:
                server.ready(key.fd, mask)
            elif key.data == "stdin" and master_open:
                try:
                    data = os.read(0, 1 << 16)
                except OSError:
                    data = b""
                if not data:  # EOF: the container keeps its terminal, we stop feeding it
                    sel.unregister(0)
                    continue
                detached = False
                if escape is not None:
                    data, detached = escape.feed(data)
                if detached:
                    sel.unregister(0)
                    shim.launcher_detached(output)
                if not data:
                    continue
                to_master += data
                sel.modify(master, selectors.EVENT_READ | selectors.EVENT_WRITE, "master")
            elif master_open:
                if mask & selectors.EVENT_WRITE and to_master:
                    try:
                        del to_master[: os.write(master, to_master)]
                    except BlockingIOError:
                        pass
                    except OSError:
                        to_master.clear()
                    if not to_master:
                        sel.modify(master, selectors.EVENT_READ, "master")
                if mask & selectors.EVENT_READ:
                    try:
                        data = os.read(master, 1 << 16)
                    except BlockingIOError:
                        continue
                    except OSError:  # EIO
                        data = b""
                    if data:
                        output.emit("stdout", data)
                        quiet_until = time.monotonic() + _DRAIN
                    else:
                        close_terminal()
        if code is None and (code := _reap(pid)) is not None:
            quiet_until = time.monotonic() + _DRAIN
            server.unwatch()
    server.unwatch()
    sel.close()
    os.close(master)
    output.close()
    return code


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass
