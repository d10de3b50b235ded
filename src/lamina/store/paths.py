"""Where things live under a store root: the only module that joins paths under it.

::

    <root>/lamina.db               SQLite (WAL): layers, images, names, file index, staging rows
    <root>/lamina.lock             fcntl lock file of the store lock (see store/store.py)
    <root>/blobs/sha256/<hex>      blobs (an OCI image layout's blob dir, so export can hardlink)
    <root>/overlay|vfs/...         the driver's home; only the driver writes there
    <root>/containers/<id>/        container bundles (later issues)
    <root>/volumes/<name>/_data    volume data (later issues)
    <root>/tmp/                    staging; everything is written here, then renamed into place

Every component joined here is either a constant or a validated value (a ``Digest``'s hex, a
64-hex id, a Docker volume name), so nothing a user or an image supplies can climb out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from msgspec import Struct

from lamina.digest import Digest
from lamina.errors import UsageError

SYSTEM_ROOT: Final = Path("/var/lib/lamina")
ENV_ROOT: Final = "LAMINA_ROOT"

# Modes as Docker uses them: the root is 0710 so the daemon's group may traverse but host users
# cannot reach container files; blobs and staging are private.
ROOT_MODE: Final = 0o710
PRIVATE_MODE: Final = 0o700
CONTAINERS_MODE: Final = 0o710
VOLUMES_MODE: Final = 0o701

_ID_RE: Final = re.compile(r"[0-9a-f]{64}")
# Docker's volume-name rule (daemon/names.go RestrictedNamePattern).
_VOLUME_RE: Final = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_NAME_MAX: Final = 255  # a file name's limit on Linux filesystems


def default_root(
    explicit: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    uid: int | None = None,
) -> Path:
    """``--root``, else ``$LAMINA_ROOT``, else /var/lib/lamina for uid 0, else
    ``$XDG_DATA_HOME/lamina`` (``~/.local/share/lamina`` when unset)."""
    environ = os.environ if env is None else env
    if explicit is not None and str(explicit) != "":
        return Path(explicit).absolute()
    if environ.get(ENV_ROOT):
        return Path(environ[ENV_ROOT]).absolute()
    if (os.geteuid() if uid is None else uid) == 0:
        return SYSTEM_ROOT
    xdg = environ.get("XDG_DATA_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "lamina"
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".local" / "share" / "lamina"


class StorePaths(Struct, frozen=True, kw_only=True):
    """The fixed layout of one store root."""

    root: Path

    @property
    def db(self) -> Path:
        return self.root / "lamina.db"

    @property
    def lock(self) -> Path:
        return self.root / "lamina.lock"

    @property
    def blobs(self) -> Path:
        """The dir holding ``<hex>`` files: ``<root>/blobs/sha256``."""
        return self.root / "blobs" / "sha256"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def runtime(self) -> Path:
        """The OCI runtime's state: runc's --root and the shims' records."""
        return self.root / "runtime"

    def blob(self, digest: Digest) -> Path:
        # Digest(...) re-validates a plain str, so a caller cannot smuggle "../" in.
        return self.blobs / Digest(digest).hex

    def container(self, container_id: str) -> Path:
        if _ID_RE.fullmatch(container_id) is None:
            raise UsageError(f"invalid container id {container_id[:80]!r}: need 64 lowercase hex")
        return self.containers / container_id

    def volume(self, name: str) -> Path:
        if _VOLUME_RE.fullmatch(name) is None:
            raise UsageError(
                f"invalid volume name {name[:80]!r}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]+"
            )
        if len(name) > _NAME_MAX:  # the volume is a dir of that name (Docker fails at mkdir)
            raise UsageError(f"invalid volume name {name[:80]!r}...: longer than 255 characters")
        return self.volumes / name

    def ensure(self) -> None:
        """Create the layout (idempotent). Existing dirs keep the mode an admin gave them."""
        _mkdir(self.root, ROOT_MODE, parents=True)
        _mkdir(self.root / "blobs", PRIVATE_MODE)
        _mkdir(self.blobs, PRIVATE_MODE)
        _mkdir(self.tmp, PRIVATE_MODE)
        _mkdir(self.containers, CONTAINERS_MODE)
        _mkdir(self.volumes, VOLUMES_MODE)


def _mkdir(path: Path, mode: int, *, parents: bool = False) -> None:
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not path.is_dir():
            raise
        return
    # mkdir's mode is filtered by the umask; the layout's modes are part of its security.
    os.chmod(path, mode)
