"""What the image service returns and the pure functions behind its queries: ``images``
rows and their filters, ``history`` rows, Docker's name matching."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec.structs
from msgspec import Struct

from lamina.digest import Digest
from lamina.errors import InvalidFilterError, InvalidManifestError
from lamina.oci import reference
from lamina.store.images import ImageRecord


class ImageSummary(Struct, frozen=True, kw_only=True):
    """One row of ``lamina images``: an (image, name) pair, or the image alone if untagged."""

    id: Digest
    repository: str  # familiar form, "<none>" when untagged
    tag: str
    digest: str  # manifest digest
    created: str
    size: int
    names: tuple[str, ...]


class PruneResult(Struct, frozen=True, kw_only=True):
    lines: list[tuple[str, str]]  # ("Untagged"|"Deleted", what)
    reclaimed: int  # bytes of blobs freed


class HistoryRow(Struct, frozen=True, kw_only=True):
    """One ``docker history`` row (newest first)."""

    id: str  # the image id on the top row, "<missing>" below (no local parent chain)
    created: str | None
    created_by: str
    size: int  # the layer's size as Docker counts it; 0 for empty_layer steps
    comment: str
    tags: tuple[str, ...]


def history_rows(
    cfg: dict[str, Any], sizes: list[int], *, image_id: str, tags: tuple[str, ...]
) -> list[HistoryRow]:
    rows: list[HistoryRow] = []
    counter = 0
    for h in cfg.get("history") or []:
        size = 0
        if not h.get("empty_layer"):
            if counter >= len(sizes):
                raise InvalidManifestError(
                    f"image {image_id[7:19]}: more non-empty history entries than layers"
                )
            size = sizes[counter]
            counter += 1
        rows.append(
            HistoryRow(
                id="<missing>",
                created=h.get("created"),
                created_by=h.get("created_by", ""),
                size=size,
                comment=h.get("comment", ""),
                tags=(),
            )
        )
    rows.reverse()
    if rows:
        rows[0] = msgspec.structs.replace(rows[0], id=image_id, tags=tags)
    return rows


def parse_created(value: str) -> float:
    if not value:
        return 0.0
    v = value.replace("Z", "+00:00")
    if "." in v:
        head, _, rest = v.partition(".")
        frac = "".join(ch for ch in rest if ch.isdigit())
        v = f"{head}.{frac[:6]}{rest[len(frac) :]}"
    try:
        return datetime.fromisoformat(v).timestamp()
    except ValueError:
        return 0.0


def repo_matches(wanted: str, repo: str, tag: str) -> bool:
    """``docker images busybox`` matches every tag of busybox; ``busybox:1`` only that tag; a
    short name also matches ``localhost/NAME`` (podman's rule)."""
    ref = reference.parse(wanted)
    if ref.tag is not None and ref.tag != tag:
        return False
    repos = {
        reference.familiar(reference.parse(c).name) for c in reference.lookup_candidates(wanted)
    }
    return repo in repos


# The values Docker's daemon reads as a boolean filter (filters.Args.GetBoolOrDefault).
_BOOLS = frozenset({"true", "false", "1", "0"})


class ImageFilter:
    """``--filter`` for images (Docker's keys; unknown keys are a usage error)."""

    KEYS = frozenset({"dangling", "reference", "before", "since", "label"})

    def __init__(
        self,
        filters: Sequence[tuple[str, str]],
        *,
        resolve: Callable[[str], ImageRecord],
        config: Callable[[ImageRecord], dict[str, Any]],
    ) -> None:
        self._filters = list(filters)
        for key, value in self._filters:
            if key not in self.KEYS:
                raise InvalidFilterError(f"Invalid filter '{key}'")
            if key == "dangling" and value.lower() not in _BOOLS:
                raise InvalidFilterError(f"Invalid filter 'dangling=[{value}]'")
        self._config = config
        self._cutoffs: dict[str, float] = {}
        for key, value in self._filters:
            if key in ("before", "since"):
                rec = resolve(value)
                self._cutoffs[key] = parse_created(rec.created or "")

    def image(self, rec: ImageRecord) -> bool:
        created = parse_created(rec.created or "")
        for key, value in self._filters:
            if key == "dangling":
                want = value.lower() in ("true", "1")
                if bool(not rec.names) != want:
                    return False
            elif (key == "before" and not created < self._cutoffs["before"]) or (
                key == "since" and not created > self._cutoffs["since"]
            ):
                return False
            elif key == "label":
                labels = (self._config(rec).get("config") or {}).get("Labels") or {}
                k, eq, v = value.partition("=")
                if k not in labels or (eq and labels[k] != v):
                    return False
        return True

    def name(self, repo: str, tag: str) -> bool:
        for key, value in self._filters:
            if key == "reference":
                full = f"{repo}:{tag}"
                if not (fnmatch.fnmatchcase(full, value) or fnmatch.fnmatchcase(repo, value)):
                    return False
        return True


def split_familiar(name: str) -> tuple[str, str]:
    """("busybox", "latest") for docker.io/library/busybox:latest; "<none>" for a digest-only
    name's tag."""
    short = reference.familiar(name)
    if "@" in short:
        return short.split("@", 1)[0], "<none>"
    slash = short.rfind("/")
    colon = short.rfind(":")
    if colon > slash:
        return short[:colon], short[colon + 1 :]
    return short, "<none>"
