"""The storage-driver conformance suite, shipped so any ``Driver`` can be checked (containers/
storage's ``graphtest`` is the model).

Each check is a plain function ``check_*(driver) -> None`` that raises ``AssertionError`` on a
failure and leaves nothing mounted. ``DRIVER_CHECKS`` apply to every driver; ``OVERLAY_CHECKS``
only to kernel-overlay drivers. Run them with any test runner, e.g. with pytest::

    @pytest.mark.parametrize("check", DRIVER_CHECKS.values(), ids=DRIVER_CHECKS.keys())
    def test_driver(check, driver): check(driver)

Layer tars are built here with stdlib ``tarfile`` (:func:`layer_tar`), so expected trees come
from the test's own description, not from lamina's writer.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from lamina.driver.base import Driver, MountRefs
from lamina.errors import ConflictError, DriverError, LayerInUseError, LayerNotFoundError

# -- building layer tars ----------------------------------------------------------------------


def layer_tar(
    files: Mapping[str, bytes] | None = None,
    *,
    dirs: Sequence[str] = (),
    symlinks: Mapping[str, str] | None = None,
    whiteouts: Sequence[str] = (),
    opaque: Sequence[str] = (),
) -> bytes:
    """An uncompressed OCI layer tar: ``dirs`` first, then ``opaque`` markers, ``whiteouts``
    (``a/b`` becomes ``a/.wh.b``), files (mode 0644, root-owned) and symlinks."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(
            name: str, kind: bytes, data: bytes = b"", *, mode: int = 0o644, link: str = ""
        ) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = mode
            info.mtime = 1_700_000_000
            info.size = len(data)
            info.linkname = link
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d in dirs:
            add(d, tarfile.DIRTYPE, mode=0o755)
        for d in opaque:
            add(f"{d}/.wh..wh..opq", tarfile.REGTYPE)
        for w in whiteouts:
            head, _, name = w.rpartition("/")
            add(f"{head}/.wh.{name}" if head else f".wh.{name}", tarfile.REGTYPE)
        for path, data in (files or {}).items():
            add(path, tarfile.REGTYPE, data)
        for path, target in (symlinks or {}).items():
            add(path, tarfile.SYMTYPE, mode=0o777, link=target)
    return buf.getvalue()


