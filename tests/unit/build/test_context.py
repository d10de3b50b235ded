"""COPY/ADD sources: confinement, selection (globs, .dockerignore), the cache hash (content and
landing metadata, not mtimes) and Docker's destination rules, on plain tmp dirs."""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

import pytest

from lamina.build.context import (
    Owner,
    SourceRoot,
    clean_source,
    select,
    sources_hash,
    walk_source,
)
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


def test_links_below_a_source_dir_are_copied_as_links_and_dest_links_stay_inside(
    ctx: Path, rootfs: Path, tmp_path: Path
) -> None:
    os.symlink("/etc/shadow", ctx / "dir" / "link")
    _copy(ctx, rootfs, ["dir"], "/d")
    assert os.readlink(rootfs / "d" / "link") == "/etc/shadow"
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


def _tree(ctx: Path, ignore: str, paths: list[str]) -> SourceRoot:
    """A context holding ``paths`` (a trailing "/" makes a dir) and ``ignore`` as its rules."""
    for path in paths:
        full = ctx / path
        if path.endswith("/"):
            full.mkdir(parents=True, exist_ok=True)
        else:
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_text(path + "\n")
    return SourceRoot(path=ctx, ignore=IgnoreMatcher(ignore.splitlines()))


def _walked(root: SourceRoot, pattern: str = ".") -> list[str]:
    (src,) = select(root, [pattern]).sources
    return [rel for _, rel, _ in walk_source(root, src)]


# Each case is `COPY . /ctx` as Docker 20.10's classic builder and podman 4.3 built it (`find
# /ctx`): an ignored dir is walked when a "!" exception could match below it, and shows up,
# as the parent of what is re-included, only when something is.
@pytest.mark.parametrize(
    ("ignore", "paths", "expected"),
    [
        ("*\n!other/foo/**", ["other/foo/bar/z", "other/x", "top"],
         ["", "other", "other/foo", "other/foo/bar", "other/foo/bar/z"]),
        ("dir\n!dir/sub/b", ["dir/a", "dir/sub/b", "dir/sub/c", "k"],
         ["", "dir", "k", "dir/sub", "dir/sub/b"]),
        ("src/lib\n!src/lib/b", ["src/lib/a", "src/lib/b", "src/x"],
         ["", "src", "src/lib", "src/x", "src/lib/b"]),
        ("build\n!build/keep/me.txt", ["build/keep/me.txt", "build/keep/other", "build/x"],
         ["", "build", "build/keep", "build/keep/me.txt"]),
        ("dir\n!dir/sub", ["dir/sub/x", "dir/sub/d/y", "dir/z"],
         ["", "dir", "dir/sub", "dir/sub/d", "dir/sub/x", "dir/sub/d/y"]),
        ("*\n!a\na/b\n!a/b/c", ["a/b/c/d", "a/b/e", "a/f"],
         ["", "a", "a/b", "a/f", "a/b/c", "a/b/c/d"]),
        # An empty dir the exception matches is kept; ignored dirs holding nothing kept are not.
        ("other\n!other/foo/**", ["other/foo/emptydir/", "other/foo/f", "other/y", "other/e2/"],
         ["", "other", "other/foo", "other/foo/emptydir", "other/foo/f"]),
        ("*\n!*.go", ["a.go", "sub/b.go", "sub/c"], ["", "a.go"]),
        ("*\n!src", ["src/a/b", "x"], ["", "src", "src/a", "src/a/b"]),
    ],
)  # fmt: skip
def test_exceptions_below_an_ignored_dir_are_walked(
    tmp_path: Path, ignore: str, paths: list[str], expected: list[str]
) -> None:
    root = _tree(tmp_path / "c", ignore, paths)
    assert _walked(root) == expected


def test_wildcard_exceptions_below_an_ignored_dir_are_kept(tmp_path: Path) -> None:
    # Docker 20.10 and podman 4.3 keep only a.go: their walk descends into an ignored dir only
    # when an exception's text starts with the dir's path (docker/cli#2919). lamina keeps what
    # the rules say is included.
    root = _tree(tmp_path / "c", "*\n!**/*.go", ["a.go", "sub/b.go", "sub/deep/c.go", "sub/c"])
    assert _walked(root) == ["", "a.go", "sub", "sub/b.go", "sub/deep", "sub/deep/c.go"]


