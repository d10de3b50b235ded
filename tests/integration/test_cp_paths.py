"""``cp``'s path rules, both ways: which path lands where for a file, a dir, ``dir/`` and
``dir/.`` as SRC, and a missing, a dir, a file, ``x/`` and ``x/.`` as DEST.

Expected values come from outside lamina: the table in Docker's ``cp`` reference
(docs.docker.com/reference/cli/docker/container/cp) -- SRC a file: saved as a missing DEST,
an error for a missing DEST ending in "/", into a dir DEST, over a file DEST; SRC a dir: made
as a missing DEST, into a dir DEST as ``DEST/<name>``, an error for a file DEST; SRC ending in
"/.": what it holds goes into DEST (made if missing). The rows the table leaves open (a DEST
ending in "/." that is missing, a SRC ``dir/``, a SRC ``file/``, DEST's parent missing, a
trailing "/" on a symlink) are what ``docker cp`` 20.10.24 did with the same trees. The same
rows run host -> container and container -> host, on the same tree on both sides.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.needs_root]

LAMINA = [sys.executable, "-m", "lamina"]

# The tree on both sides: None is a dir, a str a file's text.
Tree = dict[str, str | None]
TREE: Tree = {
    "f": "f\n",
    "src": None,
    "src/a": "a\n",
    "src/sub": None,
    "src/sub/b": "b\n",
    "exist": None,
    "exist/keep": "keep\n",
    "efile": "efile\n",
}


SRC_HOLDS: Tree = {"a": "a\n", "sub": None, "sub/b": "b\n"}


def _contents_under(prefix: str) -> Tree:
    """What ``src`` holds, at ``prefix``."""
    return {f"{prefix}/{rel}": text for rel, text in SRC_HOLDS.items()}


def _src_under(prefix: str) -> Tree:
    """``src`` itself, as ``prefix``."""
    return {prefix: None} | _contents_under(prefix)


@dataclass(frozen=True)
class Row:
    src: str
    dest: str
    # What DEST's side holds afterwards on top of TREE, or the words of the refusal (nothing
    # changed then).
    adds: Tree | None = None
    refused: str | None = None


ROWS = {
    # SRC is a file
    "file-to-missing": Row("f", "new", adds={"new": "f\n"}),
    "file-to-missing-slash": Row("f", "new/", refused="does not exist"),
    "file-to-missing-dot": Row("f", "new/.", refused="does not exist"),
    "file-into-dir": Row("f", "exist", adds={"exist/f": "f\n"}),
    "file-into-dir-slash": Row("f", "exist/", adds={"exist/f": "f\n"}),
    "file-into-dir-dot": Row("f", "exist/.", adds={"exist/f": "f\n"}),
    "file-over-file": Row("f", "efile", adds={"efile": "f\n"}),
    "file-to-file-slash": Row("f", "efile/", refused="not a directory"),
    "file-parent-missing": Row("f", "nodir/new", refused="does not exist"),
    "file-slash-src": Row("f/", "new", refused="not a directory"),
    # SRC is a dir, not ending in /.
    "dir-to-missing": Row("src", "new", adds=_src_under("new")),
    "dir-to-missing-slash": Row("src", "new/", adds=_src_under("new")),
    "dir-to-missing-dot": Row("src", "new/.", refused="does not exist"),
    "dir-into-dir": Row("src", "exist", adds=_src_under("exist/src")),
    "dir-into-dir-slash": Row("src", "exist/", adds=_src_under("exist/src")),
    # a /. on DEST does not make SRC's contents the thing copied
    "dir-into-dir-dot": Row("src", "exist/.", adds=_src_under("exist/src")),
    "dir-over-file": Row("src", "efile", refused="cannot copy a directory"),
    "dir-parent-missing": Row("src", "nodir/new", refused="does not exist"),
    "dir-slash-to-missing": Row("src/", "new", adds=_src_under("new")),
    "dir-slash-into-dir": Row("src/", "exist", adds=_src_under("exist/src")),
    # SRC ends in /.
    "contents-to-missing": Row("src/.", "new", adds=_src_under("new")),
    "contents-to-missing-slash": Row("src/.", "new/", adds=_src_under("new")),
    "contents-to-missing-dot": Row("src/.", "new/.", refused="does not exist"),
    "contents-into-dir": Row("src/.", "exist", adds=_contents_under("exist")),
    "contents-into-dir-slash": Row("src/.", "exist/", adds=_contents_under("exist")),
    "contents-into-dir-dot": Row("src/.", "exist/.", adds=_contents_under("exist")),
    "contents-over-file": Row("src/.", "efile", refused="cannot copy a directory"),
    "missing-src": Row("nothing", "new", refused="no such file or directory"),
}


class Lamina:
    def __init__(self, root: Path) -> None:
        self.root = root

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        r = subprocess.run(
            [*LAMINA, "--root", str(self.root), *args],
            capture_output=True,
            timeout=60,
            check=False,
            cwd=self.root.parent,  # a stray relative path lands in the test's tmp dir
            stdin=subprocess.DEVNULL,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"lamina {' '.join(args)} -> {r.returncode}\n{r.stderr!r}")
        return r

    def tree(self, source: str) -> Tree:
        """What ``cp SOURCE -`` holds, named below SOURCE's last component."""
        out: Tree = {}
        with tarfile.open(fileobj=io.BytesIO(self.run("cp", source, "-").stdout)) as tf:
            for m in tf.getmembers():
                _, _, rel = m.name.rstrip("/").partition("/")
                if not rel:
                    continue
                if m.isdir():
                    out[rel] = None
                else:
                    f = tf.extractfile(m)
                    assert f is not None, m.name
                    out[rel] = f.read().decode()
        return out


