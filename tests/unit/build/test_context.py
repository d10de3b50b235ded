"""COPY/ADD sources: confinement, selection (globs, .dockerignore), the cache hash (content and
landing metadata, not mtimes) and Docker's destination rules, on plain tmp dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lamina.build.context import Owner, SourceRoot, clean_source, select, sources_hash
from lamina.build.destination import copy_selected
from lamina.build.dockerignore import IgnoreMatcher
from lamina.errors import BuildError

ROOT = Owner(uid=0, gid=0)


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    c = tmp_path / "ctx"
    (c / "dir" / "sub").mkdir(parents=True)
    (c / "a.txt").write_text("a\n")
    (c / "b.txt").write_text("b\n")
    (c / "x.log").write_text("log\n")
    (c / "dir" / "one").write_text("1\n")
    (c / "dir" / "sub" / "two").write_text("2\n")
    return c


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    return r


def test_clean_source_refuses_climbing_out() -> None:
    assert clean_source("/a/./b/../c/", root_label="ctx") == "a/c"
    with pytest.raises(BuildError, match="outside the ctx"):
        clean_source("../x", root_label="ctx")
    with pytest.raises(BuildError):
        clean_source("a/../../x", root_label="ctx")


def test_select_globs_and_ignore(ctx: Path) -> None:
    root = SourceRoot(path=ctx, ignore=IgnoreMatcher(["*.log"]))
    sel = select(root, ["*.txt"])
    assert [s.rel for s in sel.sources] == ["a.txt", "b.txt"] and sel.wildcard
    assert [s.rel for s in select(root, ["*"]).sources] == ["a.txt", "b.txt", "dir"]
    with pytest.raises(BuildError, match="no such file"):
        select(root, ["x.log"])
    with pytest.raises(BuildError, match="no such file"):
        select(root, ["missing"])


def test_parent_symlinks_resolve_inside_the_root(ctx: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("host\n")
    os.symlink("../../..", ctx / "up")
    sel = select(SourceRoot(path=ctx), ["up/a.txt"])
    assert sel.sources[0].rel == "up/a.txt"  # resolved as <ctx>/a.txt, never the host's
    with pytest.raises(BuildError):
        select(SourceRoot(path=ctx), ["up/outside"])


def test_hash_ignores_mtime_but_not_content_name_or_mode(ctx: Path) -> None:
    root = SourceRoot(path=ctx)

    def h(*patterns: str) -> str:
        return sources_hash(select(root, list(patterns)), owner=ROOT, chmod=None)

    first = h("dir")
    assert first.startswith("dir:") and h("a.txt").startswith("file:")
    assert h("a.txt", "b.txt").startswith("multi:")
    os.utime(ctx / "dir" / "one", (1, 1))
    assert h("dir") == first
    os.chmod(ctx / "dir" / "one", 0o600)
    chmodded = h("dir")
    assert chmodded != first
    (ctx / "dir" / "one").write_text("changed\n")
    edited = h("dir")
    assert edited not in (first, chmodded)
    os.rename(ctx / "dir" / "one", ctx / "dir" / "uno")
    assert h("dir") not in (first, chmodded, edited)
    sel = select(root, ["a.txt"])
    assert sources_hash(sel, owner=ROOT, chmod=0o700) != sources_hash(sel, owner=ROOT, chmod=None)


def _copy(ctx: Path, rootfs: Path, patterns: list[str], dest: str) -> None:
    sel = select(SourceRoot(path=ctx), patterns)
    copy_selected(sel, rootfs=rootfs, dest=dest, owner=ROOT, chmod=None)


def test_destination_rules(ctx: Path, rootfs: Path) -> None:
    _copy(ctx, rootfs, ["a.txt"], "/new/name")  # no slash, missing: a file of that name
    assert (rootfs / "new" / "name").read_text() == "a\n"
    _copy(ctx, rootfs, ["a.txt"], "/etc")  # an existing dir: into it
    assert (rootfs / "etc" / "a.txt").is_file()
    _copy(ctx, rootfs, ["a.txt"], "/d/")  # trailing slash: into a new dir
    assert (rootfs / "d" / "a.txt").is_file()
    _copy(ctx, rootfs, ["dir"], "/app")  # a dir copies its contents
    assert (rootfs / "app" / "one").is_file() and (rootfs / "app" / "sub" / "two").is_file()
    with pytest.raises(BuildError, match="must be a directory and end with a /"):
        _copy(ctx, rootfs, ["a.txt", "b.txt"], "/many")
    _copy(ctx, rootfs, ["a.txt", "b.txt"], "/many/")
    assert sorted(os.listdir(rootfs / "many")) == ["a.txt", "b.txt"]
    with pytest.raises(BuildError, match="not a directory"):
        _copy(ctx, rootfs, ["dir"], "/etc/a.txt")  # a dir onto an existing file
    (ctx / "sub").write_text("a file named like the dir in /app\n")
    with pytest.raises(BuildError, match="cannot overwrite directory"):
        _copy(ctx, rootfs, ["sub"], "/app/")


def test_symlinks_are_copied_as_links_and_dest_links_stay_inside(
    ctx: Path, rootfs: Path, tmp_path: Path
) -> None:
    os.symlink("/etc/shadow", ctx / "link")
    _copy(ctx, rootfs, ["link"], "/l")
    assert os.readlink(rootfs / "l") == "/etc/shadow"
    # A destination through an absolute link lands inside the rootfs, not on the host.
    (rootfs / "target").mkdir()
    os.symlink("/target", rootfs / "via")
    _copy(ctx, rootfs, ["a.txt"], "/via/")
    assert (rootfs / "target" / "a.txt").read_text() == "a\n"
    assert not Path("/target/a.txt").exists() or Path("/target/a.txt").read_text() != "a\n"


def test_owner_and_chmod_land(ctx: Path, rootfs: Path) -> None:
    sel = select(SourceRoot(path=ctx), ["dir"])
    copy_selected(sel, rootfs=rootfs, dest="/o/", owner=Owner(uid=7, gid=8), chmod=0o750)
    st = os.stat(rootfs / "o" / "sub" / "two")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (7, 8, 0o750)
