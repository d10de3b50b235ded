"""``lamina build`` end to end on a tmpfs root with the busybox rootfs (the real CLI, real runc,
overlay): every instruction, FROM scratch, the cache (hits, misses on edit/rename/chmod and on
a changed ENV, not on touch), reproducible ids in two fresh roots, secrets that never land
anywhere, cache mounts, lamina-only syntax (heredocs, --chmod, ADD archives), and bad input
that fails clearly and leaves no image or half layer behind."""

from __future__ import annotations

import io
import json
import lzma
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest
from interop import BUILD_DATA, LAMINA

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]


class Root:
    def __init__(self, path: Path, busybox: Path) -> None:
        self.path = path
        self("import", str(busybox), "busybox")

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [*LAMINA, "--root", str(self.path), *args], capture_output=True, text=True, check=False
        )
        if check and r.returncode != 0:
            raise AssertionError(f"lamina {args} exited {r.returncode}: {r.stderr[-3000:]}")
        return r

    def build(self, ctx: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self("build", *args, str(ctx), check=check)

    def image_id(self, ref: str) -> str:
        return self("inspect", "-f", "{{.Id}}", ref).stdout.strip()

    def names(self) -> list[str]:
        out = self("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        return [n for n in out if not n.startswith("<none>")]

    def assert_no_leftovers(self) -> None:
        """No staging rows, and no driver dir that no layer record owns."""
        with sqlite3.connect(self.path / "lamina.db") as db:
            assert db.execute("SELECT count(*) FROM staging").fetchone()[0] == 0
            caches = {r[0] for r in db.execute("SELECT cache_id FROM layers")}
        home = self.path / "overlay"
        ids = re.compile(r"[0-9a-f]{64}(-init)?")
        dirs = {d for d in os.listdir(home) if ids.fullmatch(d)} if home.is_dir() else set()
        assert dirs <= caches, f"work layers left behind: {dirs - caches}"


@pytest.fixture
def root(shm_tmp: Path, busybox_rootfs_tar: Path) -> Root:
    return Root(shm_tmp / "root", busybox_rootfs_tar)


def _ctx(tmp: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = Path(tmp) / f"ctx-{os.urandom(4).hex()}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(text)
    return ctx


def test_every_instruction_builds_and_runs(root: Root, shm_tmp: Path) -> None:
    ctx = shutil.copytree(BUILD_DATA / "every", shm_tmp / "every")
    r = root.build(ctx, "-t", "every")
    # docker 20.10 counts the ARG before FROM as a step (printed, nothing committed).
    assert "Step 1/31 : ARG BASE=busybox\nStep 2/31 : FROM ${BASE} AS base\n" in r.stderr
    assert "Successfully tagged every:latest\n" in r.stderr  # docker's familiar name
    assert r.stdout.strip() == root.image_id("every")
    assert root("run", "--rm", "every").stdout == "hello /app\n"
    cfg = root("inspect", "-f", "{{json .Config}}", "every").stdout
    for piece in ('"User":"1:1"', '"WorkingDir":"/app/sub"', '"StopSignal":"SIGINT"',
                  '"org.example.onbuild":"triggered"', '"8080/tcp":{}', '"/data":{}'):  # fmt: skip
        assert piece in cfg
    # .dockerignore kept secret.log out of the context; ADD of a plain file copies it.
    assert "secret.log" not in root("run", "--rm", "--entrypoint", "ls", "every", "/app").stdout


def test_from_scratch_runs(root: Root, shm_tmp: Path) -> None:
    ctx = shutil.copytree(BUILD_DATA / "scratch", shm_tmp / "scratch")
    root.build(ctx, "-t", "scr")
    assert root("run", "--rm", "scr").stdout == "hello from scratch\n"
    history = root("history", "--no-trunc", "--format", "{{.CreatedBy}}", "scr").stdout
    # Nothing of the tools stage (busybox's import) is in the result: only the three steps.
    assert [line.split()[-1] for line in history.splitlines()] == [
        '"/hello.txt"]',
        "/",
        "/bin/busybox",
    ]


def test_second_build_is_all_cache_hits_with_the_same_id(root: Root, shm_tmp: Path) -> None:
    ctx = shutil.copytree(BUILD_DATA / "every", shm_tmp / "every")
    first = root.build(ctx, "-t", "every").stdout.strip()
    again = root.build(ctx)
    assert again.stdout.strip() == first
    steps = again.stderr.count("Step ")
    froms = again.stderr.count(" : FROM ")
    global_args = 1  # ARG BASE, before the first FROM: a step that commits nothing
    triggers = sum(map(int, re.findall(r"# Executing (\d+) build trigger", again.stderr)))
    assert triggers == 1
    assert again.stderr.count("---> Using cache") == steps - froms - global_args + triggers
    assert "Running in" not in again.stderr


def test_cache_misses_on_edit_rename_chmod_not_touch(root: Root, shm_tmp: Path) -> None:
    ctx = _ctx(shm_tmp, "FROM busybox\nCOPY f /f\nRUN cat /f\n", {"f": "one\n"})
    first = root.build(ctx).stdout.strip()
    os.utime(ctx / "f", (1, 1))
    touched = root.build(ctx)
    assert touched.stderr.count("Using cache") == 2 and touched.stdout.strip() == first
    (ctx / "f").write_text("two\n")
    assert "Using cache" not in root.build(ctx).stderr
    os.chmod(ctx / "f", 0o600)
    assert "Using cache" not in root.build(ctx).stderr
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY g /f\nRUN cat /f\n")
    os.rename(ctx / "f", ctx / "g")
    assert "Using cache" not in root.build(ctx).stderr


def test_env_change_before_run_misses(root: Root, shm_tmp: Path) -> None:
    ctx = _ctx(shm_tmp, "FROM busybox\nENV A=1\nRUN echo $A > /a\n")
    root.build(ctx, "-t", "a1")
    (ctx / "Dockerfile").write_text("FROM busybox\nENV A=2\nRUN echo $A > /a\n")
    r = root.build(ctx, "-t", "a2")
    assert "Using cache" not in r.stderr
    assert root("run", "--rm", "a2", "cat", "/a").stdout == "2\n"


def test_no_cache_builds_with_source_date_epoch_match_in_fresh_roots(
    shm_tmp: Path, busybox_rootfs_tar: Path
) -> None:
    ctx = shutil.copytree(BUILD_DATA / "every", shm_tmp / "every")
    ids, digests = [], []
    # The same base in both roots (an import stamps its own "created"): saved from the first.
    base = shm_tmp / "base.tar"
    for n in (1, 2):
        r = Root(shm_tmp / f"root{n}", busybox_rootfs_tar)
        if n == 1:
            r("save", "-o", str(base), "busybox")
        else:
            r("rmi", "busybox")
            r("load", "-i", str(base))
        out = r.build(ctx, "--no-cache", "--source-date-epoch", "1700000000", "-t", "rep")
        ids.append(out.stdout.strip())
        digests.append(r("inspect", "-f", "{{.Created}}", "rep").stdout.strip())
    assert ids[0] == ids[1]
    assert digests[0] == digests[1] == "2023-11-14T22:13:20Z"


def test_secret_never_lands_in_layers_config_or_history(root: Root, shm_tmp: Path) -> None:
    value = "s3cr3t-" + os.urandom(8).hex()
    secret = shm_tmp / "token"
    secret.write_text(value)
    ctx = _ctx(
        shm_tmp,
        "FROM busybox\n"
        "RUN --mount=type=secret,id=tok test \"$(cat /run/secrets/tok)\" != '' && echo ok > /ok\n"
        "RUN --mount=type=secret,id=tok,target=/etc/tok cp /etc/tok /dev/null\n",
    )
    root.build(ctx, "--secret", f"id=tok,src={secret}", "-t", "sec")
    for blob in (root.path / "blobs" / "sha256").iterdir():
        assert value.encode() not in blob.read_bytes(), f"secret found in blob {blob.name}"
    assert value not in root("inspect", "sec").stdout
    assert value not in root("history", "--no-trunc", "sec").stdout
    listing = root("run", "--rm", "sec", "sh", "-c", "ls -a /etc; ls -a /run || true").stdout
    assert "secrets" not in listing and "tok" not in listing  # mount stubs removed too


def test_cache_mount_persists_between_builds_and_stays_out_of_layers(
    root: Root, shm_tmp: Path
) -> None:
    df = "FROM busybox\nARG N\nRUN --mount=type=cache,target=/var/cache/x echo $N >> /var/cache/x/log && cat /var/cache/x/log\n"  # noqa: E501
    ctx = _ctx(shm_tmp, df)
    root.build(ctx, "--build-arg", "N=1")
    r = root.build(ctx, "--build-arg", "N=2", "-t", "cm")
    assert "1\n2\n" in r.stderr
    out = root("run", "--rm", "cm", "sh", "-c", "ls /var/cache/x 2>/dev/null; echo end").stdout
    assert out == "end\n"


def test_lamina_only_syntax(root: Root, shm_tmp: Path) -> None:
    ctx = _ctx(
        shm_tmp,
        "# syntax=docker/dockerfile:1\n"
        "FROM busybox AS first\n"
        "ARG WHO\n"
        "COPY --chmod=0700 run.sh /run.sh\n"
        "COPY <<EOF /etc/motd\nhi $WHO\nEOF\n"
        "RUN <<EOF\necho heredoc > /heredoc\nEOF\n"
        "ADD a.tar.gz /gz/\n"
        "ADD b.tar.xz /xz/\n"
        "FROM first AS second\n"
        "RUN echo second > /second\n",
        {"run.sh": "#!/bin/sh\necho run\n"},
    )
    for name, opener in (("a.tar.gz", "w:gz"), ("b.tar.xz", None)):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("inside.txt")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"in\n"))
        data = buf.getvalue()
        if opener == "w:gz":
            import gzip

            data = gzip.compress(data)
        else:
            data = lzma.compress(data)
        (ctx / name).write_bytes(data)
    r = root.build(ctx, "--target", "first", "--build-arg", "WHO=you", "--build-arg", "NOPE=1",
                   "--build-arg", "HTTP_PROXY=http://proxy:3128", "-t", "first")  # fmt: skip
    assert "[Warning] One or more build-args [NOPE] were not consumed\n" in r.stderr
    assert "second" not in r.stderr.split("Successfully")[0].split("Step")[-1]
    script = "stat -c %a /run.sh; cat /etc/motd /heredoc /gz/inside.txt /xz/inside.txt"
    out = root("run", "--rm", "first", "sh", "-c", script).stdout
    assert out == "700\nhi you\nheredoc\nin\nin\n"
    history = root("history", "--no-trunc", "first").stdout
    assert "HTTP_PROXY" not in history and "proxy:3128" not in history


def test_context_symlink_out_is_not_followed_out(root: Root, shm_tmp: Path) -> None:
    ctx = _ctx(shm_tmp, "FROM busybox\nCOPY dir /d/\n")
    (ctx / "dir").mkdir()
    os.symlink("../../../../etc/passwd", ctx / "dir" / "up")  # below a source: stays a link
    root.build(ctx, "-t", "links")
    assert root("run", "--rm", "links", "readlink", "/d/up").stdout == "../../../../etc/passwd\n"
    # A named source link is followed inside the context: /etc/shadow is not in it.
    os.symlink("/etc/shadow", ctx / "link")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY link /l\n")
    r = root.build(ctx, check=False)
    assert r.returncode == 1 and "link: no such file or directory in the build context" in r.stderr


COPY_CASES = """\
FROM busybox AS st
RUN touch /s && chmod 4755 /s && mkdir /gd && echo h > /gd/h1 && ln /gd/h1 /gd/h2
FROM busybox
COPY lnk /l1
COPY lnk /ldir/
COPY dl /dlcopy
COPY w/* /star/
COPY --from=busybox /bin/sh /mysh
COPY abs /abs1
COPY suid sgid /modes/
COPY g /g
COPY --chown=1:1 suid /modes2/
COPY d /dd
COPY d/a d/hard /twosrc/
ADD tl /addtl/
COPY --from=st /s /fromst/
COPY --from=st --chown=3:3 /s /fromst3
COPY --from=st /gd /fromgd
"""
# `stat -c '%n %F %a %u:%g %h'` of those paths in the image docker 20.10's classic builder made
# from the same context (DOCKER_BUILDKIT=0).
DOCKER_COPY_CASES = """\
l1 regular file 644 0:0 1
ldir/lnk regular file 644 0:0 1
dlcopy/a regular file 644 0:0 2
dlcopy/hard regular file 644 0:0 2
dlcopy/in regular file 644 0:0 1
dlcopy/inner symbolic link 777 0:0 1
star/a regular file 644 0:0 2
star/f1 regular file 644 0:0 1
star/hard regular file 644 0:0 2
star/in regular file 644 0:0 1
star/inner symbolic link 777 0:0 1
star/l2 regular file 644 0:0 1
mysh regular file 755 0:0 1
abs1 regular file 644 0:0 1
modes/sgid regular file 755 0:0 1
modes/suid regular file 755 0:0 1
g/r regular file 755 0:0 1
g/sub directory 2775 0:0 2
g/sub/q regular file 2644 0:0 1
modes2/suid regular file 755 1:1 1
dd/a regular file 644 0:0 2
dd/hard regular file 644 0:0 2
dd/in regular file 644 0:0 1
dd/inner symbolic link 777 0:0 1
twosrc/a regular file 644 0:0 1
twosrc/hard regular file 644 0:0 1
addtl/tf regular file 644 0:0 1
fromst/s regular empty file 4755 0:0 1
fromst3 regular empty file 755 3:3 1
fromgd/h1 regular file 644 0:0 2
fromgd/h2 regular file 644 0:0 2
"""


def _copy_cases_context(shm_tmp: Path) -> Path:
    ctx = _ctx(shm_tmp, COPY_CASES, {"x": "xcontent", "d/in": "in", "d/a": "aaa", "w/f1": "f1"})
    os.symlink("x", ctx / "lnk")
    os.symlink("d", ctx / "dl")
    os.symlink("/x", ctx / "abs")
    os.symlink("in", ctx / "d" / "inner")
    os.link(ctx / "d" / "a", ctx / "d" / "hard")
    os.symlink("../x", ctx / "w" / "l2")
    os.symlink("../d", ctx / "w" / "ldir")
    for name, mode in (("suid", 0o4755), ("sgid", 0o2755), ("g/r", 0o2755), ("g/sub/q", 0o2644)):
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(name)
        os.chmod(ctx / name, mode)
    os.chmod(ctx / "g" / "sub", 0o2775)
    with tarfile.open(ctx / "t.tar", "w") as tar:
        info = tarfile.TarInfo("tf")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"t"))
    os.symlink("t.tar", ctx / "tl")
    return ctx


