"""Volume service: create, list, inspect, remove, prune, and (beyond Docker, docker/cli#1436)
export to and import from a tar."""

from __future__ import annotations

import builtins
import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

from msgspec import Struct

from lamina.errors import (
    ConflictError,
    InvalidFilterError,
    LaminaError,
    UsageError,
    VolumeNotFoundError,
)
from lamina.store.store import Store
from lamina.store.volumes import VolumeRecord


class VolumeSummary(Struct, frozen=True, kw_only=True):
    """One volume with what ``ls``/``inspect`` show about it."""

    name: str
    driver: str
    mountpoint: str
    created_at: str  # RFC 3339, whole seconds, local offset (as Docker)
    labels: Mapping[str, str]
    anonymous: bool
    users: tuple[str, ...]  # names of the containers that mount it
    options: Mapping[str, str] | None = None  # the local driver's -o (None: a container's)


def rfc3339_local(ts: float) -> str:
    """Go's ``time.RFC3339`` of a local time: ``2020-04-19T11:00:21Z`` or ``...+02:00``."""
    local = time.localtime(int(ts))
    offset = local.tm_gmtoff or 0
    base = time.strftime("%Y-%m-%dT%H:%M:%S", local)
    if offset == 0:
        return base + "Z"
    sign = "+" if offset > 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{base}{sign}{hours:02d}:{minutes:02d}"


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid label {item!r}: want KEY=VALUE")
        out[key] = value
    return out


def parse_driver_options(items: Sequence[str]) -> dict[str, str]:
    """``-o KEY=VALUE`` flags (a later key wins; ``-o KEY``: an empty value, as Docker's
    MapOpts)."""
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


