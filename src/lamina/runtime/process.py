"""A second process in a running container (``exec``): its ``process.json``, and running it.

It starts from the container's own ``process`` (so the capabilities, rlimits and
no-new-privileges it was given apply to the exec'd process too; seccomp, masked and read-only
paths are container-wide and runc applies them to every process it joins) and changes only
what ``docker exec`` may change: the argv, the env (merged by key over the container's), the
working directory, the user (resolved in the image), and whether it gets a terminal.

Lookups go through ``/proc/<pid>/root`` of the container's init process: that is the
container's root *in its own mount namespace*, so a command or ``/etc/passwd`` that lives in a
volume or a bind mount is seen as the process will see it (the host's merged dir would not
show those mounts).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct

from lamina.errors import UsageError
from lamina.runtime.defaults import DEFAULT_PATH
from lamina.runtime.errors import (
    CommandNotExecutableError,
    CommandNotFoundError,
    ContainerStartError,
    start_error,
)
from lamina.runtime.rootfs import blocking_account_file, find_command, open_in_root
from lamina.runtime.shim import FORWARDED
from lamina.runtime.signals import Wakeup
from lamina.runtime.users import additional_groups, resolve_user


class ExecSpec(Struct, frozen=True, kw_only=True):
    """What ``lamina exec`` asked for, in Docker's terms."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()  # "KEY=value", over the container's env
    cwd: str | None = None  # None: the container's working directory
    user: str | None = None  # None: the container's user
    tty: bool = False
    privileged: bool = False  # every capability lamina holds, as ``--privileged`` gives a run


def merge_env(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """``base`` with ``extra`` overriding by key; new keys are appended in order."""
    keys = {e.partition("=")[0] for e in extra}
    return [e for e in base if e.partition("=")[0] not in keys] + list(extra)


def exec_process(
    container_process: dict[str, Any],
    run: ExecSpec,
    *,
    container_id: str,
    root: Path,
    group_add: Sequence[str] = (),
) -> dict[str, Any]:
    """The runtime-spec ``process`` for ``run`` in the container whose own process is
    ``container_process``; ``root`` is the container's root as its processes see it. A
    ``--user`` of the exec gets the container's ``group_add`` groups too, as Docker's.

    Raises UsageError (a relative working dir, UnknownUserError), ContainerStartError (a
    working dir that is missing or not a dir), CommandNotFoundError (127),
    CommandNotExecutableError (126)."""
    if not run.args:
        raise UsageError("no command specified")
    cwd = run.cwd if run.cwd else str(container_process.get("cwd") or "/")
    if not cwd.startswith("/"):
        raise UsageError(f"the working directory {cwd!r} is not an absolute path")
    process = copy.deepcopy(container_process)
    env = merge_env(process.get("env") or [], run.env)
    if run.user is not None:
        user = resolve_user(run.user, rootfs=root)
        proc_user: dict[str, Any] = {"uid": user.uid, "gid": user.gid}
        gids = [*user.additional_gids, *additional_groups(group_add, rootfs=root)]
        if gids:
            proc_user["additionalGids"] = gids
        process["user"] = proc_user
        if not any(e.startswith("HOME=") for e in run.env):
            env = merge_env(env, [f"HOME={user.home}"])
    if run.tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    path_env = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
    _check_cwd(root, cwd, container_id=container_id)
    blocking = blocking_account_file(root)
    if blocking is not None:
        raise ContainerStartError(
            f"failed to exec in container {container_id}: {blocking} is a FIFO or a device:"
            " runc would block opening it",
            container_id=container_id,
        )
    command = run.args[0]
    found = find_command(root, command, path_env=path_env, cwd=cwd)
    if found is None:
        raise CommandNotFoundError(container_id=container_id, command=command, verb="exec")
    if not found.executable:
        raise CommandNotExecutableError(
            container_id=container_id, command=command, reason=found.reason, verb="exec"
        )
    process.update(args=list(run.args), env=env, cwd=cwd, terminal=run.tty)
    if run.privileged:
        # Docker's exec --privileged: the capability sets, nothing else (seccomp, masked and
        # read-only paths stay the container's); inheritable stays empty (CVE-2022-24769).
        from lamina.runtime.spec import capabilities

        caps = capabilities(privileged=True, cap_add=(), cap_drop=())
        process["capabilities"] = {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
            "inheritable": [],
            "ambient": [],
        }
    process.pop("consoleSize", None)
    return process


def _check_cwd(root: Path, cwd: str, *, container_id: str) -> None:
    """Refuse, in runc's words, a working dir the process could not chdir to: runc would
    say so itself, but on the stderr it shares with the process (so the error would show
    twice)."""
    try:
        os.close(open_in_root(root, cwd, flags=os.O_PATH | os.O_DIRECTORY))
    except OSError as exc:
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise start_error(
            container_id=container_id,
            command="",
            exit_code=125,
            detail=f"chdir to cwd ({json.dumps(cwd)}) set in config.json failed: {reason}",
            verb="exec",
        ) from exc


def run_foreground(argv: list[str], *, stdin: bool) -> int:
    """Run ``argv`` (a foreground runc) with our stdio and wait, forwarding the signals we
    get that runc would not get itself: a terminal delivers INT/QUIT/WINCH to its whole
    foreground process group, runc included, so those are passed on only when we are not in
    it (a second copy would reach the process twice)."""
    terminal_sends = False
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            terminal_sends = terminal_sends or os.tcgetpgrp(fd) == os.getpgrp()
    from_terminal = {signal.SIGINT, signal.SIGQUIT, signal.SIGWINCH}
    forwarded = [s for s in FORWARDED if not (terminal_sends and s in from_terminal)]
    ignored = [s for s in from_terminal if terminal_sends]
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    old_handlers: dict[int, Any] = {}
    try:
        proc = subprocess.Popen(argv, stdin=None if stdin else subprocess.DEVNULL)

        def forward(signum: int, _frame: object) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signum)

        for sig in forwarded:
            old_handlers[sig] = signal.signal(sig, forward)
        for sig in ignored:
            old_handlers[sig] = signal.signal(sig, signal.SIG_IGN)
        with Wakeup() as wake:  # a signal never waits for the process's end
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            wake.wait_process(proc.pid)
            status = proc.wait()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)
    return status if status >= 0 else 128 - status
