"""``cp - CONTAINER:DEST``: a tar read from stdin, extracted into DEST inside the container.

Expected values come from outside lamina: what ``docker cp -`` of Docker 20.10.24 did with the
same tars (built here with ``tarfile``) into a busybox container prepared by the same script,
recorded next to each case. Docker extracts in a chroot of the container's root, so symlinks
on the way -- the container's own or ones the tar made -- are followed *inside* the container;
lamina resolves them with ``openat2(RESOLVE_IN_ROOT)``. Every hostile case also checks the
host: a canary dir that the tars aim at is unchanged and nothing appeared in the host's /etc
or /.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from interop import LAMINA, DriverLamina

pytestmark = [pytest.mark.needs_root]


# The container every case starts from (the same script ran in Docker's).
SETUP = (
    "mkdir -p /w/sub; echo file > /w/file; ln -s ../../../.. /w/lout; ln -s /etc /w/letc;"
    " ln -s /w /wl; ln -s ../../../../w /wout; ln -s /nonexist /wdang"
)
MTIME = 1_000_000_000


class Lamina(DriverLamina):
    def cp_in(self, tar: bytes, dest: str) -> subprocess.CompletedProcess[bytes]:
        return self.run("cp", "-", f"cc:{dest}", input=tar, check=False)

    def refused(self, tar: bytes, dest: str, words: str) -> None:
        r = self.cp_in(tar, dest)
        assert r.returncode == 1, (dest, r.returncode, r.stderr)
        assert words in r.stderr.decode(), r.stderr

    def listing(self, path: str) -> dict[str, tuple[Any, ...]]:
        """``cp c:PATH -`` as {name: (kind, mode, uid, gid, mtime, content or link)}."""
        out = self.run("cp", f"cc:{path}", "-").stdout
        rows: dict[str, tuple[Any, ...]] = {}
        with tarfile.open(fileobj=io.BytesIO(out)) as tf:
            for m in tf.getmembers():
                data: Any = None
                if m.isfile():
                    f = tf.extractfile(m)
                    assert f is not None
                    data = f.read()
                elif m.issym() or m.islnk():
                    data = m.linkname
                elif m.ischr() or m.isblk():
                    data = (m.devmajor, m.devminor)
                rows[m.name.rstrip("/")] = (m.type, m.mode, m.uid, m.gid, m.mtime, data)
        return rows

    def names(self, path: str) -> set[str]:
        return set(self.listing(path))


def _tar(*entries: dict[str, Any], compress: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.mtime = e.get("mtime", MTIME)
            ti.mode = e.get("mode", 0o644)
            ti.uid, ti.gid = e.get("uid", 0), e.get("gid", 0)
            kind, data = e.get("type", "f"), None
            if kind == "f":
                body = e.get("data", b"x\n")
                ti.size, data = len(body), io.BytesIO(body)
            elif kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, e.get("mode", 0o755)
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, e["link"]
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, e["link"]
            elif kind == "c":
                ti.type, (ti.devmajor, ti.devminor) = tarfile.CHRTYPE, e["dev"]
            elif kind == "p":
                ti.type = tarfile.FIFOTYPE
            tf.addfile(ti, data)
    raw = buf.getvalue()
    return {"": raw, "gz": gzip.compress(raw), "bz2": bz2.compress(raw), "xz": lzma.compress(raw)}[
        compress
    ]


def _mounts_under(d: Path) -> list[str]:
    prefix = str(d) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]


@pytest.fixture(scope="module", params=["overlay2", "vfs"])
def store(request: pytest.FixtureRequest, busybox_rootfs_tar: Path) -> Iterator[Lamina]:
    if request.param == "overlay2":
        request.applymarker(pytest.mark.needs_overlay)
    tmp = Path(tempfile.mkdtemp(prefix="lamina-cp-in-", dir="/dev/shm"))
    lam = Lamina(root=tmp / "root", driver=str(request.param))
    try:
        lam.run("import", "--change", 'CMD ["/bin/sh"]', str(busybox_rootfs_tar), "busybox")
        yield lam
        assert _mounts_under(tmp) == []
    finally:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


_HOSTILE_NAMES = ("pwned", "escape", "owned", "absf", "inner")


def _hostile_on_host() -> list[str]:
    return [
        f"{d}/{n}" for d in ("/", "/etc") for n in os.listdir(d) if n.startswith(_HOSTILE_NAMES)
    ]


@pytest.fixture
def lamina(store: Lamina, shm_tmp: Path) -> Iterator[Lamina]:
    """A fresh container ``cc`` (stopped, set up by SETUP) and a canary dir on the host."""
    store.run("run", "--name", "cc", "busybox", "sh", "-c", SETUP)
    canary = shm_tmp / "canary"
    canary.mkdir()
    (canary / "keep").write_text("keep\n")
    before = _hostile_on_host()
    yield store
    store.run("rm", "-f", "cc")
    assert os.listdir(canary) == ["keep"] and (canary / "keep").read_text() == "keep\n"
    assert _hostile_on_host() == before


# -- what lands, and how ------------------------------------------------------------------

BASIC = (
    {"name": "d", "type": "d", "mode": 0o750, "uid": 1234, "gid": 4321, "mtime": 1234567890},
    {"name": "d/f", "mode": 0o4755, "uid": 1000, "gid": 2000, "mtime": 1111111111, "data": b"hi\n"},
    {"name": "d/g", "mode": 0o2711, "uid": 7, "gid": 8},
    {"name": "d/sticky", "type": "d", "mode": 0o1777},
    {"name": "d/.wh.x", "data": b"wh\n"},
    {"name": "d/.wh..wh..opq", "data": b"opq\n"},
    {"name": "d/s", "type": "l", "link": "f"},
    {"name": "d/abs", "type": "l", "link": "/etc/passwd"},
    {"name": "d/fifo", "type": "p"},
    {"name": "/absf", "data": b"abs\n"},
    {"name": "sub/../inner", "data": b"in\n"},
    {"name": "x/y/f", "data": b"deep\n"},
)


@pytest.mark.parametrize("compress", ["", "gz", "bz2", "xz"])
def test_entries_keep_modes_owners_and_mtimes(lamina: Lamina, compress: str) -> None:
    """Docker 20.10: owners, modes (setuid, setgid, sticky) and mtimes as the tar has them,
    ``.wh.*`` names are files, links stored as they are, an absolute name lands under DEST,
    ``a/../b`` is ``b``, missing parents are made 0755 root; gzip, bzip2 and xz are inflated
    (by the daemon's Untar; lamina in-process)."""
    lamina.cp_in(_tar(*BASIC, compress=compress), "/w").check_returncode()
    got = lamina.listing("/w")
    reg, dirt, sym, fifo = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.FIFOTYPE
    assert got["w/d"] == (dirt, 0o750, 1234, 4321, 1234567890, None)
    assert got["w/d/f"] == (reg, 0o4755, 1000, 2000, 1111111111, b"hi\n")
    assert got["w/d/g"] == (reg, 0o2711, 7, 8, MTIME, b"x\n")
    assert got["w/d/sticky"][:2] == (dirt, 0o1777)
    assert got["w/d/.wh.x"] == (reg, 0o644, 0, 0, MTIME, b"wh\n")
    assert got["w/d/.wh..wh..opq"][-1] == b"opq\n"
    assert got["w/d/s"][::5] == (sym, "f")
    assert got["w/d/abs"][::5] == (sym, "/etc/passwd")
    assert got["w/d/fifo"][:2] == (fifo, 0o644)
    assert got["w/absf"][-1] == b"abs\n"
    assert got["w/inner"][-1] == b"in\n"
    assert got["w/x"][:4] == (dirt, 0o755, 0, 0)
    assert got["w/x/y/f"][-1] == b"deep\n"


def test_links_devices_and_repeated_names(lamina: Lamina) -> None:
    """Docker 20.10: a hardlink to an earlier entry, to a symlink (the link itself), device
    nodes (the root daemon makes them), and a name given twice: the last copy wins."""
    tar = _tar(
        {"name": "f", "data": b"one\n"},
        {"name": "h", "type": "h", "link": "f"},
        {"name": "s", "type": "l", "link": "/etc/passwd"},
        {"name": "hs", "type": "h", "link": "s"},
        {"name": "null2", "type": "c", "dev": (1, 3), "mode": 0o666},
        {"name": "sda", "type": "c", "dev": (8, 0)},
        {"name": "dup", "data": b"one\n"},
        {"name": "dup", "data": b"two\n"},
    )
    lamina.cp_in(tar, "/w").check_returncode()
    got = lamina.listing("/w")
    assert got["w/f"][-1] == b"one\n" and got["w/h"][-1] in ("w/f", b"one\n")
    assert got["w/hs"][::5] == (tarfile.SYMTYPE, "/etc/passwd")
    assert got["w/null2"][:2] == (tarfile.CHRTYPE, 0o666) and got["w/null2"][-1] == (1, 3)
    assert got["w/sda"][-1] == (8, 0)
    assert got["w/dup"][-1] == b"two\n"


def test_destination_rules(lamina: Lamina) -> None:
    """Docker 20.10's client: DEST must be an existing dir ('destination "C:DEST" must be a
    directory', exit 1) -- missing, a file, a dangling link, below a missing dir; a link is
    followed inside the container ("/wl" -> /w; "/w/lout" -> ../../../.. is the root);
    "dir/." is the dir; an empty stream is an empty archive."""
    tar = _tar({"name": "t", "data": b"t\n"})
    for dest in ("/nonexist", "/w/file", "/w/file/", "/wdang", "/w/nonexist/x"):
        lamina.refused(tar, dest, f'destination "cc:{dest}" must be a directory')
    for dest, lands in (
        ("/wl", "/w/t"),
        ("/w/lout", "/t"),
        ("/wout", "/w/t"),
        ("/w/sub/.", "/w/sub/t"),
    ):
        lamina.cp_in(tar, dest).check_returncode()
        assert lamina.listing(lands)["t"][-1] == b"t\n", dest
    lamina.cp_in(b"", "/w").check_returncode()
    # not a tar (Docker 20.10: "unexpected EOF"; zstd, which 20.10 does not inflate, is taken)
    lamina.refused(os.urandom(2000), "/w", "not a tar archive")
    # stdin closed (<&-): a usage error, not an AttributeError on a missing sys.stdin
    r = subprocess.run(
        [
            *LAMINA,
            "--root",
            str(lamina.root),
            "--storage-driver",
            lamina.driver,
            "cp",
            "-",
            "cc:/w",
        ],
        capture_output=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: os.close(0),  # the child starts with no fd 0
    )
    assert r.returncode == 2 and b"cp - reads a tar from stdin, which is closed" in r.stderr


def test_a_directory_and_a_non_directory_never_replace_each_other(lamina: Lamina) -> None:
    """Docker 20.10 (NoOverwriteDirNonDir): "cannot overwrite non-directory ... with
    directory" and the reverse; an existing symlink at an entry's name is replaced, never
    followed."""
    lamina.refused(_tar({"name": "file", "type": "d"}), "/w", "cannot overwrite non-directory")
    lamina.refused(_tar({"name": "sub", "data": b"x\n"}), "/w", "cannot overwrite directory")
    lamina.cp_in(_tar({"name": "letc", "data": b"replaced\n"}), "/w").check_returncode()
    assert lamina.listing("/w/letc")["letc"][-1] == b"replaced\n"
    assert lamina.listing("/etc/passwd")["passwd"][-1].startswith(b"root:")


# -- hostile tars ---------------------------------------------------------------------------


def test_names_that_climb_out_are_refused(lamina: Lamina) -> None:
    """Docker 20.10: '"../x" is outside of "/w"' (and ``a/../../x``); a hardlink to
    ``../../etc/passwd`` is an "invalid hardlink"; an absolute hardlink target is DEST's."""
    for name in ("../escape", "a/../../escape", "../../../../../../escape"):
        lamina.refused(_tar({"name": name}), "/w", "outside of the destination")
    lamina.refused(_tar({"name": "h", "type": "h", "link": "../../etc/passwd"}), "/w", "outside")
    lamina.refused(_tar({"name": "h", "type": "h", "link": "/etc/passwd"}), "/w", "not a file")
    lamina.cp_in(_tar({"name": "h", "type": "h", "link": "/file"}), "/w").check_returncode()
    assert lamina.listing("/w/h")["h"][-1] == b"file\n"  # /w/file, not the container's /file
    assert "escape" not in lamina.names("/")


def test_symlinks_in_the_tar_stay_in_the_container(lamina: Lamina, shm_tmp: Path) -> None:
    """Docker 20.10: ``a -> /etc`` then ``a/pwned`` writes the *container's* /etc/pwned (it
    extracts in a chroot); ``a -> ../../..`` below DEST is an "invalid symlink"; at DEST "/"
    it is kept and leads to the container's root; an absolute link to a host path leads
    nowhere on the host."""
    canary = shm_tmp / "canary"
    lamina.cp_in(_tar({"name": "a", "type": "l", "link": "/etc"}, {"name": "a/pwned"}), "/w")
    assert "etc/pwned" in lamina.names("/etc") and not Path("/etc/pwned").exists()
    lamina.refused(
        _tar({"name": "a2", "type": "l", "link": "../../../../.."}, {"name": "a2/up"}),
        "/w",
        "invalid symlink",
    )
    up = _tar({"name": "up", "type": "l", "link": "../../../../../../.."}, {"name": "up/pwned-up"})
    lamina.cp_in(up, "/").check_returncode()
    assert "pwned-up" in lamina.names("/")
    host = _tar(
        {"name": "hc", "type": "l", "link": str(canary)},
        {"name": "hc/owned"},
        {"name": "hcup", "type": "l", "link": f"../../../../../../../..{canary}"},
        {"name": "hcup/owned"},
    )
    r = lamina.cp_in(host, "/")
    assert r.returncode == 1, r.stderr  # the canary's path does not exist in the container
    # a hardlink through a planted link reaches only the container's files
    lamina.cp_in(
        _tar(
            {"name": "e", "type": "l", "link": "/etc"},
            {"name": "pw", "type": "h", "link": "e/passwd"},
        ),
        "/w",
    ).check_returncode()
    assert lamina.listing("/w/pw")["pw"][-1] == lamina.listing("/etc/passwd")["passwd"][-1]


def test_symlinks_already_in_the_container_stay_in_it(lamina: Lamina) -> None:
    """Docker 20.10: ``lout/pwned`` with /w/lout -> ../../../.. writes the container's
    /pwned; ``letc/pwned`` writes its /etc/pwned."""
    lamina.cp_in(
        _tar({"name": "lout/pwned-el"}, {"name": "letc/pwned-il"}), "/w"
    ).check_returncode()
    assert "pwned-el" in lamina.names("/") and "etc/pwned-il" in lamina.names("/etc")
    assert not Path("/pwned-el").exists() and not Path("/etc/pwned-il").exists()


def test_streams_are_bounded(lamina: Lamina) -> None:
    """lamina's extraction limits hold (LAMINA_MAX_LAYER_BYTES); what follows the end of the
    archive is never read, so an endless tail costs nothing."""
    head = tarfile.TarInfo("big")
    head.size = 1 << 40
    argv = [*LAMINA, "--root", str(lamina.root), "--storage-driver", lamina.driver, "cp", "-"]
    r = subprocess.run(
        [*argv, "cc:/w"],
        input=head.tobuf() + bytes(4 << 20),
        capture_output=True,
        timeout=60,
        check=False,
        env=os.environ | {"LAMINA_MAX_LAYER_BYTES": str(1 << 20)},
    )
    assert r.returncode == 1 and b"max_uncompressed_bytes" in r.stderr, r.stderr
    proc = subprocess.Popen(
        [*argv, "cc:/w"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write(_tar({"name": "tail", "data": b"t\n"}))
    try:
        while proc.poll() is None:
            proc.stdin.write(bytes(1 << 20))
    except BrokenPipeError:
        pass
    assert proc.wait(timeout=60) == 0
    assert lamina.listing("/w/tail")["tail"][-1] == b"t\n"


def test_volumes_binds_and_read_only_mounts(lamina: Lamina, shm_tmp: Path) -> None:
    """As ``cp`` into: an entry below a volume lands in the volume (a running container sees
    it); a read-only volume or bind refuses ("mounted volume is marked read-only", Docker's
    words for a DEST on one; 20.10 says "read-only file system" for one met while extracting),
    leaving the volume and the bind's host dir unchanged."""
    host = shm_tmp / "bind"
    host.mkdir()
    (host / "keep").write_text("host\n")
    lamina.run(
        "run", "-d", "--name", "vv", "-v", "data:/data", "-v", "rov:/ro:ro",
        "-v", f"{host}:/hro:ro", "busybox", "sleep", "60",
    )  # fmt: skip
    try:
        r = lamina.run("cp", "-", "vv:/", input=_tar({"name": "data/x", "data": b"v\n"}))
        assert r.returncode == 0
        assert lamina.run("exec", "vv", "cat", "/data/x").stdout == b"v\n"
        for dest, name in (("/ro", "x"), ("/", "ro/x"), ("/hro", "keep"), ("/", "hro/new")):
            r = lamina.run("cp", "-", f"vv:{dest}", input=_tar({"name": name}), check=False)
            assert r.returncode == 1 and b"marked read-only" in r.stderr, (dest, r.stderr)
        assert os.listdir(host) == ["keep"] and (host / "keep").read_text() == "host\n"
        assert lamina.run("exec", "vv", "ls", "/ro").stdout == b""
    finally:
        lamina.run("rm", "-f", "vv")
