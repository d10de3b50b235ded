"""Invoking runc (runtime-spec 1.0 CLI: run/kill/delete/state; update) with a private state root.

Every call passes ``--root`` so lamina's containers never mix with another engine's, and
``--log``/``--log-format json`` where runc's own errors must be told apart from the
container's stderr (runc prints them to stderr *and* the log; the log is what lamina reads).
runc is looked up once: ``$LAMINA_RUNC``, then ``PATH``, then ``/usr/sbin/runc`` (Debian's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from lamina.runtime.errors import RuncError

_FALLBACK: Final = "/usr/sbin/runc"


def find_runc() -> str:
    """The runc binary to use. Raises RuncError if none is installed."""
    env = os.environ.get("LAMINA_RUNC")
    if env:
        return env
    found = shutil.which("runc") or (_FALLBACK if os.access(_FALLBACK, os.X_OK) else None)
    if found is None:
        raise RuncError("runc is not installed (apt-get install runc)", args=(), runc_status=127)
    return found


def last_error(log_path: Path) -> str:
    """The last ``level=error`` message in a runc ``--log-format json`` log ("" if none)."""
    try:
        lines = log_path.read_bytes().splitlines()
    except FileNotFoundError:
        return ""
    for raw in reversed(lines):
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg", ""))
    return ""


class Runc:
    """A runc binary bound to one state root."""

    def __init__(self, *, root: Path, binary: str | None = None) -> None:
        self.root = root
        self.binary = binary or find_runc()

    def _base(self, log_path: Path | None = None) -> list[str]:
        argv = [self.binary, "--root", str(self.root)]
        if log_path is not None:
            argv += ["--log", str(log_path), "--log-format", "json"]
        return argv

    def run_argv(
        self,
        container_id: str,
        *,
        bundle: Path,
        pid_file: Path,
        log_path: Path,
        console_socket: str | None = None,
    ) -> list[str]:
        """argv of a detached ``runc run``: it creates and starts the container, writes the
        init's pid to ``pid_file`` and exits (non-zero, its error in ``log_path``, if it could
        not), leaving waiting, signalling and ``delete`` to its caller (the shim, a child
        subreaper, so the init becomes its child). Without ``console_socket`` the init gets
        runc's own stdio; with it (a process that has a terminal), runc sends the pty master
        to that socket."""
        detach = ["--detach", *(["--console-socket", console_socket] if console_socket else [])]
        return [
            *self._base(log_path),
            "run",
            *detach,
            "--bundle",
            str(bundle),
            "--pid-file",
            str(pid_file),
            container_id,
        ]

    def delete_argv(self, container_id: str) -> list[str]:
        """argv of ``runc delete --force``, for a caller that cannot hold a :class:`Runc`."""
        return [*self._base(), "delete", "--force", container_id]

    def exec_argv(self, container_id: str, *, process: Path, log_path: Path) -> list[str]:
        """argv of a foreground ``runc exec``: it runs ``process`` (a runtime-spec process
        JSON) in the container, relays stdio (through a pty it holds when the process asks for
        a terminal, which needs one of runc's own stdio to be a terminal), forwards signals,
        and exits with the process's status; 255 with an error in ``log_path`` if it failed."""
        return [*self._base(log_path), "exec", "--process", str(process), container_id]

    def exec_detached_argv(
        self, container_id: str, *, process: Path, pid_file: Path, log_path: Path
    ) -> list[str]:
        """argv of ``runc exec --detach``: it starts ``process`` in the container, writes its
        pid to ``pid_file`` and exits (0; 255 with an error in ``log_path`` if it could not
        start it), leaving the process to the nearest child subreaper above it."""
        return [
            *self._base(log_path),
            "exec",
            "--detach",
            "--pid-file",
            str(pid_file),
            "--process",
            str(process),
            container_id,
        ]

    def _call(self, args: Sequence[str], *, stdin: bytes | None = None) -> bytes:
        argv = [*self._base(), *args]
        proc = subprocess.run(argv, input=stdin, capture_output=True, check=False)
        if proc.returncode != 0:
            message = _stderr_message(proc.stderr) or f"runc {args[0]} failed"
            raise RuncError(message, args=argv, runc_status=proc.returncode)
        return proc.stdout

    def kill(self, container_id: str, signal: str) -> None:
        """Send ``signal`` (a name such as ``SIGTERM``) to the container's init process."""
        self._call(["kill", container_id, signal])

    def pause(self, container_id: str) -> None:
        """Freeze every process of the container (its cgroup's freezer)."""
        self._call(["pause", container_id])

    def resume(self, container_id: str) -> None:
        """Thaw what :meth:`pause` froze."""
        self._call(["resume", container_id])

    def update(self, container_id: str, resources: Mapping[str, Any]) -> None:
        """Write ``resources`` (runtime-spec ``linux.resources`` members; a value left out or
        0 leaves its cgroup file alone) to the container's cgroups (``runc update -r -``)."""
        self._call(
            ["update", "--resources", "-", container_id], stdin=json.dumps(resources).encode()
        )

    def pids(self, container_id: str) -> list[int]:
        """The host pids of the container's processes (``runc ps``)."""
        out = json.loads(self._call(["ps", "--format", "json", container_id]) or b"[]")
        return [int(p) for p in out or []]

    def delete(self, container_id: str, *, force: bool) -> None:
        """Remove runc's state (and with ``force`` kill a live container first)."""
        self._call(["delete", *(["--force"] if force else []), container_id])

    def state(self, container_id: str) -> dict[str, Any] | None:
        """runc's view of the container, or None if runc does not know it."""
        if not self.exists(container_id):
            return None
        try:
            out = self._call(["state", container_id])
        except RuncError:
            if not self.exists(container_id):
                return None  # deleted between the check and the call
            raise
        data: dict[str, Any] = json.loads(out)
        return data

    def exists(self, container_id: str) -> bool:
        """Whether runc has state for ``container_id`` (a directory under its root)."""
        return (self.root / container_id).is_dir()

    def list_ids(self) -> list[str]:
        """Ids of every container runc keeps under this root."""
        try:
            return sorted(p.name for p in self.root.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []


def _stderr_message(stderr: bytes) -> str:
    """runc's logrus line ``time=... level=error msg="..."`` reduced to its message."""
    text = stderr.decode("utf-8", "replace").strip()
    if not text:
        return ""
    line = text.splitlines()[-1]
    key = 'msg="'
    start = line.find(key)
    if start < 0:
        return line
    body = line[start + len(key) :]
    end = body.rfind('"')
    return body[:end].replace('\\"', '"') if end >= 0 else body
