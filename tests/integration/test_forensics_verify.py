"""``verify --deep``: host-side tampering with unpacked layers is named with its layer; an
untouched store is clean after mounts and reopening; ``--repair`` restores."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_forensics_kit as kit

from lamina.cli.main import main
from lamina.engine.engine import Engine
from lamina.errors import LayerInUseError
from lamina.forensics.verify import Issue

pytestmark = pytest.mark.needs_root


@pytest.fixture
def built() -> Iterator[kit.Built]:
    d = Path(tempfile.mkdtemp(prefix="lamina-verify-", dir="/dev/shm"))
    b = kit.store_image(d / "root")
    yield b
    b.engine.close()
    shutil.rmtree(d, ignore_errors=True)
    b.archive.unlink(missing_ok=True)


def _layer_dirs(b: kit.Built) -> list[Path]:
    rec = b.engine.images.resolve(b.name)
    return [
        b.engine.store.driver.apply_dir(b.engine.store.layers.get(c).cache_id) for c in rec.layers
    ]


def _cli(b: kit.Built, *args: str) -> int:
    return main(["--root", str(b.engine.root), *args])


@pytest.mark.needs_overlay
def test_untouched_store_is_clean_after_mounts_and_reopening(built: kit.Built) -> None:
    assert built.engine.forensics.verify_deep(None, repair=False).findings == []
    merged = built.engine.images.mount(built.name)
    assert (merged / "etc/app.conf").read_bytes() == kit.APP_V2
    os.listdir(merged / "opt/data")  # reads (atime) through every lower
    assert built.engine.forensics.verify_deep(built.name, repair=False).findings == []
    built.engine.images.unmount(built.name)
    with Engine.open(built.engine.root) as again:
        assert again.forensics.verify_deep(None, repair=False).findings == []
    assert _cli(built, "verify", "--deep") == 0


@pytest.mark.needs_overlay
def test_tampering_is_named_with_its_layer_and_repaired(
    built: kit.Built, capsys: pytest.CaptureFixture[str]
) -> None:
    dirs = _layer_dirs(built)
    rec = built.engine.images.resolve(built.name)
    # Flip a byte (same size: invisible to docker diff's size/mtime test), chmod, add.
    target = dirs[1] / "etc/app.conf"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[0] ^= 0x20
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.chmod(dirs[0] / "etc/passwd", 0o666)
    (dirs[4] / "root/.ssh/authorized_keys").write_text("ssh-ed25519 AAAA attacker\n")
    found = built.engine.forensics.verify_deep(built.name, repair=False).findings
    assert {(f.issue, f.path, f.chain_id) for f in found} == {
        (Issue.MODIFIED, "etc/app.conf", rec.layers[1]),
        (Issue.MODE, "etc/passwd", rec.layers[0]),
        (Issue.ADDED, "root/.ssh/authorized_keys", rec.layers[4]),
    }
    assert _cli(built, "verify", "--deep", built.name) == 1
    out = capsys.readouterr().out
    for path in ("/etc/app.conf", "/etc/passwd", "/root/.ssh/authorized_keys"):
        assert path in out
    # --repair refuses while a mount reads the layers.
    built.engine.images.mount(built.name)
    with pytest.raises(LayerInUseError):
        built.engine.forensics.verify_deep(built.name, repair=True)
    built.engine.images.unmount(built.name)
    assert _cli(built, "verify", "--deep", "--repair", built.name) == 0
    assert target.read_bytes() == kit.APP_V1
    assert not (dirs[4] / "root/.ssh/authorized_keys").exists()
    assert (dirs[0] / "etc/passwd").stat().st_mode & 0o777 == 0o644
    assert built.engine.forensics.verify_deep(None, repair=False).findings == []
    merged = built.engine.images.mount(built.name)
    assert (merged / "etc/app.conf").read_bytes() == kit.APP_V2
    assert not (merged / "root/secret.env").exists()  # the repaired layer's whiteout works
    built.engine.images.unmount(built.name)


@pytest.mark.needs_overlay
def test_overlay_vocabulary_is_not_a_finding_but_its_abuse_is(built: kit.Built) -> None:
    dirs = _layer_dirs(built)
    # Layer 3's whiteout is a 0:0 char device and layer 6's dir is opaque: both expected.
    assert os.stat(dirs[3] / "root/secret.env", follow_symlinks=False).st_rdev == 0
    assert os.getxattr(dirs[6] / "opt/data", "trusted.overlay.opaque") == b"y"
    # A kernel-written marker is harmless; a redirect changes what mounts show.
    os.setxattr(dirs[6] / "opt", "trusted.overlay.impure", b"y")
    assert built.engine.forensics.verify_deep(built.name, repair=False).findings == []
    os.setxattr(dirs[6] / "opt", "trusted.overlay.redirect", b"/etc")
    found = built.engine.forensics.verify_deep(built.name, repair=False).findings
    assert [(f.issue, f.path) for f in found] == [(Issue.XATTRS, "opt")]
    os.unlink(dirs[3] / "root/secret.env")
    found = built.engine.forensics.verify_deep(built.name, repair=False).findings
    assert (Issue.DELETED, "root/secret.env") in {(f.issue, f.path) for f in found}


def test_vfs_layers_are_checked_against_the_merged_view() -> None:
    d = Path(tempfile.mkdtemp(prefix="lamina-verify-vfs-", dir="/dev/shm"))
    try:
        with Engine.open(d / "root", driver="vfs") as engine:
            from lamina.transports import local

            img = kit.build_image()
            local.write(engine.store, img, names=["docker.io/library/forensics:test"])
            assert engine.forensics.verify_deep("forensics:test", repair=False).findings == []
            rec = engine.images.resolve("forensics:test")
            top = engine.store.layers.get(rec.layers[-1])
            tree = engine.store.driver.apply_dir(top.cache_id)
            (tree / "etc/passwd").write_text("root::0:0::/root:/bin/sh\n")
            found = engine.forensics.verify_deep("forensics:test", repair=False).findings
            assert (Issue.MODIFIED, "etc/passwd", rec.layers[-1]) in {
                (f.issue, f.path, f.chain_id) for f in found
            }
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_vfs_child_layers_keep_file_capabilities() -> None:
    d = Path(tempfile.mkdtemp(prefix="lamina-verify-vfs-", dir="/dev/shm"))
    try:
        with Engine.open(d / "root", driver="vfs") as engine:
            from lamina.transports import local

            local.write(engine.store, kit.build_image(), names=["docker.io/library/f:t"])
            assert engine.forensics.verify_deep("f:t", repair=False).findings == []
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.needs_peer("runc")
@pytest.mark.parametrize(
    "driver", [pytest.param("overlay2", marks=pytest.mark.needs_overlay), "vfs"]
)
def test_container_runs_leave_image_layers_clean(
    driver: str, shm_tmp: Path, busybox_rootfs_tar: Path
) -> None:
    """A container that writes, deletes and chmods through its rootfs changes only its own rw
    layer: the image's layers still verify, before and after the container is removed."""
    root = str(shm_tmp / "root")

    def lamina(*args: str) -> int:
        return main(["--root", root, "--storage-driver", driver, *args])

    assert lamina("import", str(busybox_rootfs_tar), "busybox") == 0
    script = "echo x > /etc/new; rm /etc/passwd; chmod 600 /bin/busybox; mkdir -p /var/y"
    assert lamina("run", "--name", "c1", "busybox", "sh", "-c", script) == 0
    assert lamina("verify", "--deep") == 0
    assert lamina("verify", "--deep", "busybox") == 0
    assert lamina("rm", "c1") == 0
    assert lamina("verify", "--deep") == 0