def test_copy_follows_source_links_clears_setuid_keeps_hardlinks_as_docker(
    root: Root, shm_tmp: Path
) -> None:
    ctx = _copy_cases_context(shm_tmp)
    root.build(ctx, "-t", "cases")
    paths = " ".join(line.split()[0] for line in DOCKER_COPY_CASES.splitlines())
    script = f"cd / && stat -c '%n %F %a %u:%g %h' {paths} && cat l1 abs1 && cmp mysh bin/busybox"
    out = root("run", "--rm", "cases", "sh", "-c", script).stdout
    assert out == DOCKER_COPY_CASES + "xcontentxcontent"
    inodes = "cd / && stat -c %i dd/a dd/hard star/a star/hard fromgd/h1 fromgd/h2"
    ino = root("run", "--rm", "cases", "sh", "-c", inodes).stdout.split()
    assert ino[0] == ino[1] and ino[2] == ino[3] and ino[4] == ino[5]
    # The layer of `COPY d /dd` stores the content once: the second name is a tar hardlink.
    archive = shm_tmp / "cases.tar"
    root("save", "-o", str(archive), "cases")
    kinds = {}
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                names = {m.name.removeprefix("./"): m for m in inner}
            if "dd/a" in names:
                kinds = {n: (names[n].type, names[n].linkname) for n in ("dd/a", "dd/hard")}
    assert sorted(kinds.values()) == [(tarfile.REGTYPE, ""), (tarfile.LNKTYPE, "dd/a")]
    # The cache key follows the link: editing its target misses.
    again = root.build(ctx)
    assert again.stdout.strip() == root.image_id("cases")
    (ctx / "x").write_text("edited")
    edited = root.build(ctx, "-t", "cases")
    assert "Using cache" in edited.stderr.split("COPY lnk /l1")[0]  # the stage before it hits
    assert "Using cache" not in edited.stderr.split("COPY lnk /l1")[1]
    assert root("run", "--rm", "cases", "cat", "/l1", "/ldir/lnk").stdout == "editededited"


