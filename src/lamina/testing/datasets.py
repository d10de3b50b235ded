"""Datasets the benchmarks and the heavier tests build for themselves (no registry needed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SHM = Path("/dev/shm")


def debian_minbase_tar_gz(data_dir: Path) -> Path:
    """A Debian bookworm minbase rootfs as ``<data_dir>/debian-minbase.tar.gz``, made once with
    debootstrap from the mirror apt already uses (~6.7k entries, ~61 MB gzipped)."""
    out = data_dir / "debian-minbase.tar.gz"
    if out.exists():
        return out
    data_dir.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=SHM if SHM.is_dir() else None))
    try:
        mirror = apt_mirror()
        print(f"preparing a Debian minbase rootfs with debootstrap from {mirror} ...",
              file=sys.stderr)  # fmt: skip
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(target), mirror],
            check=True, capture_output=True,
        )  # fmt: skip
        tmp = out.with_suffix(".tmp")
        # Without the .debs debootstrap leaves in apt's cache: the image the issues describe.
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "--exclude=./var/cache/apt/archives/*.deb",
             "-C", str(target), "-czf", str(tmp), "."],
            check=True, capture_output=True,
        )  # fmt: skip
        tmp.rename(out)
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return out


def apt_mirror() -> str:
    """The Debian archive apt uses (the only network here is the package registries)."""
    sources = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        sources += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    for src in sources:
        try:
            text = src.read_text()
        except OSError:
            continue
        for word in text.split():
            if word.startswith("http") and word.rstrip("/").endswith("/debian"):
                return word
    return "http://deb.debian.org/debian"
