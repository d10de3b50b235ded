"""``--change`` instructions (``docker import --change``, ``docker commit --change``).

Docker accepts CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR (and
STOPSIGNAL for commit); each edits the image's ``config`` object.
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Iterable
from typing import Any

from lamina.errors import UsageError
from lamina.runtime.signals import signal_number

SUPPORTED = frozenset(
    {
        "CMD",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "LABEL",
        "ONBUILD",
        "USER",
        "VOLUME",
        "WORKDIR",
        "STOPSIGNAL",
    }
)


def _exec_or_shell(rest: str) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", text]


def _pairs(rest: str, keyword: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest, posix=True)
    except ValueError as exc:
        raise UsageError(f"{keyword}: {exc}") from exc
    if not words:
        raise UsageError(f"{keyword} needs at least one argument")
    if "=" not in words[0]:
        # Legacy form: ENV KEY value with spaces
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        key, eq, value = w.partition("=")
        if not eq or not key:
            raise UsageError(f"{keyword}: {w!r} is not KEY=VALUE")
        out.append((key, value))
    return out


def apply_changes(config: dict[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """Return a copy of the image ``config`` object with each change applied in order."""
    cfg: dict[str, Any] = copy.deepcopy(config)
    for change in changes:
        keyword, _, rest = change.strip().partition(" ")
        kw = keyword.upper()
        if kw not in SUPPORTED:
            raise UsageError(
                f"{keyword!r} is not a valid change command (valid: {', '.join(sorted(SUPPORTED))})"
            )
        if kw in ("CMD", "ENTRYPOINT"):
            cfg["Cmd" if kw == "CMD" else "Entrypoint"] = _exec_or_shell(rest)
        elif kw == "ENV":
            env = list(cfg.get("Env") or [])
            for key, value in _pairs(rest, kw):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            cfg["Env"] = env
        elif kw == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(rest, kw))
            cfg["Labels"] = labels
        elif kw == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in rest.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif kw == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            text = rest.strip()
            paths = json.loads(text) if text.startswith("[") else text.split()
            for v in paths:
                vols[v] = {}
            cfg["Volumes"] = vols
        elif kw == "ONBUILD":
            cfg["OnBuild"] = [*list(cfg.get("OnBuild") or []), rest.strip()]
        elif kw == "USER":
            cfg["User"] = rest.strip()
        elif kw == "WORKDIR":
            cfg["WorkingDir"] = rest.strip()
        elif kw == "STOPSIGNAL":
            signal_number(rest.strip(), what="signal")  # UsageError, as Docker refuses it
            cfg["StopSignal"] = rest.strip()
    return cfg