# -- looking at trees -------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """``{relative path: (kind, mode, uid, gid, content or link target or rdev)}``; dir mtimes
    and sizes are left out (they are not part of a layer's meaning)."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            mode = stat.S_IMODE(st.st_mode)
            kind: object
            if stat.S_ISREG(st.st_mode):
                body: object = hashlib.sha256(p.read_bytes()).hexdigest()
                kind = "file"
            elif stat.S_ISLNK(st.st_mode):
                body, kind = os.readlink(p), "symlink"
            elif stat.S_ISDIR(st.st_mode):
                body, kind = None, "dir"
            else:
                body, kind = st.st_rdev, stat.S_IFMT(st.st_mode)
            out[rel] = (kind, mode, st.st_uid, st.st_gid, body)
    return out


@contextlib.contextmanager
def mounted(driver: Driver, layer_id: str) -> Iterator[Path]:
    path = driver.mount(layer_id)
    try:
        yield path
    finally:
        driver.unmount(layer_id)


def build_stack(driver: Driver, tars: Sequence[bytes], *, prefix: str = "layer") -> list[str]:
    """Create and apply one layer per tar, each on the previous; return the ids."""
    ids: list[str] = []
    for i, data in enumerate(tars):
        layer_id = f"{prefix}{i}"
        driver.create(layer_id, parent=ids[-1] if ids else None)
        driver.apply(layer_id, io.BytesIO(data))
        ids.append(layer_id)
    return ids


def _raises(exc_type: type[BaseException], fn: Callable[[], object]) -> BaseException:
    try:
        fn()
    except exc_type as exc:
        return exc
    raise AssertionError(f"expected {exc_type.__name__}")


# Three layers: a whiteout of a file and an opaque dir in the second, a plain add in the third.
BASE = layer_tar(
    {"a/x": b"x", "a/y": b"y", "b/z": b"z", "keep": b"keep", "etc/conf": b"1"},
    dirs=["a", "b", "etc"],
    symlinks={"link": "a/y"},
)
MIDDLE = layer_tar({"b/new": b"new"}, dirs=["a", "b"], whiteouts=["a/x"], opaque=["b"])
TOP = layer_tar({"c": b"c"})
STACK_VIEW = {"a", "a/y", "b", "b/new", "c", "etc", "etc/conf", "keep", "link"}


# -- checks for every driver ------------------------------------------------------------------


def check_create_exists_remove(driver: Driver) -> None:
    assert not driver.exists("one")
    driver.create("one", parent=None)
    assert driver.exists("one")
    _raises(ConflictError, lambda: driver.create("one", parent=None))
    _raises(LayerNotFoundError, lambda: driver.create("two", parent="missing"))
    assert not driver.exists("two")
    driver.remove("one")
    assert not driver.exists("one")
    driver.remove("one")  # idempotent
    driver.remove("never-existed")


def check_apply_layer_tar(driver: Driver) -> None:
    data = layer_tar({"hello": b"world", "d/f": b"f"}, dirs=["d"])
    driver.create("base", parent=None)
    result = driver.apply("base", io.BytesIO(data))
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    with mounted(driver, "base") as root:
        assert (root / "hello").read_bytes() == b"world"
        assert (root / "d" / "f").read_bytes() == b"f"


def check_stack_whiteout_opaque(driver: Driver) -> None:
    ids = build_stack(driver, [BASE, MIDDLE, TOP])
    with mounted(driver, ids[-1]) as root:
        assert set(snapshot(root)) == STACK_VIEW
        assert (root / "link").read_bytes() == b"y"
    with mounted(driver, ids[0]) as root:  # a lower layer still shows its own view
        assert "a/x" in snapshot(root)


def check_writable_layer(driver: Driver) -> None:
    ids = build_stack(driver, [BASE, MIDDLE])
    driver.create("rw", parent=ids[-1], writable=True)
    with mounted(driver, "rw") as root:
        (root / "added").write_bytes(b"new file")
        (root / "etc" / "conf").write_bytes(b"2")
        (root / "keep").unlink()
    # As ``docker diff`` prints them: kind letter and absolute path.
    changes = {(c.kind.value, c.path) for c in driver.changes("rw")}
    assert changes == {("A", "/added"), ("C", "/etc"), ("C", "/etc/conf"), ("D", "/keep")}, changes
    with mounted(driver, "rw") as root:
        assert (root / "added").read_bytes() == b"new file"
        assert not (root / "keep").exists()


def check_mount_ref_counting(driver: Driver) -> None:
    driver.create("base", parent=None)
    driver.apply("base", io.BytesIO(layer_tar({"f": b"f"})))
    first = driver.mount("base")
    second = driver.mount("base")
    assert first == second
    assert driver.mount_count("base") == 2
    driver.unmount("base")
    assert driver.mount_count("base") == 1
    assert (first / "f").read_bytes() == b"f"
    driver.unmount("base")
    assert driver.mount_count("base") == 0
    driver.unmount("base")  # idempotent
    assert driver.mount_count("base") == 0


def check_remove_refused_while_mounted(driver: Driver) -> None:
    driver.create("base", parent=None)
    with mounted(driver, "base"):
        _raises(LayerInUseError, lambda: driver.remove("base"))
        assert driver.exists("base")
    driver.remove("base")
    assert not driver.exists("base")


def check_diff_tar_round_trip(driver: Driver) -> None:
    ids = build_stack(driver, [BASE, MIDDLE])
    driver.create("rw", parent=ids[-1], writable=True)
    with mounted(driver, "rw") as root:
        (root / "added").write_bytes(b"added")
        (root / "a" / "y").write_bytes(b"changed")
        (root / "keep").unlink()
        (root / "etc" / "conf").unlink()
        (root / "etc").rmdir()
        (root / "etc").mkdir(mode=0o700)  # a dir replaced: must come back opaque
        (root / "etc" / "other").write_bytes(b"o")
        os.symlink("/abs/target", root / "abs")
        expected = snapshot(root)
    out = io.BytesIO()
    driver.diff_tar("rw", out)
    driver.create("replay", parent=ids[-1])
    driver.apply("replay", io.BytesIO(out.getvalue()))
    with mounted(driver, "replay") as root:
        got = snapshot(root)
    assert got == expected, {
        k: (expected.get(k), got.get(k))
        for k in expected.keys() | got.keys()
        if expected.get(k) != got.get(k)
    }


def check_metadata_paths_exist(driver: Driver) -> None:
    ids = build_stack(driver, [BASE, TOP])
    driver.create("rw", parent=ids[-1], writable=True)
    for layer_id in [*ids, "rw"]:
        data = driver.metadata(layer_id)
        assert data, f"no metadata for {layer_id}"
        for key, value in data.items():
            for path in value.split(":"):
                assert Path(path).is_absolute(), (key, path)
                assert Path(path).exists(), (key, path)


def check_recover(driver: Driver) -> None:
    driver.create("live", parent=None)
    driver.create("orphan", parent=None)
    with MountRefs(driver.home / "live" / "mountcount").locked() as refs:
        refs.count = 3  # as if a process crashed while holding mounts
    removed = driver.recover({"live"})
    assert removed == ["orphan"], removed
    assert not driver.exists("orphan")
    assert driver.exists("live")
    if driver.name == "vfs":
        # vfs cannot tell a crash from a live holder; only a count from an earlier boot is stale
        assert driver.mount_count("live") == 3
        (driver.home / "live" / "mountcount").write_text("3 some-earlier-boot\n")
        driver.recover({"live"})
    assert driver.mount_count("live") == 0
    assert MountRefs(driver.home / "live" / "mountcount").peek() == 0
    driver.remove("live")


def check_one_layer_mount(driver: Driver) -> None:
    driver.create("only", parent=None)
    driver.apply("only", io.BytesIO(layer_tar({"bin/sh": b"#!"}, dirs=["bin"])))
    with mounted(driver, "only") as root:
        assert (root / "bin" / "sh").read_bytes() == b"#!"


def check_diff_size(driver: Driver) -> None:
    """Docker's DiffSize, by hand: the sizes of the non-dirs a layer adds or changes (a
    symlink's is its target's length), a hardlinked inode counted once; deletions and dirs
    count nothing."""
    ids = build_stack(driver, [BASE, MIDDLE])
    # BASE: a/x, a/y, b/z, etc/conf (1 each) + keep (4) + link -> "a/y" (3); MIDDLE: b/new (3).
    assert [driver.diff_size(i) for i in ids] == [11, 3]
    driver.create("rw", parent=ids[-1], writable=True)
    assert driver.diff_size("rw") == 0
    with mounted(driver, "rw") as root:
        (root / "added").write_bytes(b"x" * 1000)
        os.link(root / "added", root / "again")  # the same inode: counted once
        os.symlink("/abs/target", root / "abs")  # 11
        (root / "etc" / "conf").write_bytes(b"22")  # changed: its new size
        (root / "keep").unlink()
        (root / "newdir").mkdir()
    assert driver.diff_size("rw") == 1000 + 11 + 2


DRIVER_CHECKS: dict[str, Callable[[Driver], None]] = {
    "create_exists_remove": check_create_exists_remove,
    "apply_layer_tar": check_apply_layer_tar,
    "stack_whiteout_opaque": check_stack_whiteout_opaque,
    "writable_layer": check_writable_layer,
    "mount_ref_counting": check_mount_ref_counting,
    "remove_refused_while_mounted": check_remove_refused_while_mounted,
    "diff_tar_round_trip": check_diff_tar_round_trip,
    "metadata_paths_exist": check_metadata_paths_exist,
    "recover": check_recover,
    "one_layer_mount": check_one_layer_mount,
    "diff_size": check_diff_size,
}


# -- overlay-only checks ----------------------------------------------------------------------


def check_overlay_upper_dir(driver: Driver) -> None:
    """Writes land in the writable layer's diff; a deletion leaves a 0:0 char whiteout."""
    ids = build_stack(driver, [BASE])
    driver.create("rw", parent=ids[-1], writable=True)
    with mounted(driver, "rw") as root:
        (root / "added").write_bytes(b"a")
        (root / "keep").unlink()
    upper = driver.apply_dir("rw")
    assert (upper / "added").read_bytes() == b"a"
    st = (upper / "keep").lstat()
    assert stat.S_ISCHR(st.st_mode), oct(st.st_mode)
    assert (st.st_rdev, st.st_uid, st.st_gid) == (0, 0, 0)


def check_overlay_read_only_image(driver: Driver) -> None:
    """Image layers (not created writable) mount read-only, one layer included."""
    ids = build_stack(driver, [BASE])
    with mounted(driver, ids[0]) as root:
        try:
            (root / "new").write_bytes(b"x")
        except OSError:
            pass
        else:
            raise AssertionError("a read-only image layer took a write")


def _deep_stack(driver: Driver, depth: int) -> str:
    driver.create("d0", parent=None)
    driver.apply("d0", io.BytesIO(layer_tar({"bottom": b"b"})))
    for i in range(1, depth):
        driver.create(f"d{i}", parent=f"d{i - 1}")
    return f"d{depth - 1}"


def check_overlay_deep_stacks(driver: Driver) -> None:
    """200 and 500 layers mount (the kernel's limit); a 501st read-only layer is refused."""
    top = _deep_stack(driver, 500)
    for layer_id in ("d199", top):
        with mounted(driver, layer_id) as root:
            assert (root / "bottom").read_bytes() == b"b"
    _raises(DriverError, lambda: driver.create("d500", parent=top))
    driver.create("rw", parent=top, writable=True)  # 500 lowers + an upper still mount
    with mounted(driver, "rw") as root:
        (root / "w").write_bytes(b"w")


OVERLAY_CHECKS: dict[str, Callable[[Driver], None]] = {
    "overlay_upper_dir": check_overlay_upper_dir,
    "overlay_read_only_image": check_overlay_read_only_image,
    "overlay_deep_stacks": check_overlay_deep_stacks,
}