def _write(d: Path, tree: Tree) -> None:
    for rel, text in tree.items():
        if text is None:
            (d / rel).mkdir(parents=True)
        else:
            (d / rel).write_text(text)


def _read(d: Path) -> Tree:
    """The tree under ``d``; a symlink is "-> TARGET" (never followed)."""
    out: Tree = {}
    for dirpath, dirs, files in os.walk(d):
        for name in dirs + files:
            p = Path(dirpath, name)
            rel = str(p.relative_to(d))
            if p.is_symlink():
                out[rel] = f"-> {os.readlink(p)}"
            else:
                out[rel] = None if p.is_dir() else p.read_text()
    return out


def _mounts_under(d: Path) -> list[str]:
    prefix = str(d) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]


@pytest.fixture(scope="module")
def lamina(busybox_rootfs_tar: Path) -> Iterator[Lamina]:
    """A store holding ``cpimg``: busybox plus TREE at /w (written with tarfile, not cp)."""
    tmp = Path(tempfile.mkdtemp(prefix="lamina-cp-paths-", dir="/dev/shm"))
    try:
        image = tmp / "cpimg.tar"
        with tarfile.open(busybox_rootfs_tar) as base, tarfile.open(image, "w") as out:
            for m in base.getmembers():
                out.addfile(m, base.extractfile(m) if m.isfile() else None)
            w = tarfile.TarInfo("./w")
            w.type, w.mode = tarfile.DIRTYPE, 0o755
            out.addfile(w)
            for rel, text in TREE.items():
                ti = tarfile.TarInfo(f"./w/{rel}")
                if text is None:
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                    out.addfile(ti)
                else:
                    ti.mode, ti.size = 0o644, len(text)
                    out.addfile(ti, io.BytesIO(text.encode()))
        lam = Lamina(tmp / "root")
        lam.run("import", str(image), "cpimg")
        yield lam
        assert _mounts_under(tmp) == []
    finally:
        subprocess.run(["umount", "-R", "-l", str(tmp)], capture_output=True, check=False)
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


@pytest.fixture
def host(shm_tmp: Path) -> Path:
    d = shm_tmp / "host"
    d.mkdir()
    _write(d, TREE)
    return d


@pytest.fixture
def container(lamina: Lamina, request: pytest.FixtureRequest) -> Iterator[str]:
    name = re.sub(r"[^a-zA-Z0-9_.-]+", "-", request.node.name.removeprefix("test_"))
    lamina.run("create", "--name", name, "cpimg", "sh")
    yield name
    lamina.run("rm", "-f", name)


def _check(r: subprocess.CompletedProcess[bytes], row: Row, after: Tree) -> None:
    if row.refused is not None:
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert row.refused in r.stderr.decode(), r.stderr
        assert after == TREE
    else:
        assert r.returncode == 0, r.stderr
        assert row.adds is not None
        assert after == TREE | row.adds


