"""Errors of the runtime layer (all under ``lamina.errors.LaminaError``).

::

    LaminaError
    ├── ContainerStartError             exit 125: the runtime could not start the process
    │   ├── CommandNotExecutableError   exit 126: the command exists but cannot be invoked
    │   └── CommandNotFoundError        exit 127: the command does not exist in the image
    ├── RuncError(args, exit_status)    exit 125: a runc invocation failed
    ├── AttachError                     a running container's shim cannot be attached to
    └── ConflictError
        ├── ContainerNotRunningError    kill of a container that is not running
        └── ContainerRunningError       delete without force of a running container

They live here until ``lamina/errors.py`` takes them in; nothing branches on their text.
"""

from __future__ import annotations

from collections.abc import Sequence

from lamina.errors import ConflictError, LaminaError


def _failed(verb: str, container_id: str) -> str:
    """The message's lead: ``start`` for the container's own process, ``exec`` for another."""
    if verb == "exec":
        return f"failed to exec in container {container_id[:12]}: "
    return f"failed to start container {container_id[:12]}: "


class ContainerStartError(LaminaError):
    exit_status = 125

    def __init__(self, message: str, *, container_id: str) -> None:
        super().__init__(message)
        self.container_id = container_id


class CommandNotFoundError(ContainerStartError):
    exit_status = 127

    def __init__(
        self, *, container_id: str, command: str, detail: str = "", verb: str = "start"
    ) -> None:
        super().__init__(
            _failed(verb, container_id)
            + (detail or f'exec: "{command}": executable file not found in $PATH'),
            container_id=container_id,
        )
        self.command = command


class CommandNotExecutableError(ContainerStartError):
    exit_status = 126

    def __init__(
        self,
        *,
        container_id: str,
        command: str,
        reason: str,
        detail: str = "",
        verb: str = "start",
    ) -> None:
        super().__init__(
            _failed(verb, container_id) + (detail or f'exec: "{command}": {reason}'),
            container_id=container_id,
        )
        self.command = command
        self.reason = reason


def start_error(
    *, container_id: str, command: str, exit_code: int, detail: str, verb: str = "start"
) -> ContainerStartError:
    """The error for a start (or, ``verb="exec"``, an exec) that failed with ``exit_code``
    (125/126/127) and runc's text."""
    if exit_code == 127:
        return CommandNotFoundError(
            container_id=container_id, command=command, detail=detail, verb=verb
        )
    if exit_code == 126:
        return CommandNotExecutableError(
            container_id=container_id, command=command, reason="", detail=detail, verb=verb
        )
    return ContainerStartError(_failed(verb, container_id) + detail, container_id=container_id)


class RuncError(LaminaError):
    exit_status = 125

    def __init__(self, message: str, *, args: Sequence[str], runc_status: int) -> None:
        super().__init__(message)
        self.args_used = tuple(args)
        self.runc_status = runc_status


class AttachError(LaminaError):
    """No attachment to a running container: its shim serves no attach socket (it was
    started by an earlier lamina) or dropped the connection (the client fell behind)."""

    def __init__(self, message: str, *, container_id: str) -> None:
        super().__init__(message)
        self.container_id = container_id


class ContainerNotRunningError(ConflictError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id[:12]} is not running")
        self.container_id = container_id


class ContainerPausedError(ConflictError):
    """``pause`` of a paused container (Docker: "Container <id> is already paused")."""

    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id[:12]} is already paused")
        self.container_id = container_id


class ContainerNotPausedError(ConflictError):
    """``unpause`` of a container that is not paused (Docker: "Container <id> is not paused")."""

    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id[:12]} is not paused")
        self.container_id = container_id


class ContainerRunningError(ConflictError):
    hint = "stop the container first, or force the removal"

    def __init__(self, container_id: str) -> None:
        super().__init__(f"container {container_id[:12]} is running")
        self.container_id = container_id
