"""Running a prepared bundle: the runtime facade the container service calls.

::

    rt = Runtime(state_dir=root / "runtime")
    write_bundle(bundle, build_spec(RunSpec(args=("sh", "-c", "echo hi")), rootfs=merged))
    status = rt.run_attached(cid, bundle, stdin=False)     # like `docker run`
    pid = rt.start_detached(cid, bundle)                   # like `docker run -d`
    status = rt.attach(cid, stdin=True, tty=True, sig_proxy=False)  # like `docker attach`
    status = rt.exec(cid, ["sh", "-c", "ls /"], stdin=False)  # like `docker exec`
    rt.stop(cid, timeout=10)                               # stop signal, then SIGKILL
    for stream, line, time in rt.logs(cid, follow=False): ...
    rt.delete(cid, force=True)

Layout under ``state_dir``: ``runc/`` is runc's ``--root``; ``shim/<id>/`` holds the state
record, runc's pid file and log, and the shim's attach socket while it runs. The container's
output goes to ``<bundle>/<id>-json.log`` (Docker's place for it). Before anything starts, the
command is looked up in the rootfs from the host (fd-confined, never executed): a missing
command fails with :class:`CommandNotFoundError` (exit 127) and a non-executable one with
:class:`CommandNotExecutableError` (126), and the state record keeps status ``created`` with
that exit code and the error, as Docker leaves such a container.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import msgspec

from lamina.atomic import remove_tree
from lamina.errors import ContainerNotFoundError, NotATerminalError, UsageError
from lamina.runtime import console, shim
from lamina.runtime.defaults import DEFAULT_PATH
from lamina.runtime.errors import (
    AttachError,
    CommandNotExecutableError,
    CommandNotFoundError,
    ContainerNotPausedError,
    ContainerNotRunningError,
    ContainerPausedError,
    ContainerRunningError,
    ContainerStartError,
    RuncError,
    start_error,
)
from lamina.runtime.logs import DEFAULT_OPTIONS, LogEntry, LogOptions, read_log
from lamina.runtime.process import ExecSpec, exec_process, run_foreground
from lamina.runtime.rootfs import blocking_account_file, find_command
from lamina.runtime.runc import Runc, last_error
from lamina.runtime.signals import Wakeup, signal_number
from lamina.runtime.spec import (
    GROUP_ADD_ANNOTATION,
    LOG_ANNOTATION,
    STOP_SIGNAL_ANNOTATION,
    read_bundle,
)
from lamina.runtime.state import (
    SHIM_DIR,
    ContainerState,
    ContainerStatus,
    Record,
    observed_state,
    process_alive,
    read_record,
    write_record,
)

_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_KILL_WAIT: Final = 30.0  # seconds to wait for the exit after SIGKILL before giving up


class Runtime:
    """Containers' processes, run by runc under a lamina shim. Safe to use from several
    processes at once for different containers."""

    def __init__(self, *, state_dir: Path, runc_binary: str | None = None) -> None:
        self._runc = Runc(root=state_dir / "runc", binary=runc_binary)
        self._shims = state_dir / SHIM_DIR

    # -- starting -------------------------------------------------------------------------

    def run_attached(
        self,
        container_id: str,
        bundle: Path,
        *,
        stdin: bool,
        open_stdin: bool = False,
        stdin_once: bool = False,
        detach_keys: str | None = None,
    ) -> int | None:
        """Run the bundle with this process's stdout/stderr attached (``stdin``: pass our
        stdin too, else /dev/null -- or, with ``open_stdin``, a pipe attach clients may
        write to); signals this process gets are forwarded. A process with a terminal
        (``process.terminal``) writes it to our stdout, whatever our stdio is; with ``stdin``
        from a terminal, that terminal is raw while the process runs, and typing the
        ``detach_keys`` (Docker's syntax, default ctrl-p,ctrl-q) leaves the process running
        and returns None (its shim, still this process's child, is a zombie from its end
        until this process exits). Else returns the container's exit status. Raises
        CommandNotFoundError (127), CommandNotExecutableError (126), ContainerStartError
        (125), InvalidDetachKeysError."""
        config = self._prepare(
            container_id,
            bundle,
            attach=True,
            open_stdin=open_stdin,
            stdin_once=stdin_once,
            relay_stdin=stdin,
            detach_keys=detach_keys,
        )
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, shim.FORWARDED)
        old_handlers: dict[int, Any] = {}
        # Raw from before the start, as Docker's: the keys typed once the container shows a
        # prompt reach it unprocessed (a cooked terminal would take a ctrl-q of the detach
        # keys for flow control, and add a second "\r" to what the container prints).
        raw = console.raw_input(0) if config.terminal and stdin else contextlib.nullcontext()
        with raw:
            try:
                proc = shim.ShimProcess.spawn(config, detach=False, stdin_fd=0 if stdin else None)

                def forward(signum: int, _frame: object) -> None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signum)

                for sig in shim.FORWARDED:
                    old_handlers[sig] = signal.signal(sig, forward)
                with Wakeup() as wake:  # a signal never waits for the container's end
                    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                    message = proc.read_sync(wake)
                    if "pid" not in message:
                        proc.wait(wake)  # it exits right after reporting; reap it, then raise
                        self._check_started(config, message)
                    code = proc.wait(wake)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                for signum, handler in old_handlers.items():
                    signal.signal(signum, handler)
        if code is None:
            return None  # detached: the shim goes on without us
        rec = read_record(config.record_dir)
        return rec.state.exit_code if rec is not None else code

    def start_detached(
        self,
        container_id: str,
        bundle: Path,
        *,
        open_stdin: bool = False,
        stdin_once: bool = False,
    ) -> int:
        """Start the bundle under a detached shim; returns the container's host pid once it
        runs. Output goes only to the log (and attach clients); with ``open_stdin`` its stdin
        is kept open for attach clients (``run -di``; ``stdin_once``: until the input of one
        of them ends, Docker's StdinOnce). Raises like :meth:`run_attached`."""
        config = self._prepare(
            container_id, bundle, attach=False, open_stdin=open_stdin, stdin_once=stdin_once
        )
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, shim.FORWARDED)
        try:
            proc = shim.ShimProcess.spawn(config, detach=True, stdin_fd=None)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        message = proc.read_sync()
        self._check_started(config, message)
        return int(message["pid"])

    def _prepare(
        self,
        container_id: str,
        bundle: Path,
        *,
        attach: bool,
        open_stdin: bool,
        stdin_once: bool,
        relay_stdin: bool = False,
        detach_keys: str | None = None,
    ) -> shim.ShimConfig:
        """The shim's config. The launcher's stdin relayed to a terminal is watched for
        ``detach_keys`` (None: Docker's default), checked before anything changes."""
        keys = b""
        if relay_stdin and read_bundle(bundle)["process"].get("terminal"):
            from lamina.runtime.attach import detach_keys as parse_keys

            keys = parse_keys(detach_keys)
        record_dir = self._record_dir(container_id)
        old = read_record(record_dir)
        if old is not None and self._live(old):
            raise ContainerRunningError(container_id)
        if self._runc.exists(container_id):  # left behind by a shim that was killed
            with contextlib.suppress(RuncError):
                self._runc.delete(container_id, force=True)
        remove_tree(record_dir, ignore_errors=True)
        record_dir.mkdir(mode=0o700, parents=True)
        bundle = bundle.resolve()
        log_path = bundle / f"{container_id}-json.log"
        self._precheck(container_id, bundle, record_dir=record_dir, log_path=log_path)
        spec = read_bundle(bundle)
        process = spec["process"]
        terminal = bool(process.get("terminal"))
        log = spec.get("annotations", {}).get(LOG_ANNOTATION)
        return shim.ShimConfig(
            container_id=container_id,
            bundle=bundle,
            record_dir=record_dir,
            log_path=log_path,
            runc_argv=tuple(
                self._runc.run_argv(
                    container_id,
                    bundle=bundle,
                    pid_file=record_dir / shim.PID_FILE,
                    log_path=record_dir / shim.RUNC_LOG,
                    console_socket=console.SOCKET_NAME if terminal else None,
                )
            ),
            attach=attach,
            command=process["args"][0],
            terminal=terminal,
            delete_argv=tuple(self._runc.delete_argv(container_id)),
            open_stdin=open_stdin,
            stdin_once=stdin_once,
            detach_keys=keys,
            log=msgspec.json.decode(log, type=LogOptions) if log else DEFAULT_OPTIONS,
        )

    def _precheck(
        self, container_id: str, bundle: Path, *, record_dir: Path, log_path: Path
    ) -> None:
        spec = read_bundle(bundle)
        process = spec["process"]
        root = Path(spec["root"]["path"])
        root = root if root.is_absolute() else bundle / root
        path_env = next(
            (e[5:] for e in process.get("env", ()) if e.startswith("PATH=")), DEFAULT_PATH
        )
        command = process["args"][0]
        blocking = blocking_account_file(root)
        if blocking is not None:
            self._refuse(
                ContainerStartError(
                    f"failed to start container {container_id}: {blocking} in the image is a"
                    " FIFO or a device: runc would block opening it",
                    container_id=container_id,
                ),
                container_id=container_id, bundle=bundle, record_dir=record_dir,
                log_path=log_path,
            )  # fmt: skip
        if any(m.get("destination") == command for m in spec.get("mounts", ())):
            # A binary the bundle mounts in (--init's /sbin/docker-init): it is not in the
            # rootfs, and what it runs is its own to report (tini: exit 127 for a missing one).
            return
        found = find_command(root, command, path_env=path_env, cwd=process.get("cwd", "/"))
        error: ContainerStartError | None = None
        if found is None:
            error = CommandNotFoundError(container_id=container_id, command=command)
        elif not found.executable:
            error = CommandNotExecutableError(
                container_id=container_id, command=command, reason=found.reason
            )
        if error is None:
            return
        self._refuse(
            error, container_id=container_id, bundle=bundle, record_dir=record_dir,
            log_path=log_path,
        )  # fmt: skip

    @staticmethod
    def _refuse(
        error: ContainerStartError,
        *,
        container_id: str,
        bundle: Path,
        record_dir: Path,
        log_path: Path,
    ) -> NoReturn:
        """Record why the container did not start (``inspect`` shows it), then raise."""
        state = ContainerState(
            status=ContainerStatus.CREATED, exit_code=error.exit_status, error=str(error)
        )
        write_record(
            record_dir,
            Record(
                container_id=container_id,
                bundle=str(bundle),
                log_path=str(log_path),
                state=state,
            ),
        )
        raise error

    @staticmethod
    def _check_started(config: shim.ShimConfig, message: dict[str, Any]) -> None:
        if "pid" in message:
            return
        detail = str(message.get("error") or "the lamina shim died before the container started")
        raise start_error(
            container_id=config.container_id,
            command=config.command,
            exit_code=int(message.get("exit_code", 125)),
            detail=detail,
        )

    # -- a second process -----------------------------------------------------------------

    def exec(
        self,
        container_id: str,
        args: Sequence[str],
        *,
        env: Sequence[str] = (),
        cwd: str | None = None,
        user: str | None = None,
        tty: bool = False,
        stdin: bool = False,
        privileged: bool = False,
    ) -> int:
        """Run ``args`` in the running container (``docker exec``) with this process's
        stdout/stderr, and its stdin with ``stdin`` (else /dev/null). ``env`` overrides the
        container's by key; ``cwd``/``user`` default to the container's; ``privileged`` gives
        it every capability lamina holds (``exec --privileged``). ``tty`` gives the
        process a terminal when this process has one to relay it to (as runc needs), else
        pipes. Returns the process's exit status. Raises ContainerNotRunningError,
        CommandNotFoundError (127), CommandNotExecutableError (126), ContainerStartError (125),
        UsageError (``tty`` with ``stdin`` that is not a terminal, as Docker)."""
        rec, pid = self._running(container_id)
        if tty and stdin and not os.isatty(0):
            raise NotATerminalError()
        tty = tty and any(os.isatty(fd) for fd in (0, 1, 2))
        exec_spec = ExecSpec(
            args=tuple(args), env=tuple(env), cwd=cwd, user=user, tty=tty, privileged=privileged
        )
        with self._process_file(rec, pid, exec_spec) as process_path:
            log_path = process_path.with_suffix(".log")
            argv = self._runc.exec_argv(container_id, process=process_path, log_path=log_path)
            code = run_foreground(argv, stdin=stdin)
            if code == 255 and (detail := last_error(log_path)):
                raise start_error(
                    container_id=container_id,
                    command=args[0],
                    exit_code=shim.start_failure_status(detail),
                    detail=detail,
                    verb="exec",
                )
            return code

    def exec_detached(
        self,
        container_id: str,
        args: Sequence[str],
        *,
        env: Sequence[str] = (),
        cwd: str | None = None,
        user: str | None = None,
        privileged: bool = False,
    ) -> int:
        """Start ``args`` in the running container and leave it running (``docker exec -d``):
        no stdio (its output is dropped), no terminal; kept and reaped by an exec keeper
        (:mod:`lamina.runtime.exec_keeper`). Returns its host pid once it runs. Raises as
        :meth:`exec` does when it cannot start."""
        from lamina.runtime import exec_keeper

        rec, pid = self._running(container_id)
        exec_spec = ExecSpec(
            args=tuple(args), env=tuple(env), cwd=cwd, user=user, privileged=privileged
        )
        with self._process_file(rec, pid, exec_spec) as process_path:
            log_path = process_path.with_suffix(".log")
            pid_file = process_path.with_suffix(".pid")
            argv = self._runc.exec_detached_argv(
                container_id, process=process_path, pid_file=pid_file, log_path=log_path
            )
            message = exec_keeper.start(argv, pid_file=pid_file, log_path=log_path)
        if "pid" not in message:
            detail = str(message.get("error") or "the exec keeper died before the exec started")
            raise start_error(
                container_id=container_id,
                command=args[0],
                exit_code=int(message.get("exit_code", 125)),
                detail=detail,
                verb="exec",
            )
        return int(message["pid"])

    # -- attaching ------------------------------------------------------------------------

    def attach(
        self,
        container_id: str,
        *,
        stdin: bool,
        tty: bool,
        sig_proxy: bool,
        detach_keys: str | None = None,
    ) -> int | None:
        """Attach to the running container through its shim's socket (``docker attach``):
        its output from now on to our stdout/stderr, with ``stdin`` ours to its stdin (if
        it keeps one open), with ``sig_proxy`` the signals we get to its process, and for a
        ``tty`` container our terminal's size. Returns its exit status once it ends, or
        None when the ``detach_keys`` (Docker's syntax; default ctrl-p,ctrl-q) were typed.
        A container that ended before we got to it gives its exit status at once. Raises
        InvalidDetachKeysError, AttachError (no socket, or the connection was lost)."""
        from lamina.runtime import attach_client
        from lamina.runtime.attach import detach_keys as parse_keys

        keys = parse_keys(detach_keys)
        try:
            sock = attach_client.connect(self._record_dir(container_id))
        except OSError:
            return self._attach_failed(
                container_id,
                f"container {container_id[:12]} serves no attach socket: it was started by"
                " an earlier lamina (restart it to attach)",
            )
        with sock:
            try:
                return attach_client.relay(
                    sock, stdin=stdin, tty=tty, sig_proxy=sig_proxy, detach_keys=keys
                )
            except ConnectionError:
                return self._attach_failed(
                    container_id,
                    f"lost the attach connection to container {container_id[:12]}, which"
                    " still runs (its shim drops a client that falls far behind its output)",
                )

    def _attach_failed(self, container_id: str, message: str) -> int:
        """The exit status of a container that ended as we attached; AttachError with
        ``message`` if it runs."""
        st = self.state(container_id)
        if st.status is ContainerStatus.RUNNING:
            raise AttachError(message, container_id=container_id)
        return st.exit_code

    def _running(self, container_id: str) -> tuple[Record, int]:
        """The record and host pid of a running container; ContainerNotRunningError else."""
        rec = self._record(container_id)
        st = self.state(container_id)
        if st.status is not ContainerStatus.RUNNING or not st.pid:
            raise ContainerNotRunningError(container_id)
        return rec, st.pid

    @contextlib.contextmanager
    def _process_file(self, rec: Record, pid: int, exec_spec: ExecSpec) -> Iterator[Path]:
        """runc's process.json for ``exec_spec`` in the container ``rec`` (its init is host
        ``pid``), written in the container's record dir for the ``with`` block; it and its
        ``.log`` and ``.pid`` siblings are removed afterwards."""
        import tempfile  # exec only

        spec = read_bundle(Path(rec.bundle))
        process = exec_process(
            spec["process"],
            exec_spec,
            container_id=rec.container_id,
            root=Path(f"/proc/{pid}/root"),
            group_add=json.loads(spec.get("annotations", {}).get(GROUP_ADD_ANNOTATION, "[]")),
        )
        fd, name = tempfile.mkstemp(
            prefix="exec-", suffix=".json", dir=self._record_dir(rec.container_id)
        )
        path = Path(name)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(process, f)
            yield path
        finally:
            for p in (path, path.with_suffix(".log"), path.with_suffix(".pid")):
                p.unlink(missing_ok=True)

    # -- observing ------------------------------------------------------------------------

    def _record_dir(self, container_id: str) -> Path:
        if not _ID_RE.fullmatch(container_id):
            raise UsageError(f"invalid container id {container_id!r}")
        return self._shims / container_id

    def _record(self, container_id: str) -> Record:
        rec = read_record(self._record_dir(container_id))
        if rec is None:
            raise ContainerNotFoundError(f"no such container: {container_id}")
        return rec

    def _live(self, rec: Record) -> bool:
        """Whether the container's process may still run (its shim or runc says so)."""
        st = observed_state(
            rec,
            directory=self._record_dir(rec.container_id),
            runc_state=lambda: self.runc_state(rec.container_id),
        )
        return st.status is ContainerStatus.RUNNING

    def runc_state(self, container_id: str) -> dict[str, Any] | None:
        """``runc state``'s answer, None when runc does not know the container."""
        return self._runc.state(container_id)

    def state(self, container_id: str) -> ContainerState:
        """The container's state. Raises ContainerNotFoundError if it never started here."""
        rec = self._record(container_id)
        return observed_state(
            rec,
            directory=self._record_dir(container_id),
            runc_state=lambda: self.runc_state(container_id),
        )

    def logs(
        self, container_id: str, *, follow: bool = False, options: LogOptions = DEFAULT_OPTIONS
    ) -> Iterator[LogEntry]:
        """The container's output as ``(stream, line, time)``; with ``follow``, until it exits;
        ``options``: how it is rotated (the rotated files are read first, a rotation is
        followed)."""
        rec = self._record(container_id)

        def finished() -> bool:
            return self.state(container_id).status is not ContainerStatus.RUNNING

        return read_log(Path(rec.log_path), follow=follow, finished=finished, options=options)

    def top(
        self, container_id: str, ps_args: Sequence[str] = ()
    ) -> tuple[list[str], list[list[str]]]:
        """``docker top``: the host's ``ps`` (with ``ps_args``, default ``-ef``), its header and
        the rows of the container's processes (runc's pids), kept by the PID column as Docker
        keeps them. Raises ContainerNotFoundError (never started), ContainerNotRunningError,
        UsageError when ``ps`` fails or shows no PID column."""
        if self.state(container_id).status is not ContainerStatus.RUNNING:
            raise ContainerNotRunningError(container_id)
        pids = set(self._runc.pids(container_id))
        args = list(ps_args) or ["-ef"]
        try:
            proc = subprocess.run(["ps", *args], capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise UsageError("top needs ps (Debian's procps)") from exc
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or [""])[0]
            raise UsageError(f"ps {' '.join(args)} failed: {first}")
        lines = proc.stdout.splitlines()
        titles = lines[0].split() if lines else []
        if "PID" not in titles:
            raise UsageError(f"no PID column in the output of ps {' '.join(args)}")
        at = titles.index("PID")
        rows = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > at and fields[at].isdigit() and int(fields[at]) in pids:
                rows.append(fields)
        return titles, rows

    # -- signalling and removing ----------------------------------------------------------

    def kill(self, container_id: str, sig: int | str = "SIGKILL", *, thaw: bool = True) -> None:
        """Send ``sig`` to the container's init process; a paused container is then resumed
        if ``thaw`` (so the signal is acted on, as Docker resumes one it stops or kills).
        Raises ContainerNotRunningError."""
        name = str(signal_number(sig))  # runc takes numbers: it knows no "SIGRTMIN+3"
        st = self.state(container_id)
        if st.status is not ContainerStatus.RUNNING:
            raise ContainerNotRunningError(container_id)
        try:
            self._runc.kill(container_id, name)
        except RuncError:
            if self.state(container_id).status is ContainerStatus.RUNNING:
                raise
            raise ContainerNotRunningError(container_id) from None
        if thaw and st.paused:
            with contextlib.suppress(RuncError):  # it may have been resumed or ended meanwhile
                self._runc.resume(container_id)

    def pause(self, container_id: str) -> None:
        """Freeze the container's processes (``runc pause``). Raises ContainerNotRunningError,
        ContainerPausedError if it is paused already."""
        st = self.state(container_id)
        if st.status is not ContainerStatus.RUNNING:
            raise ContainerNotRunningError(container_id)
        if st.paused:
            raise ContainerPausedError(container_id)
        self._runc.pause(container_id)

    def resume(self, container_id: str) -> None:
        """Thaw a paused container. Raises ContainerNotPausedError (running or not)."""
        if not self.state(container_id).paused:
            raise ContainerNotPausedError(container_id)
        self._runc.resume(container_id)

    def update(self, container_id: str, resources: Mapping[str, Any]) -> dict[str, Any]:
        """Change the running (or paused) container's cgroup limits (``runc update``:
        ``resources`` as :meth:`Runc.update` takes them); the limits it had, which the same
        call with them puts back. If runc fails, they are written back at once -- runc writes
        one controller after another and stops at the first refusal (cpu.shares after memory;
        memory+swap before memory), so a refused update would otherwise leave part of itself
        in force -- and its error is raised. Raises ContainerNotRunningError."""
        from lamina.runtime.cgroups import current_limits

        _, pid = self._running(container_id)
        before = current_limits(pid)
        try:
            self._runc.update(container_id, resources)
        except RuncError as exc:
            if before:
                try:
                    self._runc.update(container_id, before)
                except RuncError as again:
                    exc.add_note(f"the limits it had could not be put back: {again}")
            raise
        return before

    def stop(self, container_id: str, *, timeout: float | None = 10.0) -> int:
        """Send the stop signal, SIGKILL after ``timeout`` seconds (None: never, wait for the
        exit however long it takes); the exit status. A container that is not running is left
        alone (as ``docker stop``)."""
        rec = self._record(container_id)
        if self.state(container_id).status is not ContainerStatus.RUNNING:
            return self.state(container_id).exit_code
        try:
            annotations = read_bundle(Path(rec.bundle)).get("annotations", {})
        except FileNotFoundError:
            annotations = {}
        with contextlib.suppress(ContainerNotRunningError):
            self.kill(container_id, annotations.get(STOP_SIGNAL_ANNOTATION, "SIGTERM"))
        if not self._wait_exit(rec, timeout):
            with contextlib.suppress(ContainerNotRunningError):
                self.kill(container_id, "SIGKILL")
            self._wait_exit(rec, _KILL_WAIT)
        return self.state(container_id).exit_code

    def _wait_exit(self, rec: Record, timeout: float | None) -> bool:
        """Wait up to ``timeout`` s (None: without end) for the shim to finish; whether the
        process has ended."""
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        pidfd = -1
        if process_alive(rec.shim_pid, rec.shim_start_time):
            with contextlib.suppress(OSError):
                pidfd = os.pidfd_open(rec.shim_pid)
        try:
            while True:
                if not self._live(self._record(rec.container_id)):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if pidfd >= 0:
                    ready, _, _ = select.select([pidfd], [], [], None if left == math.inf else left)
                    if ready:  # the shim is gone; if the process is not, runc is asked from now
                        os.close(pidfd)
                        pidfd = -1
                else:  # no shim to watch (it was killed): poll runc
                    time.sleep(min(left, 0.05))
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    def delete(self, container_id: str, *, force: bool = False) -> None:
        """Forget the container's process state (not its bundle or logs). Idempotent.
        Raises ContainerRunningError for a running container unless ``force``, which kills
        it first."""
        record_dir = self._record_dir(container_id)
        rec = read_record(record_dir)
        if rec is not None and self._live(rec):
            if not force:
                raise ContainerRunningError(container_id)
            with contextlib.suppress(ContainerNotRunningError, RuncError):
                self.kill(container_id, "SIGKILL")
            self._wait_exit(rec, _KILL_WAIT)
        if self._runc.exists(container_id):
            self._runc.delete(container_id, force=True)
        remove_tree(record_dir, ignore_errors=True)
