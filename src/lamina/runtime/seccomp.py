"""Docker's default seccomp profile, resolved into a runtime-spec ``linux.seccomp`` object.

The profile itself is data (``seccomp_default.json`` next to this module, moby's
``profiles/seccomp/default.json`` without the rules for s390/ppc/mips/riscv). Its rules carry
conditions -- ``includes``/``excludes`` on capabilities, architectures and a minimum kernel --
that Docker evaluates when it builds a container's config, so the syscalls a container may make
follow the capabilities it was given: ``--cap-add SYS_ADMIN`` allows ``mount``, dropping nothing
allows ``clone`` only without namespace flags. :func:`default_profile` does the same evaluation.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Final

# Package data next to this module (read by path: importlib.resources costs ~5 ms of imports
# on the `run` start-up path, and lamina is never run from a zip).
_DATA: Final = Path(__file__).with_name("seccomp_default.json")

# uname's machine -> the Go architecture names the profile's conditions use.
_GO_ARCH: Final[Mapping[str, str]] = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
}


@functools.cache
def _profile() -> dict[str, Any]:
    text = _DATA.read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def host_arch() -> str:
    """The host's architecture as the profile names it (``amd64``, ``arm64``, ...)."""
    machine = os.uname().machine
    return _GO_ARCH.get(machine, machine)


def _kernel_version() -> tuple[int, int]:
    release = os.uname().release
    parts = release.split(".", 2)
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def _applies(
    rule: Mapping[str, Any], *, caps: Collection[str], arch: str, kernel: tuple[int, int]
) -> bool:
    inc: Mapping[str, Any] = rule.get("includes") or {}
    exc: Mapping[str, Any] = rule.get("excludes") or {}
    if inc.get("arches") and arch not in inc["arches"]:
        return False
    # Docker's semantics: every listed capability must be present (an AND, not an OR).
    if inc.get("caps") and not all(c in caps for c in inc["caps"]):
        return False
    if inc.get("minKernel") and kernel < _version(inc["minKernel"]):
        return False
    if exc.get("arches") and arch in exc["arches"]:
        return False
    return not (exc.get("caps") and any(c in caps for c in exc["caps"]))


def default_profile(*, capabilities: Collection[str], arch: str | None = None) -> dict[str, Any]:
    """The runtime-spec ``linux.seccomp`` for a process holding ``capabilities``.

    Raises ValueError for an architecture the profile has no seccomp arch map for."""
    data = _profile()
    go_arch = arch or host_arch()
    arches = data["archMap"].get(go_arch)
    if arches is None:
        raise ValueError(f"no seccomp architecture map for {go_arch!r}")
    kernel = _kernel_version()
    syscalls: list[dict[str, Any]] = []
    for rule in data["syscalls"]:
        if not _applies(rule, caps=set(capabilities), arch=go_arch, kernel=kernel):
            continue
        out: dict[str, Any] = {"names": list(rule["names"]), "action": rule["action"]}
        if "errnoRet" in rule:
            out["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            out["args"] = [dict(a) for a in rule["args"]]
        syscalls.append(out)
    return {
        "defaultAction": data["defaultAction"],
        "defaultErrnoRet": data["defaultErrnoRet"],
        "architectures": list(arches),
        "syscalls": syscalls,
    }
