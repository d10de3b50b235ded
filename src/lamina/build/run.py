"""RUN: one process in the step's work layer, through runc, with BuildKit's build mounts.

``--mount=type=secret,id=ID[,target=PATH][,required][,env=NAME]``: the secret file given with
``lamina build --secret id=ID,src=FILE`` is copied into the build's private temp dir and
bind-mounted read-only (default ``/run/secrets/ID``); it is never in a layer, the config or
history (the mount stub runc creates is removed before the diff). ``--mount=type=cache,
target=PATH[,id=ID]``: a dir under ``<root>/buildcache`` kept between builds and out of layers.
Ids and targets are checked before use (no ``..``, relative ids only): buildah
CVE-2024-9675 joined user input into host paths. Other mount types are refused clearly.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from msgspec import Struct

from lamina.atomic import remove_tree
from lamina.build.instructions import Mount, MountType
from lamina.build.request import RunOutput
from lamina.digest import Digest
from lamina.errors import BuildError, LaminaError
from lamina.runtime import (
    ContainerStatus,
    MountSpec,
    NetworkMode,
    RunSpec,
    Runtime,
    build_spec,
    write_bundle,
)
from lamina.runtime.logs import read_log
from lamina.runtime.rootfs import open_in_root

__all__ = ["RunRequest", "run_step"]

_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_POLL: Final = 0.01  # seconds between looks at a running step's log
_TAIL_LINES: Final = 200  # output lines kept for a failed step's error
_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class RunRequest(Struct, frozen=True, kw_only=True):
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str
    network: NetworkMode
    mounts: tuple[Mount, ...]
    secrets: Mapping[str, Path]  # id -> host file (``--secret``)
    cache_root: Path  # <root>/buildcache
    temp: Path  # this build's private temp dir (held against sweeps)
    output: RunOutput


def _check_id(value: str, what: str) -> str:
    if not _ID_RE.fullmatch(value) or ".." in value:
        raise BuildError(f"invalid {what} {value!r}: use letters, digits, '_', '.', '-' (no '..')")
    return value


def _check_target(value: str) -> str:
    if not value.startswith("/") or ".." in value.split("/"):
        raise BuildError(f"invalid mount target {value!r}: must be an absolute path without '..'")
    return "/" + "/".join(p for p in value.split("/") if p)


def _missing_parts(rootfs: Path, target: str) -> list[str]:
    """Paths (deepest last) of ``target`` and its parents that do not exist yet: the stubs
    runc will create as mount points, to be removed after the step."""
    parts = [p for p in target.split("/") if p]
    missing: list[str] = []
    for i in range(len(parts)):
        path = "/" + "/".join(parts[: i + 1])
        try:
            os.close(open_in_root(rootfs, path, flags=os.O_PATH))
        except (FileNotFoundError, NotADirectoryError):
            missing.extend("/" + "/".join(parts[: j + 1]) for j in range(i, len(parts)))
            break
    return missing


def _remove_stubs(rootfs: Path, stubs: list[str]) -> None:
    # Only empty dirs and empty regular files, relative to an in-root parent fd: a stub
    # cleaner that follows a link deletes host files (BuildKit CVE-2024-23652).
    for path in reversed(stubs):
        parent, _, name = path.rpartition("/")
        try:
            fd = open_in_root(rootfs, parent or "/", flags=os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                with contextlib.suppress(OSError):
                    os.rmdir(name, dir_fd=fd)
            elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)


def _mounts(req: RunRequest) -> tuple[list[MountSpec], list[str], list[str]]:
    """(bind mounts, extra env, targets) for the step's ``--mount`` flags."""
    binds: list[MountSpec] = []
    env: list[str] = []
    targets: list[str] = []
    for m in req.mounts:
        if m.type is MountType.SECRET:
            sid = _check_id(m.id or (m.target or "").rsplit("/", 1)[-1], "secret id")
            src = req.secrets.get(sid)
            if src is None:
                if m.required:
                    raise BuildError(f"secret {sid} is required but was not given (--secret)")
                continue
            copy = req.temp / f"secret-{Digest.of(sid.encode()).hex[:16]}"
            try:
                with open(src, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise BuildError(f"cannot read secret {sid} from {src}: {exc}") from exc
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o400)
            try:
                os.write(fd, data)
                os.fchmod(fd, m.mode if m.mode is not None else 0o400)
                os.fchown(fd, m.uid or 0, m.gid or 0)
            finally:
                os.close(fd)
            if m.env:
                env.append(f"{m.env}={data.decode('utf-8', 'replace')}")
            if m.target or not m.env:
                target = _check_target(m.target or f"/run/secrets/{sid}")
                binds.append(MountSpec(source=copy, destination=target, readonly=True))
                targets.append(target)
        elif m.type is MountType.CACHE:
            target = _check_target(m.target or "")
            cid = _check_id(m.id, "cache id") if m.id else target
            host = req.cache_root / Digest.of(cid.encode()).hex
            req.cache_root.mkdir(mode=0o700, exist_ok=True)
            if not host.is_dir():
                host.mkdir(mode=0o755)
                os.chmod(host, m.mode if m.mode is not None else 0o755)
                os.chown(host, m.uid or 0, m.gid or 0)
            binds.append(MountSpec(source=host, destination=target, readonly=bool(m.readonly)))
            targets.append(target)
        else:
            raise BuildError(
                f"RUN --mount=type={m.type.value} is not supported by lamina build "
                "(secret and cache are)"
            )
    if req.network is NetworkMode.HOST:
        for path in ("/etc/resolv.conf", "/etc/hosts"):
            if os.path.isfile(path):
                binds.append(MountSpec(source=Path(path), destination=path, readonly=True))
    return binds, env, targets


