"""lamina.runtime: running a container's process through a real OCI runtime (runc).

Build a runtime-spec config with Docker's defaults, write the bundle, run it under a lamina
shim that keeps the logs and the exit status::

    from lamina.runtime import RunSpec, Runtime, build_spec, write_bundle

    write_bundle(bundle, build_spec(RunSpec(args=("sh", "-c", "echo hi")), rootfs=merged))
    Runtime(state_dir=state).run_attached(container_id, bundle, stdin=False)

Modules: ``spec`` (RunSpec -> config.json), ``defaults`` and ``seccomp`` (Docker's defaults as
data), ``users`` and ``rootfs`` (fd-confined lookups in the image), ``runc`` (the CLI),
``shim`` (the per-container monitor), ``state`` and ``logs`` (what it records),
``runtime`` (the facade), ``errors``.
"""

from __future__ import annotations

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
from lamina.runtime.spec import MountSpec, NetworkMode, Rlimit, RunSpec, build_spec, write_bundle
from lamina.runtime.state import ContainerState, ContainerStatus

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