class VolumeService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _summary(self, rec: VolumeRecord) -> VolumeSummary:
        return VolumeSummary(
            name=rec.name,
            driver="local",
            mountpoint=str(rec.mountpoint),
            created_at=rfc3339_local(self._store.volumes.created_at(rec)),
            labels=dict(rec.labels),
            anonymous=rec.anonymous,
            users=tuple(n for _, n in self._store.volumes.users(rec.name)),
            options=rec.options,
        )

    def create(
        self, name: str | None = None, *, labels: Sequence[str] = (), options: Sequence[str] = ()
    ) -> VolumeSummary:
        """``docker volume create [NAME]``: a random 64-hex name when none is given; an
        existing name is returned as is. ``options``: the local driver's ``-o KEY=VALUE``
        (``type``, ``device``, ``o``: mounted while a container uses the volume)."""
        from lamina.store.volume_mount import check_options

        check_volume_name(name) if name is not None else None
        name = name if name is not None else os.urandom(32).hex()
        opts = parse_driver_options(options)
        check_options(name, opts)
        rec, _ = self._store.volumes.create(name, labels=parse_labels(labels), options=opts)
        return self._summary(rec)

    def list(self, *, filters: Sequence[str] = ()) -> builtins.list[VolumeSummary]:
        """Volumes by name, filtered as Docker's ``volume ls -f``: ``name=`` a regexp,
        ``driver=``, ``label=KEY[=VALUE]`` (every one must match), ``dangling=true|false``;
        the values of one key match if any does."""
        out = [self._summary(r) for r in self._store.volumes.list()]
        if not filters:
            return out
        from lamina.engine.filters import go_regexp, match_kv_list  # only with -f

        wanted = volume_filters(filters)
        if "name" in wanted:
            patterns = [go_regexp(p, key="name") for p in wanted["name"]]
            out = [v for v in out if any(p.search(v.name) for p in patterns)]
        if "driver" in wanted:
            out = [v for v in out if v.driver in wanted["driver"]]
        if "label" in wanted:
            out = [v for v in out if match_kv_list(wanted["label"], v.labels)]
        if "dangling" in wanted:
            values = set(wanted["dangling"])  # exact words, as Docker's ExactMatch
            if values & {"true", "1"}:
                out = [v for v in out if not v.users]
            elif values & {"false", "0"}:
                out = [v for v in out if v.users]
            else:
                raise InvalidFilterError(
                    f"Invalid filter 'dangling=[{' '.join(wanted['dangling'])}]'"
                )
        return out

    def inspect(self, name: str) -> dict[str, Any]:
        """Docker's ``volume inspect`` object (fields in the Go struct's alphabetical order)."""
        v = self._summary(self._get(name))
        return {
            "CreatedAt": v.created_at,
            "Driver": v.driver,
            "Labels": dict(v.labels),
            "Mountpoint": v.mountpoint,
            "Name": v.name,
            "Options": None if v.options is None else dict(sorted(v.options.items())),
            "Scope": "local",
        }

    def _get(self, name: str) -> VolumeRecord:
        check_volume_name(name)
        return self._store.volumes.get(name)

    def remove(self, name: str, *, force: bool = False) -> None:
        """``docker volume rm``: refused while a container uses it (even with ``force``, as
        Docker); ``force`` only makes a missing volume no error."""
        try:
            self._get(name)
        except VolumeNotFoundError:
            if force:
                return
            raise
        self._store.volumes.remove(name)

    def prune(self, *, all_volumes: bool = False, filters: Sequence[str] = ()) -> VolumePruneResult:
        """Remove unused volumes: anonymous ones only, unless ``all_volumes``; ``filters``
        ``label`` and ``label!`` spare some, as Docker's. With the bytes their data held
        (Docker's "Total reclaimed space")."""
        from lamina.engine.filters import VOLUME_KEYS, PruneFilters

        spare = PruneFilters(filters, accepted=VOLUME_KEYS)
        removed: builtins.list[str] = []
        reclaimed = 0
        for rec in self._store.volumes.list():
            if not (rec.anonymous or all_volumes) or self._store.volumes.users(rec.name):
                continue
            if spare.keeps(labels=rec.labels):
                continue
            size = data_size(rec.mountpoint)
            try:
                self._store.volumes.remove(rec.name)
            except ConflictError:
                continue  # a container started using it meanwhile
            removed.append(rec.name)
            reclaimed += size
        return VolumePruneResult(names=tuple(removed), reclaimed=reclaimed)

    def export(self, name: str, out: IO[bytes]) -> None:
        """The volume's data as a tar (paths relative to the volume root)."""
        from lamina.archive.changes import write_tree_diff

        write_tree_diff(None, self._get(name).mountpoint, out)

    def import_(self, name: str, source: IO[bytes]) -> VolumeSummary:
        """Extract a tar (plain, gzip or zstd) into the volume, creating it if needed, through
        lamina's confined layer extraction (no path in the tar can leave the volume). A volume
        this call created is removed again when the tar is refused (a bomb, a bad path, a
        truncated stream); one that existed keeps what was extracted before the refusal."""
        from lamina.archive.apply import WhiteoutFormat, apply_layer

        check_volume_name(name)
        rec, created = self._store.volumes.create(name, options={})  # a user's, as create's
        try:
            apply_layer(source, rec.mountpoint, fmt=WhiteoutFormat.APPLY)
        except BaseException:
            if created:
                with contextlib.suppress(LaminaError):  # a container took it meanwhile: keep
                    self._store.volumes.remove(name)
            raise
        return self._summary(rec)


class VolumePruneResult(Struct, frozen=True, kw_only=True):
    names: tuple[str, ...]  # the volumes removed
    reclaimed: int  # bytes of their data


def data_size(directory: os.PathLike[str] | str) -> int:
    """The bytes of the regular files below ``directory``, a hardlinked file once, symlinks
    never followed (moby's ``directory.Size``, which ``volume prune`` reports)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    stack = [os.fspath(directory)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


_FILTER_KEYS = ("name", "driver", "label", "dangling")


def volume_filters(filters: Sequence[str]) -> dict[str, builtins.list[str]]:
    """``-f KEY=VALUE`` flags by key, as Docker's CLI reads them
    (:func:`~lamina.engine.filters.split_filters`) and its daemon checks them (a key it does
    not know is refused)."""
    from lamina.engine.filters import split_filters

    out: dict[str, builtins.list[str]] = {}
    for key, value in split_filters(filters):
        if key not in _FILTER_KEYS:
            raise InvalidFilterError(f"Invalid filter '{key}'")
        out.setdefault(key, []).append(value)
    return out


def check_volume_name(name: str) -> None:
    """Docker's rule, with a plainer word for the two mistakes people make."""
    if "/" in name or name in (".", "..") or ".." in name.split("/"):
        raise UsageError(
            f"invalid volume name {name!r}: a volume name cannot contain '/' or be '..' "
            "(names match [a-zA-Z0-9][a-zA-Z0-9_.-]+; use an absolute path for a bind mount)"
        )
    if len(name) < 2:
        raise UsageError(
            f"invalid volume name {name!r}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]+ "
            "(at least 2 characters)"
        )
