"""Docker API 1.41 shapes for containers: ``inspect`` (formats.md §2.3) and ``ps`` rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lamina.engine.humanize import human_duration
from lamina.engine.inspect import container_config
from lamina.store.containers import ContainerRecord

if TYPE_CHECKING:
    from lamina.runtime import ContainerState

ZERO_TIME = "0001-01-01T00:00:00Z"


def state_json(state: ContainerState) -> dict[str, Any]:
    running = state.status.value == "running"
    return {
        "Status": state.docker_status,
        "Running": running,
        "Paused": state.paused,
        "Restarting": False,
        "OOMKilled": state.oom_killed,
        "Dead": False,
        "Pid": state.pid if running else 0,
        "ExitCode": state.exit_code,
        "Error": state.error,
        "StartedAt": state.started_at or ZERO_TIME,
        "FinishedAt": state.finished_at or ZERO_TIME,
    }


def inspect_container(
    rec: ContainerRecord,
    *,
    state: ContainerState,
    bundle: Path,
    graph_data: Mapping[str, str],
    driver_name: str,
    sizes: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """``docker container inspect`` for one container; every path in it exists. ``sizes``
    (``SizeRw``, ``SizeRootFs``) are shown after ``GraphDriver`` when given, as Docker's
    ``inspect --size``; without them the keys are absent."""
    stored = rec.config
    cfg = dict(container_config(stored["Config"]))
    # A container's Config carries what the image config does not: the attach flags.
    for key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"):
        cfg[key] = bool(stored["Config"].get(key))
    cfg["Labels"] = stored["Config"].get("Labels") or {}
    cfg["Hostname"] = stored["Config"].get("Hostname") or rec.id[:12]  # Docker's default
    network = stored["HostConfig"].get("NetworkMode") or "none"
    return {
        "Id": rec.id,
        "Created": rec.created,
        "Path": stored["Path"],
        "Args": list(stored["Args"]),
        "State": state_json(state),
        "Image": str(rec.image),
        # Written by the first start, as Docker's; "" until then (every path printed exists).
        "ResolvConfPath": _existing(bundle / "resolv.conf"),
        "HostnamePath": _existing(bundle / "hostname"),
        "HostsPath": _existing(bundle / "hosts"),
        "LogPath": _existing(bundle / f"{rec.id}-json.log"),
        "Name": "/" + rec.name,
        "RestartCount": 0,
        "Driver": driver_name,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": dict(stored["HostConfig"]),
        "GraphDriver": {"Data": dict(graph_data), "Name": driver_name},
        **({} if sizes is None else {"SizeRw": sizes[0], "SizeRootFs": sizes[1]}),
        "Mounts": [dict(m) for m in stored.get("Mounts") or []],
        "Config": cfg,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": {},
            "SandboxKey": "",
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "Networks": {network: {"NetworkID": "", "EndpointID": "", "Gateway": ""}},
        },
    }


def _parse(ts: str) -> float | None:
    if not ts or ts.startswith("0001-"):
        return None
    text = ts.rstrip("Z")
    head, _, frac = text.partition(".")
    try:
        # fromisoformat, not strptime: strptime imports _strptime, calendar and locale (~2 ms
        # of every `ps`).
        base = datetime.fromisoformat(head).replace(tzinfo=UTC)
    except ValueError:
        return None
    return base.timestamp() + (float("0." + frac[:6]) if frac else 0.0)


def status_text(state: ContainerState, *, now: float) -> str:
    """The STATUS column: "Created", "Up 3 seconds", "Up 3 seconds (Paused)", "Exited (0) 2
    minutes ago"."""
    if state.status.value == "running":
        started = _parse(state.started_at)
        up = "Up " + human_duration(now - started) if started else "Up"
        return up + " (Paused)" if state.paused else up
    if state.status.value == "exited":
        finished = _parse(state.finished_at)
        when = f" {human_duration(now - finished)} ago" if finished else ""
        return f"Exited ({state.exit_code}){when}"
    return "Created"


def command_text(rec: ContainerRecord) -> str:
    """The COMMAND column before quoting: Path and Args joined by spaces (as docker ps)."""
    return " ".join([rec.config["Path"], *rec.config["Args"]])


def ps_command(rec: ContainerRecord) -> str:
    """ps's Command as Docker's daemon makes it (daemon/list.go): Path, then the Args, each
    one holding a space wrapped in single quotes (nothing else is quoted or escaped)."""
    args = [f"'{a}'" if " " in a else a for a in rec.config["Args"]]
    return " ".join([rec.config["Path"], *args]) if args else rec.config["Path"]


def created_ts(rec: ContainerRecord) -> float:
    return _parse(rec.created) or 0.0


def _existing(path: Path) -> str:
    return str(path) if path.exists() else ""
