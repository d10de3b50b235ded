"""Lookups inside an image's rootfs never leave it, never hang, never read without bound."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.errors import LimitExceededError, UsageError
from lamina.runtime import rootfs as rootfs_mod
from lamina.runtime.rootfs import (
    blocking_account_file,
    find_command,
    open_in_root,
    read_small_file,
)
from lamina.runtime.signals import signal_number
from lamina.runtime.users import UnknownUserError, resolve_user


@pytest.fixture(params=["openat2", "walk"])
def resolver(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run each test with openat2(RESOLVE_IN_ROOT) and with the hand-written walk."""
    saved = dict(rootfs_mod._OPENAT2)
    if request.param == "walk":
        rootfs_mod._OPENAT2["works"] = False
    yield request.param
    rootfs_mod._OPENAT2.clear()
    rootfs_mod._OPENAT2.update(saved)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "bin").mkdir(parents=True)
    (r / "etc").mkdir()
    (r / "bin/busybox").write_bytes(b"\x7fELF")
    (r / "bin/busybox").chmod(0o755)
    os.symlink("/bin/busybox", r / "bin/sh")  # absolute target: must resolve inside the root
    os.symlink("busybox", r / "bin/ls")
    (r / "bin/data").write_text("x")
    (r / "bin/data").chmod(0o644)
    (r / "bin/dir").mkdir()
    return r


def _host_secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0:HOST:/host:/bin/sh\n")
    return secret


def test_symlinks_resolve_inside_the_root(root: Path, tmp_path: Path, resolver: str) -> None:
    secret = _host_secret(tmp_path)
    os.symlink(str(secret), root / "etc/passwd")  # absolute: means <root>/<that path>
    assert read_small_file(root, "/etc/passwd") is None
    os.unlink(root / "etc/passwd")
    os.symlink("../../../../../../../secret", root / "etc/passwd")  # .. stops at the root
    assert read_small_file(root, "/etc/passwd") is None
    (root / "secret").write_text("inside\n")
    assert read_small_file(root, "/etc/passwd") == b"inside\n"


def test_symlinked_directory_is_confined(root: Path, tmp_path: Path, resolver: str) -> None:
    _host_secret(tmp_path)
    os.rename(root / "etc", root / "etc.real")
    os.symlink(str(tmp_path), root / "etc")  # /etc -> the host dir holding "secret"
    assert read_small_file(root, "/etc/secret") is None


def test_fifo_and_devices_are_not_read(root: Path, resolver: str) -> None:
    os.mkfifo(root / "etc/passwd")
    assert read_small_file(root, "/etc/passwd") is None  # returns at once, no hang


def test_account_files_runc_would_block_on(root: Path, resolver: str) -> None:
    """runc's init opens /etc/passwd and /etc/group with a plain open(2) before the process
    runs: a FIFO there hung ``run`` for good (a device may block too)."""
    assert blocking_account_file(root) is None  # missing files are fine
    (root / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\n")
    (root / "etc/group").mkdir()  # runc reads nothing from a dir: no hang
    assert blocking_account_file(root) is None
    os.rmdir(root / "etc/group")
    os.mkfifo(root / "fifo")
    os.symlink("/fifo", root / "etc/group")  # followed inside the root, as runc follows it
    assert blocking_account_file(root) == "/etc/group"
    os.unlink(root / "etc/passwd")
    os.mkfifo(root / "etc/passwd")
    assert blocking_account_file(root) == "/etc/passwd"


def test_size_cap(root: Path, resolver: str) -> None:
    (root / "etc/group").write_bytes(b"g:x:1:\n" * 100)
    with pytest.raises(LimitExceededError):
        read_small_file(root, "/etc/group", limit=50)


def test_symlink_loop(root: Path, resolver: str) -> None:
    os.symlink("b", root / "etc/a")
    os.symlink("a", root / "etc/b")
    with pytest.raises(OSError, match="symbolic links"):
        open_in_root(root, "/etc/a")


def test_find_command(root: Path, resolver: str) -> None:
    found = find_command(root, "sh", path_env="/usr/bin:/bin", cwd="/")
    assert found is not None and found.executable and found.path == "/bin/sh"
    assert find_command(root, "ls", path_env="/bin", cwd="/") is not None
    assert find_command(root, "nope", path_env="/bin", cwd="/") is None
    assert find_command(root, "/bin/nope", path_env="/bin", cwd="/") is None
    # Not executable: skipped in a PATH search (as Go's LookPath), 126 when named directly.
    assert find_command(root, "data", path_env="/bin", cwd="/") is None
    direct = find_command(root, "/bin/data", path_env="/bin", cwd="/")
    assert direct is not None and not direct.executable and direct.reason == "permission denied"
    d = find_command(root, "/bin/dir", path_env="/bin", cwd="/")
    assert d is not None and d.reason == "is a directory"
    rel = find_command(root, "./busybox", path_env="", cwd="/bin")
    assert rel is not None and rel.executable


def test_ids_in_other_scripts_digits_are_no_ids(root: Path, resolver: str) -> None:
    # str.isdigit() is true for "²" (and int() refuses it): a group row an image wrote with
    # such an "id" made every run of it exit 70 while root's implicit groups were scanned.
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\nodd:x:\u00b2:root\n")
    assert resolve_user("", rootfs=root).additional_gids == (0,)
    with pytest.raises(UsageError):
        signal_number("\u00b2")


def test_resolve_user(root: Path, resolver: str) -> None:
    (root / "etc/passwd").write_text(
        "# comment\nroot:x:0:0:root:/root:/bin/sh\nbob:x:1001:1002:Bob:/home/bob:/bin/sh\nshort:x\n"
    )
    (root / "etc/group").write_text(
        "root:x:0:\nbob:x:1002:\nstaff:x:50:bob,alice\nops:x:60:alice\n"
    )
    assert resolve_user("", rootfs=root).home == "/root"
    bob = resolve_user("bob", rootfs=root)
    # Supplementary groups as docker run gives them (checked with busybox id under docker
    # 20.10): the primary group always, memberships only in the implicit form.
    assert (bob.uid, bob.gid, bob.additional_gids, bob.home) == (
        1001, 1002, (1002, 50), "/home/bob"
    )  # fmt: skip
    by_uid = resolve_user("1001", rootfs=root)
    assert (by_uid.home, by_uid.additional_gids) == ("/home/bob", (1002, 50))
    assert resolve_user("", rootfs=root).additional_gids == (0,)
    anon = resolve_user("4242", rootfs=root)  # unknown numeric uid: allowed, gid 0
    assert (anon.uid, anon.gid, anon.home, anon.additional_gids) == (4242, 0, "/", (0,))
    explicit = resolve_user("bob:ops", rootfs=root)  # an explicit group drops memberships
    assert (explicit.gid, explicit.additional_gids) == (60, (60,))
    assert resolve_user("bob:0", rootfs=root).additional_gids == (0,)
    assert resolve_user("4242:77", rootfs=root).additional_gids == (77,)
    with pytest.raises(UnknownUserError):
        resolve_user("mallory", rootfs=root)
    with pytest.raises(UnknownUserError):
        resolve_user("bob:nogroup", rootfs=root)
    for bad in ("a:b:c", "99999999999"):
        with pytest.raises(UsageError):
            resolve_user(bad, rootfs=root)


def test_resolve_user_without_account_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert resolve_user("", rootfs=empty).uid == 0
    assert resolve_user("5:6", rootfs=empty).gid == 6