def test_copy_of_a_dangling_or_looping_source_link_fails(root: Root, shm_tmp: Path) -> None:
    ctx = _ctx(shm_tmp, "FROM busybox\nCOPY dang /x\n")
    os.symlink("nothere", ctx / "dang")
    os.symlink("loop2", ctx / "loop1")
    os.symlink("loop1", ctx / "loop2")
    r = root.build(ctx, check=False)
    assert r.returncode == 1 and "dang: no such file or directory in the build context" in r.stderr
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY loop1 /x\n")
    r = root.build(ctx, check=False)
    assert r.returncode == 1 and "loop1: too many levels of symbolic links" in r.stderr
    (ctx / "Dockerfile").write_text("FROM busybox AS s\nRUN ln -s /l2 /l1 && ln -s /l1 /l2\n"
                                    "FROM busybox\nCOPY --from=s /l1 /x\n")  # fmt: skip
    r = root.build(ctx, check=False)
    assert r.returncode == 1 and "l1: too many levels of symbolic links" in r.stderr


def test_copy_from_an_image_with_escaping_links_stays_inside(root: Root, shm_tmp: Path) -> None:
    ctx = _ctx(
        shm_tmp,
        "FROM busybox AS evil\n"
        "RUN echo inside > /etc/marker && ln -s ../../../../../../etc /esc\n"
        "FROM busybox\n"
        "COPY --from=evil /esc/marker /marker\n"
        "COPY --from=evil /esc/passwd /passwd\n",
    )
    root.build(ctx, "-t", "conf")
    assert root("run", "--rm", "conf", "cat", "/marker").stdout == "inside\n"
    image_passwd = root("run", "--rm", "busybox", "cat", "/etc/passwd").stdout
    assert root("run", "--rm", "conf", "cat", "/passwd").stdout == image_passwd


