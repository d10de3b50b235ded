"""``cp`` and the files a run bind-mounts over the rootfs: /etc/hostname, /etc/hosts and
/etc/resolv.conf.

Expected values come from outside lamina: what the container's own process read from those
paths while it ran, Docker 20.10's observed behaviour (the init layer's empty 0755 placeholder
for a container that never started, the generated 0644 file once it has, through any path
and inside directory copies; a copy onto one of them fails), Docker's /etc/hosts for
``--network none``, and the host's own /etc (never read or written through the container).
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from interop import DriverLamina

pytestmark = [pytest.mark.needs_root]

RUN_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
# docker run --network none busybox cat /etc/hosts (20.10.24)
DOCKER_HOSTS_NONE = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


class Lamina(DriverLamina):
    def out(self, *args: str) -> str:
        return self.run(*args).stdout.decode()

    def cp_tar(self, source: str) -> tarfile.TarFile:
        """``cp SOURCE -``: a tar on stdout, never a host file called "-"."""
        out = self.run("cp", source, "-").stdout
        assert not (self.root.parent / "-").exists()
        return tarfile.open(fileobj=io.BytesIO(out))


def _read_member(tf: tarfile.TarFile, name: str) -> bytes:
    f = tf.extractfile(name)
    assert f is not None, name
    return f.read()


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]


@pytest.fixture(params=["overlay2", "vfs"])
def lamina(
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
    assert _mounts_under(lam.root) == []
    runc = lam.root / "runtime" / "runc"
    assert not runc.exists() or list(runc.iterdir()) == []


def test_never_started_shows_the_placeholders(lamina: Lamina, shm_tmp: Path) -> None:
    lamina.run("create", "--name", "fresh", "--hostname", "fresh-host", "busybox", "true")
    for path in RUN_FILES:
        tf = lamina.cp_tar(f"fresh:{path}")
        (member,) = tf.getmembers()
        assert (member.name, member.size, member.mode) == (path.rsplit("/", 1)[1], 0, 0o755)
        out = shm_tmp / f"fresh-{member.name}"
        lamina.run("cp", f"fresh:{path}", str(out))
        assert out.read_bytes() == b""


def test_a_container_that_ran_shows_what_its_process_saw(lamina: Lamina, shm_tmp: Path) -> None:
    seen = lamina.run(
        "run", "--name", "ran", "--hostname", "box-name", "busybox", "sh", "-c",
        "cat /etc/hostname; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf; "
        "ln -s /etc /link; ln -s / /escape",
    ).stdout.decode()  # fmt: skip
    hostname, hosts, resolv = seen.split("---\n")
    assert (hostname, hosts) == ("box-name\n", DOCKER_HOSTS_NONE)
    expected = dict(zip(RUN_FILES, (hostname, hosts, resolv), strict=True))
    for path, text in expected.items():
        name = path.rsplit("/", 1)[1]
        # to a host file
        lamina.run("cp", f"ran:{path}", str(shm_tmp / name))
        assert (shm_tmp / name).read_text() == text
        assert (shm_tmp / name).stat().st_mode & 0o777 == 0o644
        # as a tar on stdout
        tf = lamina.cp_tar(f"ran:{path}")
        (member,) = tf.getmembers()
        assert (member.name, member.mode, member.size) == (name, 0o644, len(text.encode()))
        assert _read_member(tf, name).decode() == text
        # through symlinks in the rootfs, resolved inside it (never the host's /etc)
        for via in (f"/link/{name}", f"/escape/etc/{name}", f"/escape/escape/link/{name}"):
            assert _read_member(lamina.cp_tar(f"ran:{via}"), name).decode() == text, via
    # inside directory copies, to the host and as a tar
    lamina.run("cp", "ran:/etc", str(shm_tmp / "etc-copy"))
    tf = lamina.cp_tar("ran:/etc")
    dot = lamina.cp_tar("ran:/etc/.")
    for path, text in expected.items():
        name = path.rsplit("/", 1)[1]
        assert (shm_tmp / "etc-copy" / name).read_text() == text
        assert _read_member(tf, f"etc/{name}").decode() == text
        assert _read_member(dot, name).decode() == text
    whole = lamina.cp_tar("ran:/")
    assert _read_member(whole, "etc/hostname") == b"box-name\n"
    assert whole.getmember("escape").linkname == "/"  # stored as a link, never followed
    lamina.run("cp", "ran:/", str(shm_tmp / "all"))
    assert (shm_tmp / "all" / "etc" / "hostname").read_text() == "box-name\n"
    assert os.readlink(shm_tmp / "all" / "link") == "/etc"


def test_copies_onto_them_are_refused_once_it_ran(lamina: Lamina, shm_tmp: Path) -> None:
    host_hostname = Path("/etc/hostname").read_bytes()
    host_hosts = Path("/etc/hosts").read_bytes()
    lamina.run(
        "run", "--name", "ran", "busybox", "sh", "-c", "ln -sfn /etc /link; ln -sfn / /escape"
    )  # fmt: skip
    payload = shm_tmp / "payload"
    payload.write_text("evil\n")
    bundle = lamina.root / "containers" / lamina.out("inspect", "-f", "{{.Id}}", "ran").strip()
    generated = {n: (bundle / n).read_bytes() for n in ("hostname", "hosts", "resolv.conf")}
    targets = [*RUN_FILES, "/link/hostname", "/escape/etc/hosts", "/escape/link/resolv.conf"]
    for target in targets:
        r = lamina.run("cp", str(payload), f"ran:{target}", check=False)
        assert r.returncode == 1, target
        assert b"cannot copy to /etc/" in r.stderr and b"every start" in r.stderr
    # a directory copied over /etc stops at the first of them
    tree = shm_tmp / "etc"
    tree.mkdir()
    (tree / "hostname").write_text("evil\n")
    r = lamina.run("cp", str(tree), "ran:/", check=False)
    assert r.returncode == 1 and b"cannot copy to /etc/hostname" in r.stderr
    # nothing was written: not the generated files, not the host's, not the rw layer
    assert {n: (bundle / n).read_bytes() for n in generated} == generated
    assert Path("/etc/hostname").read_bytes() == host_hostname
    assert Path("/etc/hosts").read_bytes() == host_hosts
    assert "/etc/hostname" not in lamina.out("diff", "ran")
    # other files in /etc still take copies
    lamina.run("cp", str(payload), "ran:/etc/motd")
    assert lamina.out("start", "-a", "ran") == ""
    # a tar on stdin is refused there too (Docker 20.10: "unlinkat /etc/hostname: device or
    # resource busy"), the files before it in the tar stay; an empty stream is a no-op
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in ("etc/from-tar", "etc/hostname"):
            ti = tarfile.TarInfo(name)
            ti.size = 5
            tf.addfile(ti, io.BytesIO(b"evil\n"))
    r = lamina.run("cp", "-", "ran:/", check=False, input=buf.getvalue())
    assert r.returncode == 1 and b"cannot copy to /etc/hostname" in r.stderr, r.stderr
    assert {n: (bundle / n).read_bytes() for n in generated} == generated
    assert Path("/etc/hostname").read_bytes() == host_hostname
    assert _read_member(lamina.cp_tar("ran:/etc/from-tar"), "from-tar") == b"evil\n"
    lamina.run("cp", "-", "ran:/tmp", input=b"")


def test_a_copy_before_the_first_start_goes_to_the_rw_layer(lamina: Lamina, shm_tmp: Path) -> None:
    """As Docker: before the first start the path is the placeholder in the rootfs; the run
    then mounts the generated file over it."""
    lamina.run("create", "--name", "c1", "--hostname", "gen", "busybox", "cat", "/etc/hostname")
    payload = shm_tmp / "payload"
    payload.write_text("copied\n")
    lamina.run("cp", str(payload), "c1:/etc/hostname")
    assert "C /etc/hostname" in lamina.out("diff", "c1").splitlines()
    assert _read_member(lamina.cp_tar("c1:/etc/hostname"), "hostname") == b"copied\n"
    assert lamina.out("start", "-a", "c1") == "gen\n"
    assert _read_member(lamina.cp_tar("c1:/etc/hostname"), "hostname") == b"gen\n"


def test_a_running_container(lamina: Lamina, shm_tmp: Path) -> None:
    lamina.run("run", "-d", "--name", "live", "busybox", "sleep", "60")
    inside = lamina.out("exec", "live", "cat", "/etc/hostname")
    assert _read_member(lamina.cp_tar("live:/etc/hostname"), "hostname").decode() == inside
    payload = shm_tmp / "payload"
    payload.write_text("evil\n")
    assert lamina.run("cp", str(payload), "live:/etc/hostname", check=False).returncode == 1
    assert lamina.out("exec", "live", "cat", "/etc/hostname") == inside
    lamina.run("rm", "-f", "live")