@pytest.mark.parametrize("row", ROWS.values(), ids=list(ROWS))
def test_host_to_container(lamina: Lamina, host: Path, container: str, row: Row) -> None:
    r = lamina.run("cp", f"{host}/{row.src}", f"{container}:/w/{row.dest}", check=False)
    _check(r, row, lamina.tree(f"{container}:/w"))


@pytest.mark.parametrize("row", ROWS.values(), ids=list(ROWS))
def test_container_to_host(lamina: Lamina, host: Path, container: str, row: Row) -> None:
    r = lamina.run("cp", f"{container}:/w/{row.src}", f"{host}/{row.dest}", check=False)
    _check(r, row, _read(host))


def test_relative_host_paths_keep_their_trailing_dot(
    lamina: Lamina, host: Path, container: str
) -> None:
    """The docker client makes a host path absolute and keeps "/." and "/" (and "." alone is
    "./."); ".." in it is cleaned by the string, as ``filepath.Abs`` cleans it."""
    base = dict(TREE)

    def cp(*args: str) -> None:
        r = subprocess.run(
            [*LAMINA, "--root", str(lamina.root), "cp", *args],
            capture_output=True,
            cwd=host / "src",
            check=False,
        )
        assert r.returncode == 0, r.stderr

    cp(".", f"{container}:/w/exist")
    base |= _contents_under("exist")
    assert lamina.tree(f"{container}:/w") == base
    cp("sub/..", f"{container}:/w/exist")  # is "src", not "src/sub/.."
    base |= _src_under("exist/src")
    assert lamina.tree(f"{container}:/w") == base
    cp(f"{container}:/w/src/.", "./sub/")
    assert _read(host / "src" / "sub") == {"b": "b\n"} | SRC_HOLDS


def test_dotdot_in_a_container_path_is_cleaned_from_its_root(
    lamina: Lamina, host: Path, container: str, shm_tmp: Path
) -> None:
    """As the daemon's ``filepath.Join("/", path)``: "w/src/sub/.." is /w/src, and ".." past
    the container's root stays at its root -- on the host nothing outside is touched."""
    out = shm_tmp / "dotdot"
    out.mkdir()
    lamina.run("cp", f"{container}:/w/src/sub/..", str(out))
    assert _read(out) == _src_under("src")
    lamina.run("cp", f"{container}:../../../../w/src/sub/../.", str(out / "c"))
    assert _read(out / "c") == SRC_HOLDS
    marker = host / "src" / "a"
    lamina.run("cp", str(marker), f"{container}:/../../../../tmp/")
    assert lamina.tree(f"{container}:/tmp") == {"a": marker.read_text()}
    assert not Path("/tmp/a").exists() or Path("/tmp/a").read_text() != marker.read_text()


def _entry(lamina: Lamina, source: str) -> str:
    """What ``cp SOURCE -`` holds for a single file: its text, or "-> TARGET" for a link."""
    with tarfile.open(fileobj=io.BytesIO(lamina.run("cp", source, "-").stdout)) as tf:
        (m,) = tf.getmembers()
        if m.issym():
            return f"-> {m.linkname}"
        f = tf.extractfile(m)
        assert f is not None, m.name
        return f.read().decode()


def test_a_destination_symlink_is_written_through(lamina: Lamina, shm_tmp: Path) -> None:
    """DEST naming a symlink (no trailing "/") is its target, as the docker client resolves
    it (``ContainerStatPath`` of the target; ``CopyInfoDestinationPath`` on the host): the
    link stays, the target gets the content, a dangling link's target is created -- and in
    the container a target spelled past the root still lands inside the rootfs."""
    lamina.run(
        "run", "--name", "dlinks", "cpimg", "sh", "-c",
        "echo old > /w/target; ln -s target /w/flink; ln -s /w/made /w/dangling;"
        " ln -s ../../../../lamina-cp-through /w/outlink",
    )  # fmt: skip
    new = shm_tmp / "new"
    new.write_text("new\n")
    for dest in ("flink", "dangling", "outlink"):
        lamina.run("cp", str(new), f"dlinks:/w/{dest}")
    assert _entry(lamina, "dlinks:/w/flink") == "-> target"
    assert _entry(lamina, "dlinks:/w/target") == "new\n"
    assert _entry(lamina, "dlinks:/w/made") == "new\n"
    assert _entry(lamina, "dlinks:/lamina-cp-through") == "new\n"
    assert not Path("/lamina-cp-through").exists()
    # and on the host, through a chain of two links
    out = shm_tmp / "out"
    out.mkdir()
    (out / "t").write_text("old\n")
    (out / "l1").symlink_to("t")
    (out / "l2").symlink_to(out / "l1")
    lamina.run("cp", "dlinks:/w/target", str(out / "l2"))
    assert _read(out) == {"t": "new\n", "l1": "-> t", "l2": f"-> {out / 'l1'}"}
    lamina.run("rm", "-f", "dlinks")


