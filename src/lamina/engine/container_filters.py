"""``ps --filter`` as dockerd 20.10 reads it (daemon/list.go ``foldFilter`` and
``includeContainerInList``): the values of one key are OR-ed and different keys AND-ed, except
``label``, whose values must all hold (``MatchKVList``). Keys and values are checked before
anything is listed, and refused in Docker's words (:class:`InvalidFilterError`, exit 1).

Imported by ``ps`` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lamina.engine.filters import go_regexp, match_kv_list
from lamina.errors import InvalidFilterError

if TYPE_CHECKING:
    from lamina.digest import Digest
    from lamina.runtime import ContainerState
    from lamina.store.containers import ContainerRecord

# moby's acceptedPsFilterTags.
KEYS = frozenset(
    {
        "ancestor",
        "before",
        "exited",
        "health",
        "id",
        "label",
        "name",
        "status",
        "since",
        "volume",
        "network",
        "is-task",
        "publish",
        "expose",
        "isolation",
    }
)
# container.IsValidStateString / IsValidHealthString.
STATES = frozenset({"created", "restarting", "running", "removing", "paused", "exited", "dead"})
HEALTH = frozenset({"starting", "healthy", "unhealthy", "none"})
_INT64_MAX = 2**63 - 1
_GO_INT = re.compile(r"[+-]?[0-9]+")


class PsFilters:
    """Parsed and checked ``--filter`` pairs. ``container_id`` finds ``before``/``since``
    (a full id or a name, as Docker's ``idOrNameFilter``; raises ContainerNotFoundError);
    ``image_ids`` gives the image ids an ``ancestor`` value stands for (the image it names,
    by name or id prefix, and every image built on it; empty when it names none)."""

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        container_id: Callable[[str], str],
        image_ids: Callable[[str], set[Digest]],
    ) -> None:
        values: dict[str, list[str]] = {}
        for key, value in pairs:
            if key not in KEYS:
                raise InvalidFilterError(f"Invalid filter '{key}'")
            if value not in values.setdefault(key, []):
                values[key].append(value)
        self._values = values
        self.exit_codes = {_atoi(v) for v in values.get("exited", ())}
        for v in values.get("status", ()):
            if v not in STATES:
                raise InvalidFilterError(f"Invalid filter 'status={v}'")
        tasks = values.get("is-task", [])
        if any(v not in ("true", "false") for v in tasks):
            raise InvalidFilterError(f"Invalid filter 'is-task=[{' '.join(tasks)}]'")
        self._tasks_only = "true" in tasks  # lamina runs no swarm tasks
        for v in values.get("health", ()):
            if v not in HEALTH:
                raise InvalidFilterError(f"Unrecognised filter value for health: {v}")
        for key in ("publish", "expose"):
            for v in values.get(key, ()):
                _check_port_range(key, v)
        self.before = [container_id(v) for v in values.get("before", ())]
        self.since = [container_id(v) for v in values.get("since", ())]
        self._names = [(v, go_regexp(v, key="name")) for v in values.get("name", ())]
        self._ancestors: set[Digest] | None = None
        if "ancestor" in values:
            self._ancestors = set()
            for v in values["ancestor"]:
                self._ancestors |= image_ids(v)

    @property
    def shows_stopped(self) -> bool:
        """A ``status`` filter lists stopped containers without ``-a``, as Docker's."""
        return "status" in self._values

    def match(self, rec: ContainerRecord, state: ContainerState) -> bool:
        v = self._values
        if "id" in v and not any(rec.id.startswith(p) for p in v["id"]):
            return False
        if self._names and not any(
            name in (rec.name, "/" + rec.name) or rx.search("/" + rec.name) or rx.search(rec.name)
            for name, rx in self._names
        ):
            return False
        if "label" in v and not match_kv_list(v["label"], labels_of(rec)):
            return False
        status = state.docker_status
        if self.exit_codes and not (
            status == "exited"
            and state.started_at != _ZERO_TIME
            and state.exit_code in self.exit_codes
        ):
            return False
        if "status" in v and status not in v["status"]:
            return False
        if "health" in v and "none" not in v["health"]:  # lamina runs no health checks
            return False
        if "volume" in v and not _mounts_any(rec.config.get("Mounts") or [], v["volume"]):
            return False
        if self._ancestors is not None and rec.image not in self._ancestors:
            return False
        if "network" in v and network_of(rec) not in v["network"]:
            return False
        if "publish" in v or "expose" in v:  # lamina publishes and exposes no ports
            return False
        return not self._tasks_only


_ZERO_TIME = "0001-01-01T00:00:00Z"


def labels_of(rec: ContainerRecord) -> Mapping[str, str]:
    return rec.config["Config"].get("Labels") or {}


def network_of(rec: ContainerRecord) -> str:
    return str(rec.config.get("HostConfig", {}).get("NetworkMode") or "none")


def _mounts_any(mounts: list[dict[str, Any]], wanted: list[str]) -> bool:
    """A volume's name (a bind's source) or any mount's destination, exactly."""
    have = {m.get("Destination") for m in mounts} | {
        m.get("Name") or m.get("Source") for m in mounts
    }
    return any(w in have for w in wanted)


def _atoi(text: str) -> int:
    """Go's ``strconv.Atoi``, its errors word for word (Docker shows them)."""
    if not _GO_INT.fullmatch(text):
        raise InvalidFilterError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    n = int(text)
    if not -_INT64_MAX - 1 <= n <= _INT64_MAX:
        raise InvalidFilterError(f'strconv.Atoi: parsing "{text}": value out of range')
    return n


def _check_port_range(key: str, value: str) -> None:
    """``PORT[-PORT][/PROTO]``, refused as Docker's ``nat.ParsePortRange`` refuses it."""
    for part in value.partition("/")[0].split("-", 1):
        if not (part.isascii() and part.isdigit()):
            why = "invalid syntax"
        elif int(part) > 65535:
            why = "value out of range"
        else:
            continue
        raise InvalidFilterError(
            f'error while looking up for {key} {value}: strconv.ParseUint: parsing "{part}": ' + why
        )


# RE2's POSIX classes ([[:alpha:]]), which Python's re lacks.