@pytest.mark.needs_overlay
def test_odd_but_valid_layers_verify_clean(shm_tmp: Path) -> None:
    """Markers extraction ignores (under a file of the same layer), a whiteout re-added in the
    same layer (the dir becomes opaque), hardlinks, symlinks, a fifo and overlay-namespace
    xattrs from the image (stored escaped)."""
    from lamina.image.layers import BytesLayer
    from lamina.image.mutate import append_layer
    from lamina.oci.config import History
    from lamina.transports import local

    base = kit.build_image()
    odd = kit.tar_of(
        ("file", "f", b"plain", 0o644),
        ("whiteout", "f/x"),
        ("whiteout", "etc"),
        ("dir", "etc", 0o755),
        ("file", "etc/only", b"only", 0o600, {"trusted.overlay.opaque": b"y", "user.note": b"1"}),
        ("hardlink", "etc/alias", "etc/only"),
        ("symlink", "lnk", "/etc/only"),
    )
    img = append_layer(base, BytesLayer.from_tar(odd), history=History(created_by="odd"))
    with Engine.open(shm_tmp / "root") as engine:
        local.write(engine.store, img, names=["docker.io/library/odd:1"])
        assert engine.forensics.verify_deep("odd:1", repair=False).findings == []
        merged = engine.images.mount("odd:1")
        try:
            assert sorted(os.listdir(merged / "etc")) == ["alias", "only"]  # opaque: rest hidden
        finally:
            engine.images.unmount("odd:1")


@pytest.mark.needs_overlay
def test_repair_refuses_while_a_container_mounts_the_layer(
    shm_tmp: Path, busybox_rootfs_tar: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(shm_tmp / "root")

    def lamina(*args: str) -> int:
        return main(["--root", root, "--storage-driver", "overlay2", *args])

    assert lamina("import", str(busybox_rootfs_tar), "busybox") == 0
    assert lamina("create", "--name", "c1", "busybox", "true") == 0
    assert lamina("mount", "c1") == 0
    with Engine.open(root) as engine:
        rec = engine.images.resolve("busybox")
        diff = engine.store.driver.apply_dir(engine.store.layers.get(rec.layers[0]).cache_id)
    (diff / "etc" / "planted").write_text("x\n")
    capsys.readouterr()
    assert lamina("verify", "--deep", "--repair", "busybox") == 1
    assert "in use" in capsys.readouterr().err
    assert (diff / "etc" / "planted").exists()  # nothing rewritten under the live mount
    assert lamina("umount", "c1") == 0
    assert lamina("verify", "--deep", "--repair", "busybox") == 0
    assert not (diff / "etc" / "planted").exists()
    assert lamina("rm", "c1") == 0


def test_verify_image_rehashes_its_layer_blobs(
    built: kit.Built, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = built.engine.images.resolve(built.name)
    layer = built.engine.store.layers.get(rec.layers[2])
    blob = built.engine.store.blobs.path(layer.blob_digest)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    result = built.engine.forensics.verify_deep(built.name, repair=False)
    assert [(p.kind.value, p.subject) for p in result.store_problems] == [
        ("blob-corrupt", layer.blob_digest)
    ]
    assert _cli(built, "verify", built.name) == 1
    assert "blob-corrupt" in capsys.readouterr().out
