"""``--volumes-from CONTAINER[:ro|rw]``: another container's volumes and binds, as Docker
20.10's daemon takes them at create (``registerMountPoints``, step 2).

Each source's ``Mounts`` are copied as they are -- a volume by name, a bind by host path, its
propagation -- except that ``Mode`` is "" and ``RW`` is the source's and the flag's (``:ro``
makes all of them read-only). A later ``--volumes-from`` wins at a destination two share;
the container's own binds and named volumes (``-v``, ``--mount``) win over all of them, and an
anonymous ``-v`` or an image's VOLUME at an inherited destination is dropped. An inherited
volume is never filled from this container's image (Docker's ``CopyData: false``); it is
linked to this container as its own are, so it stays in use while either container is there
(``volume rm`` refuses it, and the source's ``rm -v`` leaves it to the other).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from msgspec import Struct

from lamina.errors import UsageError

# What a --volumes-from mode may say (volume/mounts/linux_parser.go linuxValidMountMode, less
# the propagation and copy modes that ParseVolumesFrom refuses): each kind at most once.
_MODE_KINDS: Final = (("rw", "ro"), ("z", "Z"), ("consistent", "cached", "delegated"))


class Inherited(Struct, frozen=True, kw_only=True):
    """What ``--volumes-from`` gives a container."""

    mounts: list[dict[str, Any]]  # Docker's Mounts entries, by destination in taking order
    non_recursive: list[str]  # destinations of binds mounted without their submounts


def parse(spec: str) -> tuple[str, bool]:
    """``CONTAINER[:MODE]`` -> (container, read-write), as Docker's ParseVolumesFrom; raises
    UsageError in its words."""
    if not spec:
        raise UsageError("volumes-from specification cannot be an empty string")
    ref, colon, mode = spec.partition(":")
    if colon and not _valid_mode(mode):
        raise UsageError(f"invalid mode: {mode}")
    return ref, "ro" not in mode.split(",")


def _valid_mode(mode: str) -> bool:
    if not mode:
        return True
    counts = [0] * len(_MODE_KINDS)
    for option in mode.split(","):
        kind = next((i for i, k in enumerate(_MODE_KINDS) if option in k), None)
        if kind is None:
            return False
        counts[kind] += 1
    return max(counts) <= 1


def inherit(
    specs: Sequence[str],
    *,
    config_of: Callable[[str], Mapping[str, Any]],
    non_recursive_of: Callable[[Mapping[str, Any]], Iterable[str]],
) -> Inherited:
    """The mounts ``specs`` give, each source's stored config read by ``config_of(ref)``
    (which raises for a container that is not there) and the destinations of its binds
    mounted without their submounts by ``non_recursive_of(config)``. A source's ``--mount
    type=tmpfs`` is refused, as Docker 20.10 refuses it: it looks that mount up as a volume."""
    by_destination: dict[str, dict[str, Any]] = {}
    flat: set[str] = set()
    for spec in specs:
        ref, rw = parse(spec)
        stored = config_of(ref)
        source_flat = set(non_recursive_of(stored))
        for m in stored.get("Mounts") or ():
            dest = m["Destination"]
            if m["Type"] == "tmpfs":
                raise UsageError(
                    f"--volumes-from {spec}: its tmpfs mount at {dest} is no volume "
                    "(docker 20.10: get: no such volume)"
                )
            by_destination.pop(dest, None)  # a later source's entry comes later
            by_destination[dest] = {**m, "Mode": "", "RW": bool(m["RW"]) and rw}
            flat.discard(dest)
            if m["Type"] == "bind" and dest in source_flat:
                flat.add(dest)
    return Inherited(mounts=list(by_destination.values()), non_recursive=sorted(flat))


def without(inherited: Inherited, destinations: Iterable[str]) -> Inherited:
    """``inherited`` less what the container's own mounts at ``destinations`` replace."""
    taken = set(destinations)
    return Inherited(
        mounts=[m for m in inherited.mounts if m["Destination"] not in taken],
        non_recursive=[d for d in inherited.non_recursive if d not in taken],
    )
