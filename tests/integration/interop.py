"""Helpers for the interop tests: the tree comparison they all use and the peers' views.

Every store lives under one tmpfs dir per session (/dev/shm): podman/buildah/skopeo with a
private config (:class:`PodmanEnv`), dockerd 20.10 on a private socket (:class:`DockerDaemon`),
and lamina roots per test. The oracle is always the peer's own view of an image: ``umoci
unpack``'s rootfs, ``podman image mount``, or dockerd's overlay2 layer dirs mounted read-only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lamina.testing.peers import DockerDaemon, PodmanEnv

REPO = Path(__file__).resolve().parents[2]
LAMINA = [sys.executable, "-m", "lamina"]
FIXTURES = REPO.parent / "shared" / "fixtures"
BUILD_DATA = REPO / "tests" / "data" / "build"

# xattrs that describe the storage, not the image: overlayfs' own and the LSM's label.
_HIDDEN_XATTRS = ("trusted.overlay.", "user.overlay.", "security.selinux")
_KINDS = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """Path -> (kind, mode, uid, gid, size, content, xattrs, hardlink group) for every entry
    under ``root`` (root itself as "."). content is the sha256 of a file, a symlink's target, a
    device's major:minor. Directory sizes and all mtimes are left out: they describe the
    filesystem the tree sits on, not the image."""
    stats: dict[str, os.stat_result] = {".": os.lstat(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            stats[os.path.relpath(full, root)] = os.lstat(full)
    inodes: dict[tuple[int, int], list[str]] = {}
    for rel, st in stats.items():
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
    out: dict[str, tuple[Any, ...]] = {}
    for rel, st in stats.items():
        full = os.path.join(root, rel)
        kind = _KINDS[stat.S_IFMT(st.st_mode)]
        content: str = ""
        if kind == "file":
            h = hashlib.sha256()
            with open(full, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            content = h.hexdigest()
        elif kind == "symlink":
            content = os.readlink(full)
        elif kind in ("char", "block"):
            content = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
        xattrs = tuple(
            sorted(
                (n, os.getxattr(full, n, follow_symlinks=False))
                for n in os.listxattr(full, follow_symlinks=False)
                if not n.startswith(_HIDDEN_XATTRS)
            )
        )
        group = inodes.get((st.st_dev, st.st_ino))
        out[rel] = (
            kind,
            stat.S_IMODE(st.st_mode),
            st.st_uid,
            st.st_gid,
            st.st_size if kind != "dir" else None,
            content,
            xattrs,
            tuple(sorted(group)) if group and len(group) > 1 else None,
        )
    return out


def assert_same_tree(ours: dict[str, tuple[Any, ...]], theirs: dict[str, tuple[Any, ...]]) -> None:
    """Equal trees, with a readable difference when not (first 20 paths)."""
    if "." not in theirs:
        ours = {k: v for k, v in ours.items() if k != "."}
    if ours == theirs:
        return
    only_ours = sorted(set(ours) - set(theirs))[:20]
    only_theirs = sorted(set(theirs) - set(ours))[:20]
    differ = [
        (p, ours[p], theirs[p]) for p in sorted(set(ours) & set(theirs)) if ours[p] != theirs[p]
    ]
    pytest.fail(
        f"trees differ: only lamina {only_ours}; only peer {only_theirs}; "
        f"differ (path, lamina, peer) {differ[:20]}",
        pytrace=False,
    )


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
    r = subprocess.run(cmd, capture_output=True, check=False, **kw)
    if r.returncode != 0:
        raise AssertionError(
            f"{cmd} exited {r.returncode}: {r.stderr.decode(errors='replace')[-3000:]}"
        )
    return r


@dataclass
class Lamina:
    """The real ``lamina`` CLI on its own store root."""

    root: Path

    def __call__(self, *args: str, input: bytes | None = None) -> str:
        r = run([*LAMINA, "--root", str(self.root), *args], input=input)
        return r.stdout.decode()

    def load(self, archive: Path) -> str:
        """Load ``archive``; the name (or id) lamina reports for the last image."""
        out = self("load", "-q", "-i", str(archive))
        last = out.strip().splitlines()[-1]
        return last.rsplit(" ", 1)[-1]

    def tree(self, image: str) -> dict[str, tuple[Any, ...]]:
        merged = Path(self("image", "mount", image).strip())
        try:
            return tree(merged)
        finally:
            self("image", "umount", image)

    def image_id(self, image: str) -> str:
        return self("inspect", "-f", "{{.Id}}", image).strip()


@dataclass
class DriverLamina:
    """The real ``lamina`` CLI on a store root with a storage driver, bytes in and out, run
    from the root's parent (a stray relative path lands in the test's tmp dir)."""

    root: Path
    driver: str

    def run(
        self, *args: str, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        r = subprocess.run(
            [*LAMINA, "--root", str(self.root), "--storage-driver", self.driver, *args],
            capture_output=True,
            timeout=60,
            check=False,
            cwd=self.root.parent,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"lamina {' '.join(args)} -> {r.returncode}\n{r.stderr!r}")
        return r


def podman_load(penv: PodmanEnv, archive: Path) -> str:
    """``podman load``; the image id (sha256:...) podman assigned."""
    out = penv.run("podman", "load", "-q", "-i", str(archive)).stdout.decode()
    ref = out.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    raw = penv.run("podman", "image", "inspect", "-f", "{{.Id}}", ref).stdout.decode().strip()
    return raw if raw.startswith("sha256:") else f"sha256:{raw}"


def podman_tree(penv: PodmanEnv, image: str) -> dict[str, tuple[Any, ...]]:
    """podman's mount of ``image``; its root dir is left out: containers/storage shows the
    mount point's own 0555 there whatever the layers say (umoci and dockerd show the layers')."""
    merged = Path(penv.run("podman", "image", "mount", image).stdout.decode().strip())
    try:
        out = tree(merged)
        del out["."]
        return out
    finally:
        penv.run("podman", "image", "unmount", image, check=False)


def umoci_tree(layout_dir: Path, ref: str, work: Path) -> dict[str, tuple[Any, ...]]:
    bundle = Path(tempfile.mkdtemp(prefix="umoci-", dir=work))
    shutil.rmtree(bundle)
    run(["umoci", "unpack", "--image", f"{layout_dir}:{ref}", str(bundle)])
    try:
        return tree(bundle / "rootfs")
    finally:
        shutil.rmtree(bundle, ignore_errors=True)


def docker_tree(docker: DockerDaemon, image: str, work: Path) -> dict[str, tuple[Any, ...]]:
    """The image as dockerd stores it: its overlay2 layer dirs mounted read-only, top first."""
    r = docker.run("image", "inspect", "-f", "{{json .GraphDriver.Data}}", image)
    import json

    data = json.loads(r.stdout)
    lowers = [data["UpperDir"], *(data.get("LowerDir") or "").split(":")]
    lowers = [x for x in lowers if x]
    mnt = Path(tempfile.mkdtemp(prefix="dmerged-", dir=work))
    empty = Path(tempfile.mkdtemp(prefix="dempty-", dir=work))
    if len(lowers) == 1:  # overlay needs two lowers without an upper
        lowers.append(str(empty))
    run(["mount", "-t", "overlay", "overlay", "-o", "ro,lowerdir=" + ":".join(lowers), str(mnt)])
    try:
        return tree(mnt)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
        mnt.rmdir()
        empty.rmdir()
