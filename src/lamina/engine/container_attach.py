"""``docker attach``: to a running container, through its shim's attach socket
(:meth:`lamina.runtime.Runtime.attach`); also what ``start -a`` of a running container does.

Refusals are Docker 20.10's, in its order and words: a container that does not run ("You
cannot attach to a stopped container, start it first"), a paused one ("You cannot attach to
a paused container, unpause it first"), ``stdin`` into a terminal container from a stdin
that is not a terminal ("the input device is not a TTY"), then detach keys it cannot read
("Invalid detach keys (KEYS) provided").

As Docker's: the stdin is attached only to a container that keeps its stdin open (``-i``);
signals are forwarded only to a container without a terminal (with one, a Ctrl-C is a
keystroke of it); the detach keys act only on a terminal's input.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lamina.errors import ConflictError, NotATerminalError

if TYPE_CHECKING:
    from lamina.engine.containers import ContainerService
    from lamina.store.containers import ContainerRecord


def stdin_options(rec: ContainerRecord) -> dict[str, Any]:
    """The runtime's ``open_stdin`` and ``stdin_once`` for a start of ``rec`` (Docker's
    ``OpenStdin``, ``StdinOnce``)."""
    config = rec.config["Config"]
    return {
        "open_stdin": bool(config.get("OpenStdin")),
        "stdin_once": bool(config.get("StdinOnce")),
    }


def check_detach_keys(keys: str | None) -> None:
    """Refuse ``--detach-keys`` Docker refuses, before anything is made or started."""
    if keys:
        from lamina.runtime.attach import detach_keys

        detach_keys(keys)


def attach(
    service: ContainerService,
    ref: str,
    *,
    stdin: bool,
    sig_proxy: bool,
    detach_keys: str | None,
) -> int | None:
    """``docker attach REF``: the container's exit status, None after a detach. Raises
    ContainerNotFoundError, ConflictError (not running, paused), NotATerminalError,
    InvalidDetachKeysError, AttachError."""
    from lamina.runtime import ContainerStatus

    rec = service.resolve(ref)
    st = service.state(rec)
    if st.status is not ContainerStatus.RUNNING:
        raise ConflictError("You cannot attach to a stopped container, start it first")
    if st.paused:
        raise ConflictError("You cannot attach to a paused container, unpause it first")
    if stdin and rec.config["Config"].get("Tty") and not os.isatty(0):
        raise NotATerminalError()
    return attach_running(service, rec, stdin=stdin, sig_proxy=sig_proxy, detach_keys=detach_keys)


def attach_running(
    service: ContainerService,
    rec: ContainerRecord,
    *,
    stdin: bool,
    sig_proxy: bool,
    detach_keys: str | None,
) -> int | None:
    """Attach to ``rec``, found running (it may have ended since: then its exit status)."""
    config = rec.config["Config"]
    tty = bool(config.get("Tty"))
    code = service.runtime.attach(
        rec.id,
        stdin=stdin and bool(config.get("OpenStdin")),
        tty=tty,
        sig_proxy=sig_proxy and not tty,
        detach_keys=detach_keys,
    )
    if code is not None:
        service.state(rec)  # it is over: the look drops the run's mount
    return code
