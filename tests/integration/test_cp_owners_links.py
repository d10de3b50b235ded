"""``cp -a``, ``cp -L`` and ``cp`` into a ``--read-only`` container, as docker 20.10 does them
(each expected value is what docker 20.10 did with the same files, run as root):

- copied in, files keep their host owners with or without ``-a``; with ``-a`` and a
  ``Config.User`` they belong to that user as looked up in the *host's* passwd database
  (``-u nobody``: 65534:65534; ``-u 1000:2000``: refused, ``getent unable to find entry
  "1000:2000" in passwd database``, status 1);
- copied out, files belong to whoever copies (root: 0:0), ``-a`` or not;
- ``-L`` copies a symlink SRC as what it leads to, named after the link, both ways (``cp -L
  C:/link -`` names the entry after the target); a dangling one is "no such" (status 1);
- a ``--read-only`` container refuses copies outside its volumes, started or not:
  "container rootfs is marked read-only" (status 1); its volumes take them.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from test_cp_volumes import (
    Lamina,
    lamina_on_both_drivers,  # noqa: F401  # the `lamina` fixture
)

pytestmark = [pytest.mark.needs_root]


@pytest.fixture
def host(shm_tmp: Path) -> Path:
    h = shm_tmp / "h"
    (h / "dir").mkdir(parents=True)
    (h / "f").write_text("hi\n")
    (h / "target").write_text("t\n")
    os.symlink("target", h / "link")
    os.symlink("/nowhere", h / "dangle")
    for p in (h / "f", h / "dir", h / "target"):
        os.chown(p, 1234, 5678)
    os.chown(h / "link", 4321, 8765, follow_symlinks=False)
    return h


def _owners(lamina: Lamina, container: str, *paths: str) -> list[str]:
    out = lamina.out("exec", container, "stat", "-c", "%n %u:%g %F", *paths)
    return out.splitlines()


def test_owners_copied_in_with_and_without_a(lamina: Lamina, host: Path) -> None:
    lamina.run("run", "-d", "--name", "root", "busybox", "sleep", "300")
    lamina.run("run", "-d", "--name", "nobody", "-u", "nobody", "busybox", "sleep", "300")
    lamina.run("run", "-d", "--name", "numeric", "-u", "1000:2000", "busybox", "sleep", "300")
    for c in ("root", "nobody"):
        lamina.run("cp", str(host / "f"), f"{c}:/tmp/plain")
        lamina.run("cp", "-a", str(host / "f"), f"{c}:/tmp/a")
        lamina.run("cp", "-a", str(host / "dir"), f"{c}:/tmp/adir")
        lamina.run("cp", "-a", str(host / "link"), f"{c}:/tmp/alink")
    assert _owners(lamina, "root", "/tmp/plain", "/tmp/a", "/tmp/adir", "/tmp/alink") == [
        "/tmp/plain 1234:5678 regular file",
        "/tmp/a 1234:5678 regular file",
        "/tmp/adir 1234:5678 directory",
        "/tmp/alink 4321:8765 symbolic link",
    ]
    assert _owners(lamina, "nobody", "/tmp/plain", "/tmp/a", "/tmp/adir", "/tmp/alink") == [
        "/tmp/plain 1234:5678 regular file",
        "/tmp/a 65534:65534 regular file",
        "/tmp/adir 65534:65534 directory",
        "/tmp/alink 65534:65534 symbolic link",
    ]
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        tf.add(host / "f", arcname="fromtar")
    lamina.run("cp", "-a", "-", "nobody:/tmp", input=tar.getvalue())
    lamina.run("cp", "-", "nobody:/", input=tar.getvalue())
    assert _owners(lamina, "nobody", "/tmp/fromtar", "/fromtar") == [
        "/tmp/fromtar 65534:65534 regular file",
        "/fromtar 1234:5678 regular file",
    ]
    err = lamina.refused("cp", "-a", str(host / "f"), "numeric:/tmp/a")
    assert 'getent unable to find entry "1000:2000" in passwd database' in err
    lamina.run("cp", str(host / "f"), "numeric:/tmp/plain")  # without -a: no lookup


def test_owners_copied_out_are_the_copiers(lamina: Lamina, shm_tmp: Path) -> None:
    script = (
        "mkdir /d; echo x > /d/own; ln -s own /d/lnk; chown -R 1234:5678 /d; chown -h 99:98 /d/lnk"
    )
    lamina.run("run", "--name", "cc", "busybox", "sh", "-c", script)
    out = shm_tmp / "out"
    out.mkdir()
    for flags, name in (((), "plain"), (("-a",), "a")):
        lamina.run("cp", *flags, "cc:/d", str(out / name))
        for p in (out / name, out / name / "own", out / name / "lnk"):
            st = os.lstat(p)
            assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()), p
    assert os.readlink(out / "a" / "lnk") == "own"
    tf = lamina.cp_tar("cc:/d/own")  # the tar keeps the container's owners
    assert [(m.name, m.uid, m.gid) for m in tf.getmembers()] == [("own", 1234, 5678)]


def test_follow_link_both_ways(lamina: Lamina, host: Path, shm_tmp: Path) -> None:
    script = (
        "mkdir /d; echo in-container > /d/own; ln -s own /d/lnk; ln -s /d/own /d/alnk; sleep 300"
    )
    lamina.run("run", "-d", "--name", "cc", "busybox", "sh", "-c", script)
    for _ in range(100):
        if lamina.run("exec", "cc", "test", "-L", "/d/alnk", check=False).returncode == 0:
            break
    lamina.run("cp", str(host / "link"), "cc:/plain")
    lamina.run("cp", "-L", str(host / "link"), "cc:/followed")
    assert _owners(lamina, "cc", "/plain", "/followed") == [
        "/plain 4321:8765 symbolic link",
        "/followed 1234:5678 regular file",
    ]
    assert lamina.out("exec", "cc", "cat", "/followed") == "t\n"
    out = shm_tmp / "out"
    out.mkdir()
    lamina.run("cp", "cc:/d/lnk", str(out / "plain"))
    lamina.run("cp", "-L", "cc:/d/lnk", str(out / "rel"))
    lamina.run("cp", "-L", "cc:/d/alnk", str(out))  # into a dir: named after the link
    assert os.readlink(out / "plain") == "own"
    assert (out / "rel").read_text() == (out / "alnk").read_text() == "in-container\n"
    assert not (out / "rel").is_symlink() and not (out / "alnk").is_symlink()
    raw = lamina.run("cp", "-L", "cc:/d/lnk", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        assert [(m.name, m.isfile()) for m in tf.getmembers()] == [("own", True)]
    lamina.run("exec", "cc", "ln", "-s", "/nowhere", "/d/dangle")
    assert "no such file or directory" in lamina.refused("cp", "-L", "cc:/d/dangle", str(out))
    assert "no such file or directory" in lamina.refused("cp", "-L", str(host / "dangle"), "cc:/")


def test_a_read_only_container_takes_copies_only_into_its_volumes(
    lamina: Lamina, host: Path
) -> None:
    lamina.run(
        "run", "-d", "--name", "ro", "--read-only", "-v", "vol:/vol", "busybox", "sleep", "300"
    )
    lamina.run("create", "--name", "ro2", "--read-only", "busybox")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        tf.add(host / "f", arcname="fromtar")
    for args in (
        ("cp", str(host / "f"), "ro:/f"),
        ("cp", str(host / "f"), "ro:/tmp/f"),
        ("cp", str(host / "dir"), "ro:/"),
        ("cp", str(host / "f"), "ro2:/f"),
    ):
        assert "container rootfs is marked read-only" in lamina.refused(*args)
    r = lamina.run("cp", "-", "ro:/", input=tar.getvalue(), check=False)
    assert r.returncode == 1 and b"container rootfs is marked read-only" in r.stderr
    assert lamina.out("diff", "ro2") == ""  # nothing written
    lamina.run("cp", str(host / "f"), "ro:/vol/f")
    lamina.run("cp", str(host / "dir"), "ro:/vol/")
    lamina.run("cp", "-", "ro:/vol", input=tar.getvalue())
    assert lamina.out("exec", "ro", "ls", "/vol") == "dir\nf\nfromtar\n"
    assert lamina.read("ro:/etc/hostname")  # copies out are fine
