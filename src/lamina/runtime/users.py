"""``--user`` resolution against the image's own ``/etc/passwd`` and ``/etc/group``.

Semantics follow ``moby/sys/user.GetExecUser`` (what Docker and runc use): an empty user is
root; a name must exist in ``/etc/passwd``; a number need not (it then has gid 0 and home
``/``); ``USER:GROUP`` resolves the group the same way; supplementary groups are those listing
the user's name. The files are read through :mod:`lamina.runtime.rootfs`, confined to the rootfs
and capped in size, because they come from the image.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from msgspec import Struct

from lamina.errors import UsageError
from lamina.runtime.rootfs import read_small_file

_MAX_ID: Final = 2**31 - 1  # ids are signed 32-bit in the kernel ABI
_GO_INT: Final = re.compile(r"^[+-]?[0-9]+$")


class UnknownUserError(UsageError):
    """``--user`` names a user or group the image does not have."""

    exit_status = 125  # as ``docker run``: the engine could not start the container

    def __init__(self, *, kind: str, name: str) -> None:
        table = "passwd" if kind == "user" else kind
        super().__init__(f"unable to find {kind} {name}: no matching entries in {table} file")
        self.kind = kind
        self.name = name


class ExecUser(Struct, frozen=True, kw_only=True):
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def _parse_id(text: str) -> int | None:
    if not (text.isascii() and text.isdigit()):  # int() also takes other scripts' digits
        return None
    value = int(text)
    if value > _MAX_ID:
        raise UsageError(f"user or group id {text} is out of range (0..{_MAX_ID})")
    return value


def _rows(data: bytes | None) -> list[list[str]]:
    if data is None:
        return []
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#"):
            continue
        rows.append(line.split(":"))
    return rows


def resolve_user(spec: str, *, rootfs: Path) -> ExecUser:
    """Resolve ``spec`` (``""``, ``name``, ``uid``, ``name:group``, ``uid:gid``, ...).

    Raises UnknownUserError for a name the image does not define, UsageError for a malformed
    spec, LimitExceededError if the image's account files are absurdly large."""
    user_part, _, group_part = spec.partition(":")
    if spec.count(":") > 1:
        raise UsageError(f"invalid user {spec!r}: expected USER[:GROUP]")
    passwd = _rows(read_small_file(rootfs, "/etc/passwd"))
    uid_num = _parse_id(user_part) if user_part else 0
    uid, gid, home, name = 0, 0, "/", ""
    entry = None
    for row in passwd:
        if len(row) < 7:
            continue
        if (uid_num is None and row[0] == user_part) or (
            uid_num is not None and row[2] == str(uid_num)
        ):
            entry = row
            break
    if entry is not None:
        uid = _parse_id(entry[2]) or 0
        gid = _parse_id(entry[3]) or 0
        home = entry[5] or "/"
        name = entry[0]
    elif uid_num is None:
        raise UnknownUserError(kind="user", name=user_part)
    else:
        uid = uid_num
    groups = _rows(read_small_file(rootfs, "/etc/group")) if (group_part or name) else []
    if group_part:
        gid_num = _parse_id(group_part)
        for row in groups:
            if len(row) < 3:
                continue
            if (gid_num is None and row[0] == group_part) or (
                gid_num is not None and row[2] == str(gid_num)
            ):
                gid = _parse_id(row[2]) or 0
                break
        else:
            if gid_num is None:
                raise UnknownUserError(kind="group", name=group_part)
            gid = gid_num
    # As runc's GetExecUser under Docker: memberships from /etc/group count only in the
    # implicit form (``-u name``, ``-u uid`` of a known user); an explicit group (``name:grp``)
    # drops them. The primary group is always in the list (docker run ... id: groups=0(root)).
    extra: list[int] = [gid]
    if name and not group_part:
        for row in groups:
            if len(row) < 4:
                continue
            members = [m.strip() for m in row[3].split(",")]
            group_id = _parse_id(row[2])
            if name in members and group_id is not None and group_id not in (gid, *extra):
                extra.append(group_id)
    return ExecUser(uid=uid, gid=gid, additional_gids=tuple(extra), home=home)


def additional_groups(groups: Sequence[str], *, rootfs: Path) -> tuple[int, ...]:
    """``--group-add``'s gids, as runc's GetAdditionalGroups finds them: a name or id of the
    image's /etc/group (the first row matching), else a number in the id range; each gid
    once. Raises UsageError in Docker's words for a name the image lacks or a bad number."""
    if not groups:
        return ()
    rows = [r for r in _rows(read_small_file(rootfs, "/etc/group")) if len(r) >= 3]
    out: list[int] = []
    for wanted in groups:
        found = None
        for row in rows:
            gid = int(row[2]) if row[2].isascii() and row[2].isdigit() else None
            if gid is not None and wanted in (row[0], str(gid)) and gid not in out:
                found = gid
                break
        if found is None:
            number = int(wanted) if _GO_INT.match(wanted) else None
            if number is None or not -(1 << 63) <= number < 1 << 63:  # strconv.ParseInt's
                raise UsageError(
                    f"Unable to find group {wanted}: no matching entries in group file"
                )
            if not 0 <= number <= _MAX_ID:
                raise UsageError(f"uids and gids must be in range 0-{_MAX_ID}")
            found = number
        if found not in out:
            out.append(found)
    return tuple(out)