def test_a_tar_on_stdout_holds_names_layers_reserve(lamina: Lamina, shm_tmp: Path) -> None:
    """``.wh.*`` names are whiteouts only in a layer; ``cp C:SRC -`` is a plain archive of
    files, so a file of that name is written as it is (as Docker writes it), and so is a
    copy to a host dir."""
    lamina.run("run", "--name", "whnames", "cpimg", "sh", "-c", "echo x > /w/.wh.note")
    assert _entry(lamina, "whnames:/w/.wh.note") == "x\n"
    assert lamina.tree("whnames:/w")[".wh.note"] == "x\n"
    out = shm_tmp / "wh"
    out.mkdir()
    lamina.run("cp", "whnames:/w/.wh.note", str(out))
    assert _read(out) == {".wh.note": "x\n"}
    lamina.run("rm", "-f", "whnames")


def test_what_the_system_refuses_is_an_error_not_a_crash(
    lamina: Lamina, container: str, host: Path
) -> None:
    long = "x" * 300  # past NAME_MAX: ENAMETOOLONG from the lookup, either side
    for args in (
        [f"{container}:/w/{long}", str(host)],
        [f"{host}/src/a", f"{container}:/w/{long}"],
        [f"{container}:/w/src/a", f"{host}/{long}"],
        [f"{container}:/{long}", "-"],
    ):
        r = lamina.run("cp", *args, check=False)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.decode().endswith(": File name too long\n"), r.stderr


def test_trailing_slash_on_a_symlink_follows_it_inside_the_container(
    lamina: Lamina, shm_tmp: Path
) -> None:
    """``link`` is the link; ``link/`` and ``link/.`` are the dir it points to -- resolved in
    the container's rootfs, never on the host (CVE-2018-15664 class)."""
    lamina.run(
        "run", "--name", "links", "cpimg", "sh", "-c",
        "ln -s src /w/link; ln -s ../../../../../.. /w/up; mkdir /w/up/landing",
    )  # fmt: skip
    out = shm_tmp / "out"
    out.mkdir()
    lamina.run("cp", "links:/w/link", str(out))
    assert _read(out) == {"link": "-> src"}
    lamina.run("cp", "links:/w/link/", str(out / "d"))
    assert _read(out / "d") == SRC_HOLDS
    lamina.run("cp", "links:/w/link/.", str(out))
    assert _read(out) == {"link": "-> src"} | _src_under("d") | SRC_HOLDS
    into = shm_tmp / "into"
    into.mkdir()
    lamina.run("cp", "links:/w/link/", str(into))  # the dir, by the link's name
    assert _read(into) == _src_under("link")
    assert lamina.tree("links:/w/link/") == SRC_HOLDS  # entries link/, link/a, ...
    # into /w/up/ (the container's /), its contents into /w/up/. -- both inside the rootfs
    payload = shm_tmp / "payload"
    (payload / "inner").mkdir(parents=True)
    (payload / "inner" / "lamina-cp-paths").write_text("p\n")
    lamina.run("cp", str(payload), "links:/w/up/")
    lamina.run("cp", f"{payload}/.", "links:/w/up/landing/.")
    assert not Path("/payload").exists() and not Path("/inner").exists()
    assert not Path("/landing").exists()
    assert lamina.tree("links:/payload") == {"inner": None, "inner/lamina-cp-paths": "p\n"}
    assert lamina.tree("links:/landing") == {"inner": None, "inner/lamina-cp-paths": "p\n"}
    lamina.run("rm", "-f", "links")
