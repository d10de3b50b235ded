"""Read ``/proc/self/mountinfo``: find mounts by target and check that an overlay mount is the
stack lamina asked for.

A line (proc(5))::

    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    (1)(2)(3)   (4)   (5)      (6)      (7)    (8) (9)    (10)         (11)

Fields 4, 5, 10 and the values in 11 escape space, tab, newline, backslash (and in 11 also ``,``
and ``=``) as ``\\ooo`` octal. The kernel shows each ``lowerdir+`` given through ``fsconfig`` as its
own ``lowerdir+=<path>`` option, and a legacy ``lowerdir=a:b`` as one option with ``\\:`` for a
literal colon.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from msgspec import Struct

from lamina.errors import MountError

MOUNTINFO = Path("/proc/self/mountinfo")
_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    raw = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)
    return raw.encode("latin-1", "surrogateescape").decode("utf-8", "surrogateescape")


class Mount(Struct, frozen=True, kw_only=True):
    mount_id: int
    parent_id: int
    root: str
    target: str
    mount_options: tuple[str, ...]  # per-mount: "ro", "nodev", ...
    fs_type: str
    source: str
    super_options: tuple[tuple[str, str], ...]  # per-superblock, in order; value "" for flags
    optional: tuple[str, ...] = ()  # field 7: "shared:1", "master:2", "unbindable", ...

    @property
    def propagation_tags(self) -> frozenset[str]:
        """The names of the optional fields: {"shared"}, {"master"}, ... (none: private)."""
        return frozenset(f.partition(":")[0] for f in self.optional)

    @property
    def read_only(self) -> bool:
        return "ro" in self.mount_options

    def option_values(self, key: str) -> list[str]:
        return [v for k, v in self.super_options if k == key]

    def lowerdirs(self) -> list[str]:
        """The overlay lower dirs, uppermost first, however they were given."""
        lowers: list[str] = []
        for key, value in self.super_options:
            if key == "lowerdir+":
                lowers.append(value)
            elif key == "lowerdir":
                lowers.extend(p.replace("\0", ":") for p in value.replace("\\:", "\0").split(":"))
        return lowers


def parse_line(line: str) -> Mount:
    fields = line.rstrip("\n").split(" ")
    sep = fields.index("-", 6)
    super_options: list[tuple[str, str]] = []
    for opt in fields[sep + 3].split(","):
        key, _, value = opt.partition("=")
        super_options.append((_unescape(key), _unescape(value)))
    return Mount(
        mount_id=int(fields[0]),
        parent_id=int(fields[1]),
        root=_unescape(fields[3]),
        target=_unescape(fields[4]),
        mount_options=tuple(fields[5].split(",")),
        fs_type=fields[sep + 1],
        source=_unescape(fields[sep + 2]),
        super_options=tuple(super_options),
        optional=tuple(fields[6:sep]),
    )


def read_mounts(path: Path = MOUNTINFO) -> list[Mount]:
    with path.open(encoding="latin-1") as f:
        return [parse_line(line) for line in f if line.strip()]


def _escape(path: str) -> str:
    """``path`` as the kernel writes it in fields 4 and 5 (``mangle``: space, tab, newline
    and backslash as octal)."""
    raw = path.encode("utf-8", "surrogateescape").decode("latin-1")
    if not any(c in raw for c in " \t\n\\"):
        return raw
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in raw)


def find_mount(target: Path, mounts: Iterable[Mount] | None = None) -> Mount | None:
    """The mount visible at ``target`` (the last one stacked there), or None."""
    wanted = str(target)
    found: Mount | None = None
    if mounts is None:
        # The common call (is this dir mounted?) parses only the lines mounted there.
        field = _escape(wanted)
        with MOUNTINFO.open(encoding="latin-1") as f:
            for line in f:
                parts = line.split(" ", 5)
                if len(parts) > 4 and parts[4] == field:
                    found = parse_line(line)
        return found
    for m in mounts:
        if m.target == wanted:
            found = m
    return found


def mount_of(path: Path, mounts: Iterable[Mount] | None = None) -> Mount | None:
    """The mount ``path`` (resolved) lives on: the one with the longest target above it,
    the last (topmost) of several at one target."""
    resolved = os.path.realpath(path)
    best: Mount | None = None
    for m in read_mounts() if mounts is None else mounts:
        inside = m.target in ("/", resolved) or resolved.startswith(m.target + "/")
        if inside and (best is None or len(m.target) >= len(best.target)):
            best = m
    return best


def is_mounted(target: Path) -> bool:
    return find_mount(target) is not None


def mounts_under(prefix: Path, mounts: Iterable[Mount] | None = None) -> list[Mount]:
    """Mounts at ``prefix`` or below it."""
    p = str(prefix).rstrip("/")
    return [
        m
        for m in (read_mounts() if mounts is None else mounts)
        if m.target == p or m.target.startswith(p + "/")
    ]


def verify_overlay(target: Path, *, lowers: list[str], upper: str | None) -> Mount:
    """Check that ``target`` carries an overlay with exactly ``lowers`` (uppermost first, as
    given to the kernel) and ``upper``; raise MountError otherwise."""
    m = find_mount(target)
    if m is None:
        raise MountError(f"{target}: mount reported success but is not in {MOUNTINFO}")
    problems: list[str] = []
    if m.fs_type != "overlay":
        problems.append(f"filesystem is {m.fs_type!r}, not overlay")
    shown = m.lowerdirs()
    if shown != lowers:
        problems.append(f"{len(shown)} lower dirs mounted, {len(lowers)} requested")
    shown_upper = m.option_values("upperdir")
    if (shown_upper[0] if shown_upper else None) != upper:
        problems.append(f"upperdir is {shown_upper or None}, expected {upper}")
    if (upper is None) != m.read_only:
        problems.append("mounted " + ("read-only" if m.read_only else "read-write"))
    if problems:
        raise MountError(
            f"{target}: the mounted overlay is not the requested stack: " + "; ".join(problems)
        )
    return m