def test_an_ignored_parent_dir_lands_as_docker_unpacks_it(tmp_path: Path, rootfs: Path) -> None:
    root = _tree(tmp_path / "c", "*\n!other/foo/**", ["other/foo/bar/z", "other/x"])
    os.chmod(tmp_path / "c" / "other", 0o700)
    os.chmod(tmp_path / "c" / "other" / "foo" / "bar", 0o750)
    copy_selected(select(root, ["."]), rootfs=rootfs, dest="/ctx", owner=ROOT, chmod=None)
    # Docker sends only what is included; unpacking makes the missing parents 0755.
    assert os.stat(rootfs / "ctx" / "other").st_mode & 0o7777 == 0o755
    assert os.stat(rootfs / "ctx" / "other" / "foo" / "bar").st_mode & 0o7777 == 0o750
    assert (rootfs / "ctx" / "other" / "foo" / "bar" / "z").read_text() == "other/foo/bar/z\n"
    assert not (rootfs / "ctx" / "other" / "x").exists()


def test_select_sees_an_ignored_dir_with_kept_entries(tmp_path: Path) -> None:
    root = _tree(tmp_path / "c", "*\n!other/foo/**", ["other/foo/bar/z", "other/x/y", "othx/q"])
    assert _walked(root, "other") == ["other", "other/foo", "other/foo/bar", "other/foo/bar/z"]
    assert [s.rel for s in select(root, ["oth*"]).sources] == ["other"]
    assert select(root, ["other"]).sources[0].st.st_mode & 0o7777 == 0o755
    for gone in ("other/x", "othx"):  # as Docker: "file not found ... or excluded"
        with pytest.raises(BuildError, match="no such file"):
            select(root, [gone])


def test_hash_changes_when_an_exception_keeps_a_file(tmp_path: Path) -> None:
    before = _tree(tmp_path / "c", "*\n!src", ["src/a", "other/foo/z"])
    after = _tree(tmp_path / "c", "*\n!src\n!other/foo/**", [])
    hashes = [sources_hash(select(r, ["."]), owner=ROOT, chmod=None) for r in (before, after)]
    assert hashes[0] != hashes[1]


def test_a_kept_file_deep_below_ignored_dirs_is_found(tmp_path: Path) -> None:
    """The search below an ignored dir is iterative: a context nesting deeper than the
    recursion limit allows a recursive search (two frames a level) is walked, not a crash.
    The limit is lowered for the test, so that 200 levels are past it."""
    ctx = tmp_path / "c"
    deep = "/".join(["d"] * 200)
    os.makedirs(ctx / deep)
    for name in ("keep", "drop"):
        (ctx / deep / name).write_text(name)
    root = SourceRoot(path=ctx, ignore=IgnoreMatcher(["d", "!d/**/keep"]))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(traceback.extract_stack()) + 150)
    try:
        walked = _walked(root)
    finally:
        sys.setrecursionlimit(limit)
    assert walked[-1] == f"{deep}/keep" and f"{deep}/drop" not in walked
    assert len(walked) == 1 + 200 + 1


# -- symlink sources, setuid bits, hardlinks: what Docker 20.10's classic builder does --------


@pytest.fixture
def linked(ctx: Path) -> Path:
    """``ctx`` plus links named as sources: to a file, to a dir, absolute and climbing."""
    os.symlink("a.txt", ctx / "lnk")
    os.symlink("dir", ctx / "dl")
    os.symlink("/a.txt", ctx / "abs")  # in-root: <ctx>/a.txt, never the host's /a.txt
    os.symlink("../../../../a.txt", ctx / "esc")
    os.symlink("one", ctx / "dir" / "inner")  # below a copied dir: stays a link
    (ctx / "w").mkdir()
    os.symlink("../a.txt", ctx / "w" / "l2")
    os.symlink("../dir", ctx / "w" / "ldir")
    return ctx


def test_a_named_symlink_source_is_followed_and_keeps_its_name(linked: Path, rootfs: Path) -> None:
    _copy(linked, rootfs, ["lnk"], "/l1")
    _copy(linked, rootfs, ["lnk"], "/ldir/")
    for path in (rootfs / "l1", rootfs / "ldir" / "lnk"):
        assert not path.is_symlink() and path.read_text() == "a\n"
    _copy(linked, rootfs, ["dl"], "/dlcopy")  # a link to a dir copies the dir's contents
    assert sorted(os.listdir(rootfs / "dlcopy")) == ["inner", "one", "sub"]
    assert os.readlink(rootfs / "dlcopy" / "inner") == "one"
    for name in ("abs", "esc"):
        _copy(linked, rootfs, [name], f"/{name}")
        assert not (rootfs / name).is_symlink() and (rootfs / name).read_text() == "a\n"