BAD = {
    "copy-out-of-context": ("FROM busybox\nCOPY ../x /x\n", "outside the build context"),
    "unknown-instruction": ("FROM busybox\nFROBNICATE x\n", "unknown instruction"),
    "unterminated-heredoc": ("FROM busybox\nRUN <<EOF\necho hi\n", "heredoc"),
    "failing-run": (
        "FROM busybox\nRUN echo partial > /p && echo visible-output && exit 3\n",
        "returned a non-zero code: 3",
    ),
    "mount-id-escape": (
        "FROM busybox\nRUN --mount=type=cache,target=/c,id=../../x true\n",
        "invalid cache id",
    ),
    "secret-id-escape": (
        "FROM busybox\nRUN --mount=type=secret,id=../tok,required true\n",
        "invalid secret id",
    ),
    "add-url": ("FROM busybox\nADD https://example.com/x /x\n", "remote URLs are not supported"),
    "missing-source": ("FROM busybox\nCOPY nope /x\n", "no such file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_clearly_and_leaves_nothing(root: Root, shm_tmp: Path, case: str) -> None:
    dockerfile, message = BAD[case]
    ctx = _ctx(shm_tmp, dockerfile)
    r = root.build(ctx, "-t", "bad", check=False)
    assert r.returncode != 0
    assert message in r.stderr
    if case == "failing-run":
        assert "visible-output" in r.stderr
    assert "docker.io/library/bad:latest" not in root.names()
    assert root.names() == ["busybox:latest"]
    root.assert_no_leftovers()


def test_copy_from_an_image_and_network_modes(root: Root, shm_tmp: Path) -> None:
    ctx = _ctx(
        shm_tmp,
        "FROM scratch\n"
        "COPY --from=busybox /bin/busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox cat /proc/net/dev > /none"]\n'
        'RUN --network=host ["/bin/busybox", "sh", "-c", "/bin/busybox cat /proc/net/dev > /host"]\n'  # noqa: E501
        'ENTRYPOINT ["/bin/busybox", "cat"]\n',
    )
    root.build(ctx, "-t", "net")
    none = root("run", "--rm", "net", "/none").stdout
    host = root("run", "--rm", "net", "/host").stdout
    assert [line.split(":")[0].strip() for line in none.splitlines()[2:]] == ["lo"]
    with open("/proc/net/dev") as f:
        assert len(host.splitlines()) == len(f.read().splitlines())


def test_ctrl_c_stops_a_running_step_and_leaves_nothing(root: Root, shm_tmp: Path) -> None:
    import signal

    ctx = _ctx(shm_tmp, "FROM busybox\nRUN echo started && sleep 60\n")
    proc = subprocess.Popen(
        [*LAMINA, "--root", str(root.path), "build", "-t", "slow", str(ctx)],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "started" in line:  # the step's own output: the process is running
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert "slow" not in " ".join(root.names())
    root.assert_no_leftovers()
    shims = root.path / "runtime" / "shim"
    assert not shims.exists() or not list(shims.iterdir())


def test_dockerignore_exceptions_below_an_ignored_dir(root: Root, shm_tmp: Path) -> None:
    # "Ignore everything, then allow nested paths": `find /ctx` as Docker 20.10 and podman 4.3
    # give it. The Dockerfile and .dockerignore are ignored too, so `COPY .` leaves them out.
    files = {".dockerignore": "*\n!src\n", "src/a": "a\n", "other/foo/bar/z": "z\n",
             "other/x": "x\n", "top": "t\n"}  # fmt: skip
    ctx = _ctx(shm_tmp, "FROM busybox\nCOPY . /ctx\n", files)

    def found() -> list[str]:
        root.build(ctx, "-t", "ign")
        return sorted(root("run", "--rm", "ign", "find", "/ctx").stdout.split())

    assert found() == ["/ctx", "/ctx/src", "/ctx/src/a"]
    (ctx / ".dockerignore").write_text("*\n!src\n!other/foo/**\n")
    assert found() == ["/ctx", "/ctx/other", "/ctx/other/foo", "/ctx/other/foo/bar",
                       "/ctx/other/foo/bar/z", "/ctx/src", "/ctx/src/a"]  # fmt: skip
    # The newly kept file is part of COPY's cache key: undoing the exception misses again.
    (ctx / ".dockerignore").write_text("*\n!src\n")
    again = root.build(ctx, "-t", "ign")
    assert "Using cache" in again.stderr
    assert root("run", "--rm", "ign", "find", "/ctx/other", check=False).returncode != 0


def test_build_labels_are_steps_after_the_built_stage(root: Root, shm_tmp: Path) -> None:
    """``build --label``, as docker 20.10's classic builder (checked on its daemon): one
    ``LABEL k=v`` step per label, sorted by key, after the built stage's instructions (the
    --target one too), values as given (``$HOME`` kept), a bare key an empty value::

        Step 4/5 : LABEL k=
        Step 5/5 : LABEL sp=a b $HOME
    """
    ctx = _ctx(shm_tmp, "FROM busybox AS one\nRUN true\nFROM busybox\nLABEL a=1\n")
    r = root.build(ctx, "--label", "sp=a b $HOME", "--label", "k", "-t", "lab")
    steps = [line for line in r.stderr.splitlines() if line.startswith("Step ")]
    assert steps[-2:] == ["Step 5/6 : LABEL k=", "Step 6/6 : LABEL sp=a b $HOME"]
    labels = json.loads(root("inspect", "-f", "{{json .Config.Labels}}", "lab").stdout)
    assert labels == {"a": "1", "k": "", "sp": "a b $HOME"}
    history = root("history", "--no-trunc", "--format", "{{.CreatedBy}}", "lab").stdout
    assert history.splitlines()[0] == "/bin/sh -c #(nop)  LABEL sp=a b $HOME"
    r = root.build(ctx, "--target", "one", "--label", "t=1", "-t", "lab-one")
    assert [line for line in r.stderr.splitlines() if line.startswith("Step ")][-1] == (
        "Step 3/3 : LABEL t=1"
    )
    assert root("inspect", "-f", "{{json .Config.Labels}}", "lab-one").stdout.strip() == (
        '{"t":"1"}'
    )
    r = root.build(ctx, "--label", "=v", check=False)
    assert r.returncode == 2 and "invalid argument '=v' for \"--label\" flag" in r.stderr
