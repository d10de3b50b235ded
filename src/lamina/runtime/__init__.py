"""lamina.runtime: running a container's process through a real OCI runtime (runc).

Build a runtime-spec config with Docker's defaults, write the bundle, run it under a lamina
shim that keeps the logs and the exit status::

    from lamina.runtime import RunSpec, Runtime, build_spec, write_bundle

    write_bundle(bundle, build_spec(RunSpec(args=("sh", "-c", "echo hi")), rootfs=merged))
    Runtime(state_dir=state).run_attached(container_id, bundle, stdin=False)

Modules: ``spec`` (RunSpec -> config.json), ``defaults`` and ``seccomp`` (Docker's defaults as
data), ``users`` and ``rootfs`` (fd-confined lookups in the image), ``mountns`` (a private mount
namespace with binds made inside a rootfs, for ``cp``), ``runc`` (the CLI), ``shim`` (the
per-container monitor), ``attach`` and ``attach_client`` (the shim's attach socket, both ends,
and the detach keys), ``state`` and ``logs`` (what it records), ``runtime`` (the facade),
``errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lamina.runtime.errors import (
        CommandNotExecutableError,
        CommandNotFoundError,
        ContainerNotRunningError,
        ContainerRunningError,
        ContainerStartError,
        RuncError,
    )
    from lamina.runtime.logs import LogEntry
    from lamina.runtime.runtime import Runtime
    from lamina.runtime.spec import (
        MountSpec,
        NetworkMode,
        Rlimit,
        RunSpec,
        build_spec,
        write_bundle,
    )
    from lamina.runtime.state import ContainerState, ContainerStatus

# Each name loads only the module that defines it: `ps` needs the state records, `run` the
# spec and the shim, `cp` the confined lookups -- never all of them (each CLI call is a new
# process, and the whole package is ~15 ms of imports).
_HOMES: dict[str, str] = {
    **dict.fromkeys(
        (
            "CommandNotExecutableError",
            "CommandNotFoundError",
            "ContainerNotRunningError",
            "ContainerRunningError",
            "ContainerStartError",
            "RuncError",
        ),
        "errors",
    ),
    "LogEntry": "logs",
    "Runtime": "runtime",
    **dict.fromkeys(
        ("MountSpec", "NetworkMode", "Rlimit", "RunSpec", "build_spec", "write_bundle"), "spec"
    ),
    "ContainerState": "state",
    "ContainerStatus": "state",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CommandNotExecutableError",
    "CommandNotFoundError",
    "ContainerNotRunningError",
    "ContainerRunningError",
    "ContainerStartError",
    "ContainerState",
    "ContainerStatus",
    "LogEntry",
    "MountSpec",
    "NetworkMode",
    "Rlimit",
    "RunSpec",
    "RuncError",
    "Runtime",
    "build_spec",
    "write_bundle",
]