def test_each_wildcard_match_is_followed(linked: Path, rootfs: Path) -> None:
    _copy(linked, rootfs, ["w/*"], "/star/")
    assert sorted(os.listdir(rootfs / "star")) == ["inner", "l2", "one", "sub"]
    assert (
        not (rootfs / "star" / "l2").is_symlink() and (rootfs / "star" / "l2").read_text() == "a\n"
    )


def test_dangling_looping_and_ignored_link_targets_are_errors(ctx: Path) -> None:
    os.symlink("/etc/shadow", ctx / "shadow")  # the host has one; the context does not
    os.symlink("nothere", ctx / "dang")
    os.symlink("loop2", ctx / "loop1")
    os.symlink("loop1", ctx / "loop2")
    os.symlink("x.log", ctx / "tolog")
    root = SourceRoot(path=ctx, ignore=IgnoreMatcher(["*.log"]))
    for name in ("shadow", "dang", "tolog"):
        with pytest.raises(BuildError, match=f"{name}: no such file or directory"):
            select(root, [name])
    with pytest.raises(BuildError, match=r"loop1: too many levels of symbolic links"):
        select(root, ["loop1"])
    (ctx / "w").mkdir()
    os.symlink("../nothere", ctx / "w" / "dang")
    with pytest.raises(BuildError, match="w/dang: no such file or directory"):
        select(root, ["w/*"])


def test_an_ignored_link_is_not_there_and_a_link_to_an_ignored_dir_keeps_its_exceptions(
    ctx: Path, rootfs: Path
) -> None:
    # The .dockerignore decides what Docker's CLI sends: an ignored link is not sent at all,
    # and a link (sent) to an ignored dir finds only what an exception keeps below it.
    os.symlink("x", ctx / "lnk")
    (ctx / "other" / "foo").mkdir(parents=True)
    (ctx / "other" / "foo" / "z").write_text("z")
    (ctx / "other" / "y").write_text("y")
    os.symlink("other", ctx / "ol")
    root = SourceRoot(path=ctx, ignore=IgnoreMatcher(["lnk", "other", "!other/foo/**"]))
    with pytest.raises(BuildError, match="lnk: no such file or directory"):
        select(root, ["lnk"])
    copy_selected(select(root, ["ol"]), rootfs=rootfs, dest="/o", owner=ROOT, chmod=None)
    assert sorted(os.listdir(rootfs / "o")) == ["foo"]
    assert os.listdir(rootfs / "o" / "foo") == ["z"]


def test_links_to_a_dir_leave_its_ignored_files_out(ctx: Path, rootfs: Path) -> None:
    os.symlink("dir", ctx / "dl")
    root = SourceRoot(path=ctx, ignore=IgnoreMatcher(["dir/one"]))
    copy_selected(select(root, ["dl"]), rootfs=rootfs, dest="/d", owner=ROOT, chmod=None)
    assert sorted(os.listdir(rootfs / "d")) == ["sub"]


def test_hash_of_a_link_source_follows_its_target(linked: Path) -> None:
    root = SourceRoot(path=linked)

    def h(pattern: str) -> str:
        return sources_hash(select(root, [pattern]), owner=ROOT, chmod=None)

    first, first_dir = h("lnk"), h("dl")
    assert first.startswith("file:") and first_dir.startswith("dir:")
    (linked / "a.txt").write_text("edited\n")
    (linked / "dir" / "one").write_text("edited\n")
    assert h("lnk") != first and h("dl") != first_dir
    edited = h("lnk")
    os.unlink(linked / "lnk")
    os.symlink("b.txt", linked / "lnk")
    assert h("lnk") != edited


