"""``cp`` and a container's volumes and bind mounts: both directions go to the mounted dir, as
the container's process sees it, as ``docker cp`` does (it mounts the volumes first).

Expected values come from outside lamina: what the container's own process wrote and read
through the mounts, the volume's and the bind's dirs on the host, Docker's refusal of a copy
into a ``:ro`` mount ("mounted volume is marked read-only"), and the host's own /etc (never
read or written through a symlink in a volume -- the CVE-2018-15664 class). Every test ends
with no mount under its tmp dir, as seen from the host's mount namespace.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interop import DriverLamina

pytestmark = [pytest.mark.needs_root]


class Lamina(DriverLamina):
    def out(self, *args: str) -> str:
        return self.run(*args).stdout.decode()

    def cp_tar(self, source: str) -> tarfile.TarFile:
        out = self.run("cp", source, "-").stdout
        return tarfile.open(fileobj=io.BytesIO(out))

    def read(self, source: str) -> bytes:
        """The one file ``cp SOURCE -`` gives."""
        tf = self.cp_tar(source)
        (member,) = tf.getmembers()
        return _member(tf, member.name)

    def mounts(self, container: str) -> list[dict[str, Any]]:
        return list(json.loads(self.out("inspect", "-f", "{{json .Mounts}}", container)))

    def refused(self, *args: str) -> str:
        r = self.run(*args, check=False)
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        return r.stderr.decode()


def _mounts_under(d: Path) -> list[str]:
    prefix = str(d) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]


@pytest.fixture(name="lamina", params=["overlay2", "vfs"])
def lamina_on_both_drivers(
    request: pytest.FixtureRequest, shm_tmp: Path, busybox_rootfs_tar: Path
) -> Iterator[Lamina]:
    if request.param == "overlay2":
        request.applymarker(pytest.mark.needs_overlay)
    lam = Lamina(root=shm_tmp / "root", driver=str(request.param))
    lam.run("import", "--change", 'CMD ["/bin/sh"]', str(busybox_rootfs_tar), "busybox")
    yield lam
    ids = lam.out("ps", "-aq", "--no-trunc").split()
    if ids:
        lam.run("rm", "-f", *ids)
    # Not under the store, nor the binds' host dirs: the volumes were only ever mounted in
    # each cp's own namespace.
    assert _mounts_under(shm_tmp) == []
    runc = lam.root / "runtime" / "runc"
    assert not runc.exists() or list(runc.iterdir()) == []


def _member(tf: tarfile.TarFile, name: str) -> bytes:
    f = tf.extractfile(name)
    assert f is not None, name
    return f.read()


def _volume_dir(lamina: Lamina, container: str, destination: str) -> Path:
    (source,) = [m["Source"] for m in lamina.mounts(container) if m["Destination"] == destination]
    return Path(source)


def test_a_named_volume_both_ways(lamina: Lamina, shm_tmp: Path) -> None:
    lamina.run(
        "run", "--name", "c1", "-v", "data:/data", "busybox", "sh", "-c",
        "mkdir /data/sub; echo from-process > /data/sub/f",
    )  # fmt: skip
    data = _volume_dir(lamina, "c1", "/data")
    # out: to a host file, a host dir, and as a tar
    lamina.run("cp", "c1:/data/sub/f", str(shm_tmp / "f"))
    assert (shm_tmp / "f").read_text() == "from-process\n"
    lamina.run("cp", "c1:/data", str(shm_tmp / "data-copy"))
    assert (shm_tmp / "data-copy" / "sub" / "f").read_text() == "from-process\n"
    names = sorted(m.name for m in lamina.cp_tar("c1:/data"))
    assert names == ["data", "data/sub", "data/sub/f"]
    # in: into the volume, where another container's process reads it; not the rw layer
    payload = shm_tmp / "payload"
    payload.write_text("copied-in\n")
    lamina.run("cp", str(payload), "c1:/data/sub/")
    lamina.run("cp", str(payload), "c1:/data/renamed")
    assert (data / "sub" / "payload").read_text() == "copied-in\n"
    assert (data / "renamed").read_text() == "copied-in\n"
    seen = lamina.out(
        "run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/sub/payload", "/data/renamed"
    )
    assert seen == "copied-in\n" * 2
    assert lamina.out("diff", "c1").splitlines() == ["A /data"]  # only the mount point


def test_a_running_container_sees_the_copies(lamina: Lamina, shm_tmp: Path) -> None:
    lamina.run("run", "-d", "--name", "live", "-v", "data:/data", "busybox", "sleep", "60")
    payload = shm_tmp / "payload"
    payload.write_text("to-the-process\n")
    lamina.run("cp", str(payload), "live:/data/in")
    assert lamina.out("exec", "live", "cat", "/data/in") == "to-the-process\n"
    lamina.run("exec", "live", "sh", "-c", "echo from-the-process > /data/out")
    assert lamina.read("live:/data/out") == b"from-the-process\n"
    lamina.run("rm", "-f", "live")


def test_an_anonymous_volume_from_the_image(lamina: Lamina, shm_tmp: Path) -> None:
    lamina.run("create", "--name", "base", "busybox")
    lamina.run("commit", "-c", "VOLUME /cache", "base", "withvol")
    lamina.run("create", "--name", "a1", "withvol", "sh", "-c", "cat /cache/in; echo x > /cache/x")
    payload = shm_tmp / "payload"
    payload.write_text("before-start\n")
    lamina.run("cp", str(payload), "a1:/cache/in")  # never started: still the volume
    assert lamina.out("start", "-a", "a1") == "before-start\n"
    assert lamina.read("a1:/cache/x") == b"x\n"
    assert (_volume_dir(lamina, "a1", "/cache") / "x").read_text() == "x\n"
    assert "/cache/in" not in lamina.out("diff", "a1")


def test_bind_mounts_both_ways(lamina: Lamina, shm_tmp: Path) -> None:
    host = shm_tmp / "host"
    host.mkdir()
    (host / "in").write_text("from-host\n")
    single = shm_tmp / "single.conf"
    single.write_text("one file\n")
    lamina.run(
        "run", "--name", "b1", "-v", f"{host}:/mnt", "-v", f"{single}:/etc/single.conf",
        "busybox", "sh", "-c", "echo from-process > /mnt/out",
    )  # fmt: skip
    assert lamina.read("b1:/mnt/in") == b"from-host\n"
    assert lamina.read("b1:/mnt/out") == b"from-process\n"
    assert lamina.read("b1:/etc/single.conf") == b"one file\n"
    payload = shm_tmp / "payload"
    payload.write_text("copied-in\n")
    lamina.run("cp", str(payload), "b1:/mnt/")
    assert (host / "payload").read_text() == "copied-in\n"
    # a file bind is a mount point: not replaced (Docker: EBUSY), the host file untouched
    err = lamina.refused("cp", str(payload), "b1:/etc/single.conf")
    assert f"cannot copy to /etc/single.conf: it is a mount point, bound from {single}" in err
    assert single.read_text() == "one file\n"


def test_read_only_mounts_refuse_writes(lamina: Lamina, shm_tmp: Path) -> None:
    host = shm_tmp / "host"
    host.mkdir()
    (host / "keep").write_text("host\n")
    lamina.run(
        "run", "--name", "ro", "-v", "rov:/ro:ro", "-v", f"{host}:/hro:ro", "busybox",
        "sh", "-c", "ln -s /ro /link-ro; ln -s ../../hro /etc/link-hro",
    )  # fmt: skip
    rov = _volume_dir(lamina, "ro", "/ro")
    payload = shm_tmp / "payload"
    payload.write_text("x\n")
    tree = shm_tmp / "tree"
    (tree / "ro").mkdir(parents=True)
    (tree / "ro" / "x").write_text("x\n")
    for dest in ("/ro/f", "/ro/", "/ro", "/hro/keep", "/hro/", "/link-ro/f", "/etc/link-hro/f"):
        err = lamina.refused("cp", str(payload), f"ro:{dest}")
        assert "mounted volume is marked read-only" in err, dest
    # a directory copy that reaches one stops there: tree/ro merges into the volume at /ro
    err = lamina.refused("cp", str(tree / "ro"), "ro:/")
    assert "mounted volume is marked read-only" in err
    assert os.listdir(rov) == [] and os.listdir(host) == ["keep"]
    assert (host / "keep").read_text() == "host\n"
    assert not [ln for ln in lamina.out("diff", "ro").splitlines() if "payload" in ln or "/x" in ln]
    # reading them is fine
    assert lamina.read("ro:/hro/keep") == b"host\n"


def test_directory_copies_of_a_parent_show_the_volumes(lamina: Lamina, shm_tmp: Path) -> None:
    host = shm_tmp / "host"
    host.mkdir()
    (host / "h").write_text("bound\n")
    lamina.run(
        "run", "--name", "p1", "-v", "data:/srv/data", "-v", f"{host}:/srv/data/nested",
        "busybox", "sh", "-c", "echo vol > /srv/data/v",
    )  # fmt: skip
    whole = lamina.cp_tar("p1:/")
    assert _member(whole, "srv/data/v") == b"vol\n"
    assert _member(whole, "srv/data/nested/h") == b"bound\n"
    lamina.run("cp", "p1:/", str(shm_tmp / "all"))
    assert (shm_tmp / "all" / "srv" / "data" / "v").read_text() == "vol\n"
    assert (shm_tmp / "all" / "srv" / "data" / "nested" / "h").read_text() == "bound\n"
    lamina.run("cp", "p1:/srv/.", str(shm_tmp / "srv"))
    assert (shm_tmp / "srv" / "data" / "nested" / "h").read_text() == "bound\n"
    # the nested bind's mount point was made in the volume, as the run made it
    data = _volume_dir(lamina, "p1", "/srv/data")
    assert (data / "nested").is_dir() and os.listdir(data / "nested") == []


def test_symlinks_in_and_around_mounts_stay_in_the_container(lamina: Lamina, shm_tmp: Path) -> None:
    """CVE-2018-15664 class, across mount points: a symlink in a volume or a bind resolves in
    the container's view (``..`` from a mount's root goes to its parent in the container, an
    absolute target starts at the container's root), never on the host."""
    host = shm_tmp / "host"
    host.mkdir()
    lamina.run(
        "run", "--name", "cve", "-v", "data:/data", "-v", f"{host}:/mnt", "busybox", "sh", "-c",
        "ln -s /etc /data/abs-etc; ln -s ../../../../../../../etc /data/rel-etc; "
        "ln -s ../.. /data/up; ln -s / /mnt/root; ln -s ../../../.. /mnt/up; "
        "mkdir /data/sub; echo vol > /data/sub/f; ln -s /data/sub /into; "
        "echo inside > /etc/marker; cat /etc/passwd",
    )  # fmt: skip
    passwd = lamina.run(
        "run", "--rm", "busybox", "cat", "/etc/passwd"
    ).stdout  # the container's own, as its process reads it
    assert passwd != Path("/etc/passwd").read_bytes()
    data = _volume_dir(lamina, "cve", "/data")
    # out: through symlinks in the volume and in the bind, to the container's /etc
    for via in ("/data/abs-etc", "/data/rel-etc", "/data/up/etc", "/mnt/root/etc", "/mnt/up/etc"):
        assert lamina.read(f"cve:{via}/marker") == b"inside\n", via
        assert lamina.read(f"cve:{via}/passwd") == passwd, via
        # the host has /etc/shadow, the container has none
        assert lamina.refused("cp", f"cve:{via}/shadow", str(shm_tmp / "shadow"))
        assert not (shm_tmp / "shadow").exists()
    # out: through a symlink in the rootfs into the volume
    assert lamina.read("cve:/into/f") == b"vol\n"
    # links met while copying a volume's dir out are copied as links, never followed
    lamina.run("cp", "cve:/data", str(shm_tmp / "data-copy"))
    assert os.readlink(shm_tmp / "data-copy" / "abs-etc") == "/etc"
    assert os.readlink(shm_tmp / "data-copy" / "up") == "../.."
    # in: through the same links, into the container's rw layer, never the host's /etc or
    # the dirs above the volume's and the bind's dirs on the host
    payload = shm_tmp / "payload"
    payload.write_text("payload\n")
    targets = {
        "/data/abs-etc/lamina-cve-1": "/etc/lamina-cve-1",
        "/data/rel-etc/lamina-cve-2": "/etc/lamina-cve-2",
        "/data/up/lamina-cve-3": "/lamina-cve-3",
        "/mnt/root/etc/lamina-cve-4": "/etc/lamina-cve-4",
        "/mnt/up/lamina-cve-5": "/lamina-cve-5",
    }
    for via in targets:
        lamina.run("cp", str(payload), f"cve:{via}")
    added = lamina.out("diff", "cve").splitlines()
    for via, where in targets.items():
        name = where.rsplit("/", 1)[1]
        assert f"A {where}" in added, via
        assert lamina.read(f"cve:{where}") == b"payload\n", via
        assert not Path("/etc", name).exists() and not Path("/", name).exists()
        assert not (data.parent / name).exists() and not (data.parent.parent / name).exists()
        assert not (host.parent / name).exists() and not (shm_tmp.parent / name).exists()
    # in: through a symlink in the rootfs, into the volume
    lamina.run("cp", str(payload), "cve:/into/g")
    assert (data / "sub" / "g").read_text() == "payload\n"


def test_a_mount_point_behind_a_symlink_is_resolved_inside(lamina: Lamina, shm_tmp: Path) -> None:
    """The image's /lnk points "out" of the rootfs; runc mounts ``-v lv:/lnk`` on the
    container's /tmp, and cp finds it there, never in the host's /tmp."""
    lamina.run("run", "--name", "mk", "busybox", "ln", "-s", "../../../../../tmp", "/lnk")
    lamina.run("commit", "mk", "linked")
    lamina.run(
        "run", "--name", "l1", "-v", "lv:/lnk", "linked", "sh", "-c", "echo p > /tmp/p"
    )  # fmt: skip
    lv = _volume_dir(lamina, "l1", "/lnk")
    assert (lv / "p").read_text() == "p\n"
    assert lamina.read("l1:/tmp/p") == b"p\n"
    assert lamina.read("l1:/lnk/p") == b"p\n"
    payload = shm_tmp / "payload"
    payload.write_text("q\n")
    lamina.run("cp", str(payload), "l1:/lnk/q-lamina-test")
    assert (lv / "q-lamina-test").read_text() == "q\n"
    assert not Path("/tmp/q-lamina-test").exists()