def _follow(runtime: Runtime, container_id: str, log: Path, *, output: RunOutput) -> list[str]:
    """Copy the step's output (its json-file log, both streams in order) to our stderr as it
    comes, until the process exits; return the last lines for an error message."""
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)

    def finished() -> bool:
        return runtime.state(container_id).status is not ContainerStatus.RUNNING

    for entry in read_log(log, follow=True, finished=finished, poll=_POLL):
        tail.append(entry.line)
        if output is RunOutput.STDERR:
            sys.stderr.write(entry.line)
            sys.stderr.flush()
    return list(tail)


def run_step(
    req: RunRequest, *, rootfs: Path, runtime: Runtime, container_id: str
) -> tuple[int, str]:
    """Run the step in ``rootfs`` (a mounted work layer); return (exit status, output)."""
    binds, extra_env, targets = _mounts(req)
    stubs = [s for t in targets for s in _missing_parts(rootfs, t)]
    spec = RunSpec(
        args=req.argv,
        env=(*req.env, *extra_env),
        cwd=req.cwd,
        user=req.user,
        network=req.network,
        mounts=tuple(binds),
        hostname=container_id[:12],
    )
    bundle = req.temp / f"bundle-{container_id}"
    write_bundle(bundle, build_spec(spec, rootfs=rootfs))
    try:
        # Detached, not attached: a Ctrl-C must stop the build, and a shell as the step's
        # pid 1 ignores the SIGINT an attached run would forward; the finally below kills it.
        runtime.start_detached(container_id, bundle)
        tail = _follow(runtime, container_id, bundle / f"{container_id}-json.log",
                       output=req.output)  # fmt: skip
        return runtime.state(container_id).exit_code, "".join(tail)
    except LaminaError as exc:
        exit_status = getattr(exc, "exit_status", 125)
        return int(exit_status), str(exc)
    finally:
        with contextlib.suppress(LaminaError):
            runtime.delete(container_id, force=True)
        _remove_stubs(rootfs, stubs)
        remove_tree(bundle, ignore_errors=True)
