"""Docker API 1.41 shapes built from lamina's records (image inspect, history rows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ZERO_TIME = "0001-01-01T00:00:00Z"


def container_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """An image config's ``config`` object in Docker's container.Config field order (API 1.41),
    omitempty fields left out when absent."""
    c = dict(cfg or {})
    out: dict[str, Any] = {
        "Hostname": c.get("Hostname", ""),
        "Domainname": c.get("Domainname", ""),
        "User": c.get("User", ""),
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
    }
    if c.get("ExposedPorts"):
        out["ExposedPorts"] = c["ExposedPorts"]
    out.update(
        {
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "Env": c.get("Env") or None,
            "Cmd": c.get("Cmd") or None,
        }
    )
    if c.get("Healthcheck"):
        out["Healthcheck"] = c["Healthcheck"]
    if c.get("ArgsEscaped"):
        out["ArgsEscaped"] = True
    out.update(
        {
            "Image": c.get("Image", ""),
            "Volumes": c.get("Volumes") or None,
            "WorkingDir": c.get("WorkingDir", ""),
            "Entrypoint": c.get("Entrypoint") or None,
            "OnBuild": c.get("OnBuild") or None,
            "Labels": c.get("Labels") or None,
        }
    )
    if c.get("StopSignal"):
        out["StopSignal"] = c["StopSignal"]
    if c.get("StopTimeout") is not None:  # a container's --stop-timeout (0 included)
        out["StopTimeout"] = c["StopTimeout"]
    if c.get("Shell"):
        out["Shell"] = c["Shell"]
    return out


def image_inspect(
    *,
    image_id: str,
    repo_tags: list[str],
    repo_digests: list[str],
    config: Mapping[str, Any],
    size: int,
    graph_driver: Mapping[str, Any],
    last_tag_time: str | None,
) -> dict[str, Any]:
    """``docker image inspect`` (API 1.41) for one image."""
    history = config.get("history") or []
    comment = ""
    for h in reversed(history):
        if h.get("comment"):
            comment = h["comment"]
            break
    out: dict[str, Any] = {
        "Id": image_id,
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": comment,
        "Created": config.get("created") or ZERO_TIME,
        "Container": config.get("container", ""),
        "ContainerConfig": container_config(config.get("container_config")),
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": container_config(config.get("config")),
        "Architecture": config.get("architecture", ""),
    }
    if config.get("variant"):
        out["Variant"] = config["variant"]
    out["Os"] = config.get("os", "")
    if config.get("os.version"):
        out["OsVersion"] = config["os.version"]
    rootfs = config.get("rootfs") or {}
    out.update(
        {
            "Size": size,
            "VirtualSize": size,
            "GraphDriver": dict(graph_driver),
            "RootFS": {"Type": rootfs.get("type", "layers"), "Layers": rootfs.get("diff_ids", [])},
            "Metadata": {"LastTagTime": last_tag_time or ZERO_TIME},
        }
    )
    return out
