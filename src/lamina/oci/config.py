"""Image configs (image-spec ``config.md``; Docker image spec v1.3).

A loaded config keeps its raw bytes: the image id is their digest, so a config is never
re-serialised. Typed access covers what lamina reads; :meth:`ImageConfig.json` gives the whole
document (unknown fields included) for inspect. New configs are written once by
:func:`new_config`, canonically.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

from msgspec import Struct, field

from lamina.digest import Digest
from lamina.errors import InvalidDigestError, InvalidManifestError
from lamina.oci import fields
from lamina.oci.gojson import decode_object, encode_json

__all__ = [
    "ContainerConfig",
    "History",
    "ImageConfig",
    "encode_json",
    "format_time",
    "new_config",
]


class ContainerConfig(Struct, frozen=True, kw_only=True):
    """The ``config`` object: the defaults a container of this image starts with."""

    user: str | None = None
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str | None = None
    healthcheck: Mapping[str, Any] | None = None
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] | None = None
    args_escaped: bool = False

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, what: str = "config.config") -> ContainerConfig:
        return cls(
            user=fields.opt_str(obj, "User", what=what),
            env=fields.opt_str_list(obj, "Env", what=what) or (),
            cmd=fields.opt_str_list(obj, "Cmd", what=what),
            entrypoint=fields.opt_str_list(obj, "Entrypoint", what=what),
            working_dir=fields.opt_str(obj, "WorkingDir", what=what),
            labels=fields.opt_str_map(obj, "Labels", what=what),
            exposed_ports=tuple(fields.opt_object(obj, "ExposedPorts", what=what) or {}),
            volumes=tuple(fields.opt_object(obj, "Volumes", what=what) or {}),
            stop_signal=fields.opt_str(obj, "StopSignal", what=what),
            healthcheck=fields.opt_object(obj, "Healthcheck", what=what),
            on_build=fields.opt_str_list(obj, "OnBuild", what=what) or (),
            shell=fields.opt_str_list(obj, "Shell", what=what),
            args_escaped=fields.opt_bool(obj, "ArgsEscaped", what=what),
        )


class History(Struct, frozen=True, kw_only=True):
    """One build step. ``empty_layer`` steps (ENV, CMD, ...) made no layer."""

    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    @classmethod
    def from_json(cls, obj: Any, *, what: str = "history entry") -> History:
        if not isinstance(obj, dict):
            raise InvalidManifestError(f"{what} is not a JSON object")
        return cls(
            created=fields.opt_str(obj, "created", what=what),
            created_by=fields.opt_str(obj, "created_by", what=what),
            author=fields.opt_str(obj, "author", what=what),
            comment=fields.opt_str(obj, "comment", what=what),
            empty_layer=fields.opt_bool(obj, "empty_layer", what=what),
        )

    def to_json(self) -> dict[str, Any]:
        # ocispec.History field order, every field omitempty.
        out: dict[str, Any] = {}
        if self.created:
            out["created"] = self.created
        if self.created_by:
            out["created_by"] = self.created_by
        if self.author:
            out["author"] = self.author
        if self.comment:
            out["comment"] = self.comment
        if self.empty_layer:
            out["empty_layer"] = True
        return out


class ImageConfig(Struct, frozen=True, kw_only=True):
    """A parsed, validated image config plus the exact bytes it came from."""

    raw: bytes
    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = None
    created: str | None = None
    author: str | None = None
    config: ContainerConfig = field(default_factory=ContainerConfig)
    diff_ids: tuple[Digest, ...] = ()
    history: tuple[History, ...] = ()

    @property
    def digest(self) -> Digest:
        """The image id."""
        return Digest.of(self.raw)

    def json(self) -> dict[str, Any]:
        """The whole document as parsed from :attr:`raw` (a fresh copy each call)."""
        return decode_object(self.raw, what="image config")

    @classmethod
    def from_bytes(cls, raw: bytes) -> ImageConfig:
        """Parse and validate; :class:`InvalidManifestError`/:class:`InvalidDigestError` if bad.

        Checks: architecture and os present, ``rootfs.type == "layers"``, every diff_id a digest,
        and no more non-empty history entries than diff_ids (Docker's image store refuses "too
        many non-empty layers in History section"; fewer, down to none, it accepts, and the
        entries describe the layers from the bottom: see :func:`history_for_layers`).
        """
        what = "image config"
        obj = decode_object(raw, what=what)
        rootfs = fields.opt_object(obj, "rootfs", what=what)
        if rootfs is None:
            raise InvalidManifestError(f"{what}: required field 'rootfs' is missing")
        rootfs_type = fields.req_str(rootfs, "type", what=f"{what} rootfs")
        if rootfs_type != "layers":
            raise InvalidManifestError(f"{what}: rootfs.type must be 'layers', got {rootfs_type!r}")
        diff_ids_json = fields.opt_list(rootfs, "diff_ids", what=f"{what} rootfs") or []
        diff_ids: list[Digest] = []
        for i, d in enumerate(diff_ids_json):
            if not isinstance(d, str):
                raise InvalidDigestError(repr(d), f"rootfs.diff_ids[{i}] is not a string")
            diff_ids.append(Digest(d))
        history_json = fields.opt_list(obj, "history", what=what)
        history = tuple(
            History.from_json(h, what=f"{what} history[{i}]")
            for i, h in enumerate(history_json or [])
        )
        non_empty = sum(1 for h in history if not h.empty_layer)
        if non_empty > len(diff_ids):
            raise InvalidManifestError(
                f"{what}: history has {non_empty} non-empty entries"
                f" but rootfs has only {len(diff_ids)} diff_ids"
            )
        container = fields.opt_object(obj, "config", what=what)
        return cls(
            raw=raw,
            architecture=fields.req_str(obj, "architecture", what=what),
            os=fields.req_str(obj, "os", what=what),
            variant=fields.opt_str(obj, "variant", what=what),
            os_version=fields.opt_str(obj, "os.version", what=what),
            created=fields.opt_str(obj, "created", what=what),
            author=fields.opt_str(obj, "author", what=what),
            config=ContainerConfig.from_json(container) if container else ContainerConfig(),
            diff_ids=tuple(diff_ids),
            history=history,
        )


# Go container.Config field order: nested `config` objects are written in it.
_CONTAINER_CONFIG_ORDER: Final = (
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
    "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck",
    "ArgsEscaped", "Image", "Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled",
    "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell",
)  # fmt: skip


def format_time(when: dt.datetime) -> str:
    """RFC 3339 with nanosecond precision and trailing zeros trimmed, as Go's RFC3339Nano."""
    if when.tzinfo is None:
        raise ValueError("format_time needs an aware datetime")
    utc = when.astimezone(dt.UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += ("." + f"{utc.microsecond:06d}").rstrip("0")
    return text + "Z"


def _ordered_container_config(config: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: config[k] for k in _CONTAINER_CONFIG_ORDER if k in config}
    out.update((k, v) for k, v in config.items() if k not in out)
    return out


def history_for_layers(history: Sequence[History], layers: int) -> list[History]:
    """``history`` with a blank entry appended for each of the ``layers`` it does not describe.

    A config may describe fewer layers than it has (a hand-made or stripped image); its
    entries belong to the bottom layers. Before a new layer's entry is appended (commit, a
    build step) the gap is filled, so the new entry describes the new layer and not the
    lowest undescribed one, as Docker's commit would have it (which ``docker history`` then
    shows with that lower layer's size).
    """
    described = sum(1 for h in history if not h.empty_layer)
    return [*history, *(History() for _ in range(layers - described))]


def new_config(
    *,
    diff_ids: Sequence[Digest],
    history: Sequence[History],
    created: str | dt.datetime,
    architecture: str = "amd64",
    os: str = "linux",
    config: Mapping[str, Any],
    author: str | None = None,
    variant: str | None = None,
) -> bytes:
    """Canonical bytes of a new image config, validated by parsing them back.

    Top-level keys are sorted as the classic builder writes them; ``config`` keys follow Go's
    ``container.Config`` order (unknown keys after, in the caller's order); history entries and
    ``rootfs`` follow ocispec's struct order.
    """
    created_text = format_time(created) if isinstance(created, dt.datetime) else created
    top: dict[str, Any] = {
        "architecture": architecture,
        "config": _ordered_container_config(config),
        "created": created_text,
        "history": [h.to_json() for h in history],
        "os": os,
        "rootfs": {"type": "layers", "diff_ids": [str(Digest(d)) for d in diff_ids]},
    }
    if author:
        top["author"] = author
    if variant:
        top["variant"] = variant
    raw = encode_json(dict(sorted(top.items())))
    ImageConfig.from_bytes(raw)  # refuse to write what lamina itself would refuse to read
    return raw
