"""Builds layer tars (good and evil) with stdlib tarfile, and a sandbox that proves a refusal
touched nothing outside the destination."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from backports import zstd

from lamina.archive import changes
from lamina.archive.apply import ApplyResult, WhiteoutFormat, apply_layer
from lamina.archive.entry import IndexEntry


class LayerTar:
    def __init__(self, *, fmt: int = tarfile.PAX_FORMAT) -> None:
        self._buf = io.BytesIO()
        self._tar = tarfile.open(  # noqa: SIM115 - closed by bytes()
            fileobj=self._buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape"
        )

    def add(
        self, name: str, typ: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object
    ) -> LayerTar:
        ti = tarfile.TarInfo(name)
        ti.type = typ
        ti.mtime = 1_700_000_000
        for key, value in attrs.items():
            setattr(ti, key, value)
        ti.size = len(data) if typ == tarfile.REGTYPE else 0
        self._tar.addfile(ti, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
        return self

    def file(self, name: str, data: bytes = b"", **attrs: object) -> LayerTar:
        return self.add(name, tarfile.REGTYPE, data, **attrs)

    def dir(self, name: str, **attrs: object) -> LayerTar:
        attrs.setdefault("mode", 0o755)
        return self.add(name, tarfile.DIRTYPE, **attrs)

    def symlink(self, name: str, target: str, **attrs: object) -> LayerTar:
        return self.add(name, tarfile.SYMTYPE, linkname=target, **attrs)

    def hardlink(self, name: str, target: str) -> LayerTar:
        return self.add(name, tarfile.LNKTYPE, linkname=target)

    def xattrs(self, name: str, xattrs: dict[str, bytes], typ: bytes = tarfile.DIRTYPE) -> LayerTar:
        pax = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()}
        return self.add(name, typ, pax_headers=pax, mode=0o755)

    def bytes(self) -> bytes:
        self._tar.close()
        return self._buf.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    return zstd.compress(data)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Applied:
    """An ApplyResult with the index rows apply_layer streamed, collected."""

    result: ApplyResult
    entries: list[IndexEntry] = field(default_factory=list)

    def __getattr__(self, name: str) -> object:
        return getattr(self.result, name)


def apply(
    data: bytes, dest: Path, fmt: WhiteoutFormat = WhiteoutFormat.APPLY, **kw: object
) -> Applied:
    rows: list[IndexEntry] = []
    result = apply_layer(io.BytesIO(data), dest, fmt=fmt, rows=rows.extend, **kw)  # type: ignore[arg-type]
    assert result.entry_count == len(rows)
    return Applied(result, rows)


@dataclass
class Sandbox:
    """``dest`` to extract into; ``outside`` holds a canary that must never change."""

    root: Path

    @property
    def dest(self) -> Path:
        return self.root / "dest"

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    def setup(self) -> Sandbox:
        self.dest.mkdir()
        self.outside.mkdir()
        (self.outside / "canary").write_bytes(b"canary")
        (self.outside / "victim").write_bytes(b"victim")
        self._before = self.snapshot()
        return self

    def snapshot(self) -> dict[str, tuple[int, int, bytes]]:
        out: dict[str, tuple[int, int, bytes]] = {}
        for dirpath, dirnames, filenames in os.walk(self.outside):
            for n in dirnames + filenames:
                p = Path(dirpath, n)
                st = p.lstat()
                data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
                out[str(p)] = (st.st_mode, st.st_mtime_ns, data)
        st = self.root.lstat()
        out["<root>"] = (st.st_mode, st.st_nlink, b"")
        out["<entries>"] = (0, 0, "\0".join(sorted(os.listdir(self.root))).encode())
        return out

    def assert_untouched(self) -> None:
        assert self.snapshot() == self._before


def write_tree_diff(
    lower: Path | None, upper: Path, out: io.BytesIO, **kw: object
) -> list[IndexEntry]:
    """changes.write_tree_diff, its index rows collected."""
    rows: list[IndexEntry] = []
    changes.write_tree_diff(lower, upper, out, rows=rows.extend, **kw)  # type: ignore[arg-type]
    return rows


def write_upper_dir(upper: Path, out: io.BytesIO, **kw: object) -> list[IndexEntry]:
    """changes.write_upper_dir, its index rows collected."""
    rows: list[IndexEntry] = []
    changes.write_upper_dir(upper, out, rows=rows.extend, **kw)  # type: ignore[arg-type]
    return rows
