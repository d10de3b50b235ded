"""The replay of whiteouts, opaque dirs and replacements; waste with hardlinks; recovery through
symlinks inside the image only."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from lamina.errors import ConflictError
from lamina.forensics import recover, waste
from lamina.forensics.replay import Action, all_events, view_at
from lamina.forensics.stack import Stack, from_image
from lamina.image.layers import BytesLayer
from lamina.image.mutate import MemoryImage
from lamina.oci.config import History, new_config


def _tar(*members: tuple[Any, ...]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for kind, path, *rest in members:
            ti = tarfile.TarInfo(path)
            data = b""
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "file":
                data = rest[0]
                ti.size, ti.mode = len(data), rest[1] if len(rest) > 1 else 0o644
            elif kind == "wh":
                head, _, base = path.rpartition("/")
                ti.name = f"{head}/.wh.{base}" if head else f".wh.{base}"
            elif kind == "opq":
                ti.name = f"{path}/.wh..wh..opq"
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, rest[0]
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, rest[0]
            tf.addfile(ti, io.BytesIO(data) if data else None)
    return out.getvalue()


def stack_of(*layers: bytes) -> Stack:
    views = [BytesLayer.from_tar(t) for t in layers]
    raw = new_config(
        diff_ids=[v.diff_id for v in views],
        history=[History(created_by=f"step {i}") for i in range(len(views))],
        created="2024-01-01T00:00:00Z",
        config={},
    )
    return from_image(MemoryImage(raw_config=raw, layers=views), name="t", source="memory")


def _actions(stack: Stack, layer: int) -> list[tuple[str, Action]]:
    per_layer, _ = all_events(stack)
    return [(e.path, e.action) for e in per_layer[layer]]


def test_whiteout_of_a_dir_deletes_its_subtree() -> None:
    s = stack_of(
        _tar(("dir", "a"), ("file", "a/x", b"1"), ("dir", "a/d"), ("file", "a/d/y", b"2")),
        _tar(("wh", "a")),
    )
    assert sorted(_actions(s, 1)) == [
        ("a", Action.DELETED),
        ("a/d", Action.DELETED),
        ("a/d/y", Action.DELETED),
        ("a/x", Action.DELETED),
    ]
    assert view_at(s).items == {}


def test_opaque_hides_lower_children_only_and_a_file_hides_a_dir() -> None:
    s = stack_of(
        _tar(("dir", "a"), ("file", "a/old", b"1"), ("dir", "b"), ("file", "b/z", b"3")),
        _tar(("dir", "a"), ("opq", "a"), ("file", "a/new", b"2"), ("file", "b", b"now a file")),
    )
    acts = dict(_actions(s, 1))
    assert acts["a/old"] is Action.HIDDEN
    assert acts["a/new"] is Action.ADDED
    assert acts["b/z"] is Action.HIDDEN
    assert acts["b"] is Action.MODIFIED
    assert sorted(view_at(s).items) == ["a", "a/new", "b"]


def test_dirs_without_entries_are_dirs_to_whiteouts_opaques_and_files() -> None:
    """A tar need not list parent dirs. A whiteout, an opaque marker or a file replacing such
    a dir deleted nothing in the view: tree, trace and secrets called its files present (and
    not hidden) while the rootfs had none of them."""
    s = stack_of(
        _tar(("file", "gone/deep/key", b"k"), ("file", "opq/deep/old", b"o"),
             ("file", "swap/deep/f", b"f"), ("file", "kept/deep/k", b"k")),
        _tar(("wh", "gone"), ("opq", "opq/deep"), ("file", "opq/deep/new", b"n"),
             ("file", "swap", b"now a file")),
    )  # fmt: skip
    acts = dict(_actions(s, 1))
    assert acts["gone/deep/key"] is Action.DELETED
    assert acts["opq/deep/old"] is Action.HIDDEN
    assert acts["swap/deep/f"] is Action.HIDDEN
    assert sorted(view_at(s).items) == ["kept/deep/k", "opq/deep/new", "swap"]
    assert recover.resolve(view_at(s), "kept/deep/k")[1] is not None  # cat finds it


def test_chmod_only_and_identical_copies() -> None:
    s = stack_of(
        _tar(("file", "f", b"same", 0o644), ("file", "g", b"same")),
        _tar(("file", "f", b"same", 0o755), ("file", "g", b"same")),
    )
    per_layer, _ = all_events(s)
    got = {e.path: (e.action, e.changed) for e in per_layer[1]}
    assert got == {"f": (Action.METADATA, ("mode",)), "g": (Action.READDED, ())}


def test_waste_counts_hardlinked_content_once_and_keeps_what_a_link_still_shows() -> None:
    s = stack_of(
        _tar(
            ("file", "a", b"A" * 100),
            ("hard", "b", "a"),
            ("file", "c", b"C" * 50),
            ("hard", "d", "c"),
        ),
        _tar(("wh", "a"), ("wh", "c"), ("wh", "d")),
    )
    w = waste.waste(s)
    assert w.total_bytes == 150
    # "a" is gone but its bytes are still the image's "b"; "c" and "d" are both gone.
    assert (w.reclaimable_bytes, w.deleted_bytes) == (50, 50)
    assert [p.path for p in w.paths] == ["c"]


def test_cat_follows_symlinks_inside_the_image_only() -> None:
    s = stack_of(
        _tar(
            ("dir", "etc"),
            ("file", "etc/real", b"real"),
            ("sym", "etc/abs", "/etc/real"),
            ("sym", "etc/climb", "../../../../etc/real"),
            ("dir", "usr"),
            ("sym", "lib", "usr/lib"),
            ("dir", "usr/lib"),
            ("file", "usr/lib/os", b"os"),
        ),
    )
    for path in ("/etc/abs", "etc/climb", "/lib/os"):
        out = io.BytesIO()
        recover.cat(s, path, layer=None, out=out)
        assert out.getvalue() in (b"real", b"os")


def test_extract_keeps_symlinks_as_data(tmp_path: Path) -> None:
    s = stack_of(
        _tar(("dir", "etc"), ("sym", "etc/passwd-link", "/etc/passwd"), ("file", "etc/motd", b"hi"))
    )
    recover.extract(s, ["/etc"], dest=tmp_path / "out", layer=None)
    link = tmp_path / "out/etc/passwd-link"
    assert link.is_symlink() and str(link.readlink()) == "/etc/passwd"
    assert (tmp_path / "out/etc/motd").read_bytes() == b"hi"
    with pytest.raises(ConflictError):  # never overwrites what is already there
        recover.extract(s, ["/etc/motd"], dest=tmp_path / "out", layer=None)