def test_owner_change_clears_setuid_and_executable_setgid_as_chown_does(
    ctx: Path, rootfs: Path
) -> None:
    (ctx / "m").mkdir()
    for name, mode in (("suid", 0o4755), ("sgid", 0o2755), ("lock", 0o2644)):
        (ctx / "m" / name).write_text(name)
        os.chmod(ctx / "m" / name, mode)
    (ctx / "m" / "gdir").mkdir()
    os.chmod(ctx / "m" / "gdir", 0o2775)

    def modes(dest: str) -> dict[str, int]:
        return {n: os.lstat(rootfs / dest / n).st_mode & 0o7777 for n in os.listdir(rootfs / dest)}

    sel = select(SourceRoot(path=ctx), ["m"])
    copy_selected(sel, rootfs=rootfs, dest="/ctx", owner=ROOT, chmod=None)
    assert modes("ctx") == {"suid": 0o755, "sgid": 0o755, "lock": 0o2644, "gdir": 0o2775}
    copy_selected(sel, rootfs=rootfs, dest="/chown", owner=Owner(uid=3, gid=3), chmod=None)
    assert modes("chown") == {"suid": 0o755, "sgid": 0o755, "lock": 0o2644, "gdir": 0o2775}
    # COPY --from without --chown keeps owners, and with them the bits.
    copy_selected(sel, rootfs=rootfs, dest="/from", owner=None, chmod=None)
    assert modes("from") == {"suid": 0o4755, "sgid": 0o2755, "lock": 0o2644, "gdir": 0o2775}
    # An explicit --chmod is applied after the owner, as BuildKit does.
    copy_selected(sel, rootfs=rootfs, dest="/chmod", owner=ROOT, chmod=0o4711)
    assert set(modes("chmod").values()) == {0o4711}


def test_hardlinks_within_one_source_stay_one_inode(ctx: Path, rootfs: Path) -> None:
    (ctx / "h").mkdir()
    (ctx / "h" / "a").write_text("same\n")
    os.link(ctx / "h" / "a", ctx / "h" / "hard")
    os.link(ctx / "h" / "a", ctx / "h" / "sub-hard")  # a third link, left out below
    (ctx / "h" / "sub").mkdir()
    os.link(ctx / "h" / "a", ctx / "h" / "sub" / "deep")
    os.link(ctx / "a.txt", ctx / "h" / "outside")  # its peer is not copied
    root = SourceRoot(path=ctx, ignore=IgnoreMatcher(["h/sub-hard"]))
    copy_selected(select(root, ["h"]), rootfs=rootfs, dest="/dd", owner=ROOT, chmod=None)
    a, hard, deep = (os.lstat(rootfs / "dd" / p) for p in ("a", "hard", "sub/deep"))
    assert a.st_ino == hard.st_ino == deep.st_ino and a.st_nlink == 3
    assert os.lstat(rootfs / "dd" / "outside").st_nlink == 1
    # Docker copies each source on its own: links between two sources are not kept.
    copy_selected(select(root, ["h/a", "h/hard"]), rootfs=rootfs, dest="/two/", owner=ROOT,
                  chmod=None)  # fmt: skip
    assert os.lstat(rootfs / "two" / "a").st_ino != os.lstat(rootfs / "two" / "hard").st_ino


def test_hash_sees_hardlinks(ctx: Path) -> None:
    (ctx / "h").mkdir()
    (ctx / "h" / "a").write_text("same\n")
    (ctx / "h" / "b").write_text("same\n")
    root = SourceRoot(path=ctx)
    separate = sources_hash(select(root, ["h"]), owner=ROOT, chmod=None)
    os.unlink(ctx / "h" / "b")
    os.link(ctx / "h" / "a", ctx / "h" / "b")
    assert sources_hash(select(root, ["h"]), owner=ROOT, chmod=None) != separate


def test_source_links_are_followed_in_root_without_openat2_too(
    linked: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lamina.runtime import rootfs as rootfs_module

    monkeypatch.setitem(rootfs_module._OPENAT2, "works", False)  # the by-hand walk
    os.symlink("/etc/shadow", linked / "shadow")
    os.symlink("loop", linked / "loop")
    root = SourceRoot(path=linked)
    sel = select(root, ["lnk", "dl", "abs", "esc", "w/*"])
    assert [(s.rel, s.real) for s in sel.sources] == [
        ("lnk", "a.txt"), ("dl", "dir"), ("abs", "a.txt"), ("esc", "a.txt"),
        ("w/l2", "a.txt"), ("w/ldir", "dir"),
    ]  # fmt: skip
    with pytest.raises(BuildError, match="shadow: no such file or directory"):
        select(root, ["shadow"])
    with pytest.raises(BuildError, match="loop: too many levels of symbolic links"):
        select(root, ["loop"])


def test_a_symlink_loop_on_the_way_is_a_build_error(ctx: Path) -> None:
    """``COPY lp/x`` and ``COPY lp/*`` through ``lp -> lp``: "too many levels of symbolic
    links", a BuildError naming it (it was an OSError, exit 70)."""
    os.symlink("lp", ctx / "lp")
    root = SourceRoot(path=ctx, ignore=None)
    for pattern in ("lp/x", "lp/*"):
        with pytest.raises(BuildError, match=r"lp(/x)?: too many levels of symbolic links"):
            select(root, [pattern])
