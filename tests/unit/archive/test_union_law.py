"""The laws the layer writers must keep (DESIGN.md §7): deterministic bytes, write → apply round
trips, and the union law — applying diff(lower, upper) onto lower yields upper — for plain trees
(vfs) and for changes made through a real overlay mount (native upper-dir diff)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from layer_tars import write_tree_diff, write_upper_dir

from lamina.archive.apply import WhiteoutFormat, apply_layer
from lamina.archive.entry import EntryKind, IndexEntry
from lamina.digest import EMPTY_TAR_DIFF_ID, Digest
from lamina.testing.trees import (
    IS_ROOT,
    Mutation,
    Node,
    Tree,
    apply_mutations,
    materialise,
    mutated_trees,
    snapshot,
    trees,
)

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@contextmanager
def scratch() -> Iterator[Path]:
    # Not the shm_tmp fixture: hypothesis runs many examples per test function.
    d = Path(tempfile.mkdtemp(prefix="lamina-law-", dir="/dev/shm"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _dir(base: Path, name: str) -> Path:
    p = base / name
    p.mkdir()
    return p


def _record(rows: list[IndexEntry]) -> None:
    for kind in sorted({r.entry.kind.value for r in rows}):
        event(f"entry kind: {kind}")


def _apply(data: bytes, dest: Path, fmt: WhiteoutFormat) -> Digest:
    return apply_layer(io.BytesIO(data), dest, fmt=fmt).diff_id


def _layer_of(tree: Tree, base: Path) -> tuple[bytes, list[IndexEntry]]:
    root = _dir(base, "tree")
    materialise(tree, root)
    out = io.BytesIO()
    rows = write_tree_diff(None, root, out)
    return out.getvalue(), rows


def test_empty_tree_is_the_empty_layer(shm_tmp: Path) -> None:
    data, rows = _layer_of({}, shm_tmp)
    assert data == bytes(1024)
    assert rows == []
    assert Digest.of(data) == EMPTY_TAR_DIFF_ID


@SETTINGS
@given(tree=trees())
def test_same_tree_same_bytes(tree: Tree) -> None:
    with scratch() as d:
        first, rows = _layer_of(tree, _dir(d, "one"))
        second, _ = _layer_of(tree, _dir(d, "two"))
        _record(rows)
        assert first == second
        assert Digest.of(first) == Digest.of(second)


@SETTINGS
@given(tree=trees())
def test_write_then_apply_round_trips(tree: Tree) -> None:
    with scratch() as d:
        src = _dir(d, "src")
        materialise(tree, src)
        out = io.BytesIO()
        rows = write_tree_diff(None, src, out)
        _record(rows)
        dest = _dir(d, "dest")
        assert _apply(out.getvalue(), dest, WhiteoutFormat.APPLY) == Digest.of(out.getvalue())
        assert snapshot(dest) == snapshot(src)


def _naive_blind_spot(lower: Path, upper: Path) -> bool:
    """A file rewritten with its size and mtime kept (write, then touch back): go-archive's
    naive diff, which Docker's vfs and lamina's tree diff follow, cannot see it, by design."""
    for dirpath, _, files in os.walk(upper):
        for name in files:
            new = Path(dirpath, name)
            old = lower / new.relative_to(upper)
            try:
                a, b = os.lstat(old), os.lstat(new)
            except (FileNotFoundError, NotADirectoryError):
                continue  # new in upper
            if (
                stat.S_ISREG(a.st_mode)
                and stat.S_ISREG(b.st_mode)
                and a.st_size == b.st_size
                and a.st_mtime_ns // 10**9 == b.st_mtime_ns // 10**9
                and old.read_bytes() != new.read_bytes()
            ):
                event("skipped: a rewrite the naive diff cannot see")
                return True
    return False


def _mutation_events(muts: list[Mutation]) -> None:
    for op in sorted({m.op for m in muts}):
        event(f"mutation: {op}")


@SETTINGS
@given(case=mutated_trees())
def test_union_law_for_tree_diffs(case: tuple[Tree, list[Mutation]]) -> None:
    lower_spec, muts = case
    _mutation_events(muts)
    with scratch() as d:
        lower, upper, target = _dir(d, "lower"), _dir(d, "upper"), _dir(d, "target")
        for root in (lower, upper, target):
            materialise(lower_spec, root)
        apply_mutations(upper, muts)
        assume(not _naive_blind_spot(lower, upper))
        out = io.BytesIO()
        rows = write_tree_diff(lower, upper, out)
        _record(rows)
        _apply(out.getvalue(), target, WhiteoutFormat.APPLY)
        assert snapshot(target) == snapshot(upper)


# -- through a real overlay mount -------------------------------------------------------------


def _mount(
    lowers: list[Path], merged: Path, upper: Path | None = None, work: Path | None = None
) -> None:
    # Native diffs are only right without redirect_dir and metacopy (peers-and-threats §3.4).
    opts = "lowerdir=" + ":".join(str(p) for p in lowers)
    if upper is not None and work is not None:
        opts += f",upperdir={upper},workdir={work},redirect_dir=off,metacopy=off"
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)],
        check=True,
        capture_output=True,
    )


def _umount(merged: Path) -> None:
    subprocess.run(["umount", str(merged)], check=True, capture_output=True)


@pytest.mark.needs_root
@pytest.mark.needs_overlay
@SETTINGS
@given(case=mutated_trees(max_mutations=5))
def test_union_law_through_overlay(case: tuple[Tree, list[Mutation]]) -> None:
    lower_spec, muts = case
    _mutation_events(muts)
    with scratch() as d:
        lower = _dir(d, "lower")
        materialise(lower_spec, lower)
        upper, work, merged = _dir(d, "upper"), _dir(d, "work"), _dir(d, "merged")
        _mount([lower], merged, upper, work)
        try:
            apply_mutations(merged, muts)
            seen = snapshot(merged)
        finally:
            _umount(merged)

        out = io.BytesIO()
        rows = write_upper_dir(upper, out, exists_below=lambda rel: os.path.lexists(lower / rel))
        _record(rows)
        layer = out.getvalue()

        # vfs style: onto a copy of lower.
        target = _dir(d, "target")
        materialise(lower_spec, target)
        _apply(layer, target, WhiteoutFormat.APPLY)
        assert snapshot(target) == seen

        # overlay style: as a new lower layer above lower.
        diff, view = _dir(d, "diff"), _dir(d, "view")
        _apply(layer, diff, WhiteoutFormat.OVERLAY)
        _mount([diff, lower], view)
        try:
            assert snapshot(view) == seen
        finally:
            _umount(view)


# -- coverage: every entry kind is exercised by a deterministic example ----------------------

_F = Node(kind=EntryKind.FILE, content=b"x", xattrs=(("user.a", b"1"),))
_D = Node(kind=EntryKind.DIR, mode=0o755)
COVERAGE_LOWER: Tree = {"gone": _F, "d": _D, "d/old": _F, "keep": _F}
COVERAGE_MUTATIONS: list[Mutation] = [
    Mutation(op="delete", path="gone"),
    Mutation(op="replace_dir", path="d", node=_D, subtree={"new": _F}),
    Mutation(op="add", path="f", node=_F),
    Mutation(op="add", path="h", node=Node(kind=EntryKind.HARDLINK, target="f")),
    Mutation(op="add", path="s", node=Node(kind=EntryKind.SYMLINK, target="/etc/passwd")),
    Mutation(op="add", path="p", node=Node(kind=EntryKind.FIFO, mode=0o600)),
    Mutation(op="add", path="c", node=Node(kind=EntryKind.CHAR, rdev=(1, 3))),
    Mutation(op="add", path="b", node=Node(kind=EntryKind.BLOCK, rdev=(7, 0))),
    Mutation(op="chmod", path="keep", mode=0o4755),
]


@pytest.mark.needs_root
@pytest.mark.needs_overlay
def test_every_entry_kind_is_exercised(shm_tmp: Path) -> None:
    lower = _dir(shm_tmp, "lower")
    materialise(COVERAGE_LOWER, lower)
    upper, work, merged = _dir(shm_tmp, "upper"), _dir(shm_tmp, "work"), _dir(shm_tmp, "merged")
    _mount([lower], merged, upper, work)
    try:
        apply_mutations(merged, COVERAGE_MUTATIONS)
        seen = snapshot(merged)
    finally:
        _umount(merged)
    out = io.BytesIO()
    rows = write_upper_dir(upper, out, exists_below=lambda rel: os.path.lexists(lower / rel))
    assert {r.entry.kind for r in rows} == set(EntryKind)
    target = _dir(shm_tmp, "target")
    materialise(COVERAGE_LOWER, target)
    _apply(out.getvalue(), target, WhiteoutFormat.APPLY)
    assert snapshot(target) == seen


@pytest.mark.skipif(not IS_ROOT, reason="devices need root")
def test_tree_strategy_reaches_every_node_kind() -> None:
    seen: set[EntryKind] = set()

    @settings(max_examples=200, deadline=None, database=None)
    @given(tree=trees(max_entries=12))
    def collect(tree: Tree) -> None:
        seen.update(n.kind for n in tree.values())

    collect()
    assert seen == set(EntryKind) - {EntryKind.WHITEOUT, EntryKind.OPAQUE}


def test_dir_entry_replaces_dir_xattrs(shm_tmp: Path) -> None:
    lower_spec: Tree = {"d": Node(kind=EntryKind.DIR, mode=0o755, xattrs=(("user.a", b"1"),))}
    lower, upper, target = _dir(shm_tmp, "l"), _dir(shm_tmp, "u"), _dir(shm_tmp, "t")
    for root in (lower, upper, target):
        materialise(lower_spec, root)
    os.removexattr(upper / "d", "user.a")
    out = io.BytesIO()
    write_tree_diff(lower, upper, out)
    _apply(out.getvalue(), target, WhiteoutFormat.APPLY)
    assert snapshot(target) == snapshot(upper)
