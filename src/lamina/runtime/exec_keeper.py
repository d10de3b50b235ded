"""``exec -d``: a process started in a running container and left to run there.

``runc exec --detach`` starts the process and exits; the process, whose parent runc was, is
then an orphan, and the kernel hands it to the nearest child subreaper above runc. Docker's
containerd-shim is that subreaper. lamina has no daemon, so a *keeper* plays the part: forked
from the CLI (no exec), double-forked out of its session, it makes itself a child subreaper,
runs ``runc exec --detach --pid-file``, reports the outcome to the CLI through the sync pipe
(``{"pid": N}`` or ``{"error": MSG, "exit_code": 125|126|127}``, as the shim does), and then
only reaps: it exits once the exec'd process has. Its output goes to /dev/null (Docker drops
a detached exec's output too); nothing else waits for its status.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lamina.runtime import shim
from lamina.runtime.runc import last_error


def start(argv: Sequence[str], *, pid_file: Path, log_path: Path) -> dict[str, Any]:
    """Fork the keeper for ``argv`` (a ``runc exec --detach --pid-file pid_file``); the
    outcome it reports ({} if it died without one). Returns once the process runs or failed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover -- runs in the child; covered by integration tests
        os.close(r)
        _child(argv, pid_file=pid_file, log_path=log_path, sync_w=w)
    os.close(w)
    os.waitpid(pid, 0)  # the middle child exits as soon as it has forked the keeper
    chunks = []
    while chunk := os.read(r, 4096):
        chunks.append(chunk)
    os.close(r)
    raw = b"".join(chunks).strip()
    message: dict[str, Any] = json.loads(raw) if raw else {}
    return message


def _child(argv: Sequence[str], *, pid_file: Path, log_path: Path, sync_w: int) -> None:
    code = 125
    try:
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        shim.arrange_fds(attach=False, stdin_fd=None, sync_w=sync_w)
        shim.become_subreaper()
        code = _keep(argv, pid_file=pid_file, log_path=log_path)
    except BaseException:
        with contextlib.suppress(BaseException):
            shim.send_sync({"error": "the exec keeper failed", "exit_code": 125})
    finally:
        os._exit(code)


def _keep(argv: Sequence[str], *, pid_file: Path, log_path: Path) -> int:
    try:
        # No pipes: the process inherits runc's stdio, and would hold a pipe open for its life.
        runc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    except OSError as exc:
        shim.send_sync({"error": f"cannot run {argv[0]}: {exc.strerror or exc}", "exit_code": 125})
        return 125
    pid = shim.read_pid(pid_file)
    if runc.returncode != 0 or pid is None:
        detail = last_error(log_path) or f"runc exec exited with status {runc.returncode}"
        shim.send_sync({"error": detail, "exit_code": shim.start_failure_status(detail)})
        return 125
    shim.send_sync({"pid": pid})
    while True:  # the exec'd process is our child now (and whatever it orphans)
        try:
            got, _ = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if got == pid:
            return 0
