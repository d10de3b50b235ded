"""Hostile images as a user meets them: ``load -i`` of a generated docker-archive, then the verbs
that read it. Each input is built here (no binary fixtures); every verb must either work or
refuse with an error, never exit 70, and a refused load leaves the store as it was."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from in_process import Cli

pytestmark = [pytest.mark.needs_root]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, data: bytes = b"") -> None:
    info.size = len(data)
    info.mtime = 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def layer_tar(files: dict[str, bytes]) -> bytes:
    """A layer of regular files (names may be surrogate-escaped bytes: written as those bytes)."""
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=tarfile.PAX_FORMAT, errors="surrogateescape"
    ) as tar:
        for name, data in files.items():
            _add(tar, tarfile.TarInfo(name), data)
    return buf.getvalue()


def config_bytes(layers: Sequence[bytes], **extra: object) -> bytes:
    doc: dict[str, object] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{_sha(la)}" for la in layers]},
        "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def docker_archive(
    path: Path, layers: Sequence[bytes], *, config: bytes | None = None, tag: str = "evil:1"
) -> Path:
    raw = config if config is not None else config_bytes(layers)
    manifest = [
        {
            "Config": f"{_sha(raw)}.json",
            "RepoTags": [tag],
            "Layers": [f"{_sha(la)}.tar" for la in layers],
        }
    ]
    with tarfile.open(path, "w") as tar:
        _add(tar, tarfile.TarInfo("manifest.json"), json.dumps(manifest).encode())
        _add(tar, tarfile.TarInfo(f"{_sha(raw)}.json"), raw)
        for la in dict.fromkeys(layers):
            _add(tar, tarfile.TarInfo(f"{_sha(la)}.tar"), la)
    return path


@pytest.fixture
def cli(shm_tmp: Path, capfd: pytest.CaptureFixture[str]) -> Cli:
    # capfd, not capsys: output goes through a real UTF-8 stream, as in a terminal or a pipe.
    return Cli(shm_tmp / "root", capfd, driver="vfs")


BASE = layer_tar({"bin/sh": b"#!x", "etc/passwd": b"root:x:0:0::/:/bin/sh\n"})


def test_lone_surrogate_escapes_in_a_config_read_as_go_reads_them(cli: Cli, shm_tmp: Path) -> None:
    """``"\\ud800"`` is valid JSON; Python kept the lone surrogate, which no stream or path can
    encode: inspect, history, layers, trace, secrets, report and create all exited 70. Go's
    decoder (Docker's) reads it as U+FFFD."""
    evil = "\\ud800x\\udfff"
    raw = config_bytes(
        [BASE],
        author="@",
        config={"Cmd": ["/bin/sh"], "User": "@", "WorkingDir": "/@", "Env": ["A=@"],
                "Labels": {"@": "@"}},
        history=[{"created_by": "@", "comment": "@"}],
    ).replace(b"@", evil.encode())  # fmt: skip
    docker_archive(shm_tmp / "a.tar", [BASE], config=raw)
    cli.ok("load", "-q", "-i", str(shm_tmp / "a.tar"))
    assert "\ufffdx\ufffd" in cli.ok("history", "--no-trunc", "evil:1")
    cfg = json.loads(cli.ok("inspect", "-f", "{{json .Config}}", "evil:1"))
    assert cfg["Labels"] == {"\ufffdx\ufffd": "\ufffdx\ufffd"}
    assert cfg["WorkingDir"] == "/\ufffdx\ufffd"
    for verb in (["layers"], ["trace"], ["secrets"], ["tree"]):
        args = [*verb, "evil:1", *(["/bin/sh"] if verb == ["trace"] else [])]
        cli.ok(*args)
    cli.ok("report", "-o", str(shm_tmp / "r.html"), "evil:1")
    cid = cli.ok("create", "evil:1").strip()
    cli.ok("commit", cid, "evil:2")
    assert "\ufffdx\ufffd" in cli.ok("history", "--no-trunc", "evil:2")
    cli.ok("rm", cid)


def test_report_of_a_path_that_is_not_utf8(cli: Cli, shm_tmp: Path) -> None:
    """A layer's names are bytes; one that is not UTF-8 made ``report`` exit 70 (the page was
    encoded strictly). The page shows the bytes as ``\\xNN``."""
    layer = layer_tar({"bin/sh": b"#!x", "caf\udce9": b"x", "\udcff/\udcfe": b"y"})
    docker_archive(shm_tmp / "a.tar", [layer])
    cli.ok("load", "-q", "-i", str(shm_tmp / "a.tar"))
    cli.ok("report", "-o", str(shm_tmp / "r.html"), "evil:1")
    page = (shm_tmp / "r.html").read_text(encoding="utf-8")
    assert "caf\\xe9" in page
    assert "\\xff/\\xfe" in page or "\\xfe" in page


@pytest.mark.parametrize(
    "driver", ["vfs", pytest.param("overlay", marks=pytest.mark.needs_overlay)]
)
def test_a_container_tree_thousands_of_levels_deep(
    shm_tmp: Path, capfd: pytest.CaptureFixture[str], driver: str
) -> None:
    """What ``mkdir d; cd d`` in a loop leaves in a container. Docker lists it in ``diff`` and
    exports it. lamina's diff, export and commit walks recursed (RecursionError: exit 70), and
    so did removing it: ``rm`` crashed after renaming the layer aside, and every later command
    then crashed in Store.open's recovery of that dir (the store was unusable)."""
    cli = Cli(shm_tmp / "root", capfd, driver=driver)
    docker_archive(shm_tmp / "a.tar", [BASE])
    cli.ok("load", "-q", "-i", str(shm_tmp / "a.tar"))
    cid = cli.ok("create", "evil:1").strip()
    merged = Path(cli.ok("mount", cid).strip())
    depth = 3000
    fd = os.open(merged, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
    finally:
        os.close(fd)
    cli.ok("umount", cid)
    diff = cli.ok("diff", cid).splitlines()
    assert len(diff) == depth
    assert diff[-1] == "A " + "/d" * depth
    cli.ok("export", "-o", str(shm_tmp / "c.tar"), cid)
    with tarfile.open(shm_tmp / "c.tar") as tf:
        assert sum(1 for m in tf if m.name.split("/")[0] == "d") == depth
    # A layer deeper than lamina's max_depth (256) is refused when it is committed.
    code, _, err = cli("commit", cid, "deep:1")
    assert code == 1
    assert "max_depth" in err
    cli.ok("rm", cid)
    assert cli.ok("ps", "-aq") == ""
    assert cli.ok("images", "-q") != ""


def _store_state(cli: Cli) -> tuple[str, ...]:
    """What a user can see of the store, and its files (names only; not the database)."""
    listing = sorted(
        str(p.relative_to(cli.root))
        for p in cli.root.rglob("*")
        if "runtime" not in p.relative_to(cli.root).parts and not p.name.startswith("lamina.db")
    )
    views = [cli.ok(*verb) for verb in (["images", "-a"], ["volume", "ls"], ["system", "df"])]
    return (*views, *listing)


def test_a_refused_volume_import_leaves_no_volume(cli: Cli, shm_tmp: Path) -> None:
    """``volume import`` creates the volume it extracts into; a refused tar left it behind,
    half filled. (Docker has no volume import; podman's needs an existing volume.)"""
    import gzip

    cli.ok("volume", "create", "kept")
    before = _store_state(cli)
    bad = {
        "escape": layer_tar({"ok": b"1", "../../x": b"2"}),
        "truncated": layer_tar({"a": b"x" * 5000})[:1500],
        "duplicate": layer_tar({"a": b"1", "./a": b"2"}),
        "corrupt-gzip": gzip.compress(layer_tar({"a": b"x" * 5000}))[:-9] + b"garbage!!",
    }
    for name, data in bad.items():
        (shm_tmp / name).write_bytes(data)
        code, _, err = cli("volume", "import", f"v-{name}", str(shm_tmp / name))
        assert code == 1, (name, err)
        assert _store_state(cli) == before, name


@pytest.mark.needs_peer("runc")
def test_an_image_whose_account_file_is_a_fifo_does_not_hang_run(cli: Cli, shm_tmp: Path) -> None:
    """runc's init opens /etc/passwd and /etc/group (for any user) with a plain open(2): a
    FIFO there blocked ``run`` forever, before the container's process existed, and SIGTERM
    did not end it. Docker hands the same bundle to the same runc and hangs as well; lamina
    refuses to start it, exit 125, as for any other start failure."""
    import signal

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        sh = tarfile.TarInfo("bin/sh")
        sh.mode = 0o755
        _add(tar, sh, b"#!/bin/sh\n")
        for name in ("etc/passwd", "etc/group"):
            fifo = tarfile.TarInfo(name)
            fifo.type = tarfile.FIFOTYPE
            _add(tar, fifo)
    docker_archive(shm_tmp / "a.tar", [buf.getvalue()])
    cli.ok("load", "-q", "-i", str(shm_tmp / "a.tar"))
    signal.alarm(120)  # a regression hangs: fail instead
    try:
        code, _, err = cli("run", "--rm", "evil:1")
        assert code == 125
        assert "/etc/passwd in the image is a FIFO or a device" in err
        cid = cli.ok("create", "evil:1").strip()
        code, _, err = cli("start", cid)
        assert code == 1  # as docker start's failures
        assert "runc would block" in err
        assert "runc would block" in cli.ok("inspect", "-f", "{{.State.Error}}", cid)
    finally:
        signal.alarm(0)
    cli.ok("rm", cid)


def test_forensics_show_hostile_names_one_per_line(cli: Cli, shm_tmp: Path) -> None:
    """Names are bytes chosen by the image's author. Printed raw, ``evil\\n/etc/shadow`` read
    as two lines of ``tree`` and ``image diff`` (the second a forged entry), escape sequences
    reached the terminal, and the ``read: lamina cat ...`` line trace suggests was no command
    a shell could run. Human output now quotes such names Go-style; the suggestion is
    shell-quoted; JSON is unchanged (Go's encoder: U+FFFD for bytes that are not UTF-8)."""
    import subprocess

    names = {
        "evil\n/etc/shadow": b"1",
        "x\n/C /etc": b"2",
        "a\tb\x1b[31mred": b"3",
        "caf\udce9": b"4",
        "my file": b"5",
    }
    docker_archive(shm_tmp / "a.tar", [layer_tar(names)])
    cli.ok("load", "-q", "-i", str(shm_tmp / "a.tar"))
    diff = cli.ok("image", "diff", "--layer", "0", "evil:1").splitlines()
    assert 'A "/evil\\n/etc/shadow"' in diff
    assert 'A "/x\\n/C /etc"' in diff
    assert 'A "/a\\tb\\u001b[31mred"' in diff
    assert 'A "/caf\\xe9"' in diff
    assert "A /my file" in diff
    tree = cli.ok("tree", "evil:1")
    assert "\x1b" not in tree
    assert len(tree.splitlines()) == 9  # 5 files, 2 implicit dirs, "etc" and "C /etc"
    for name, data in names.items():
        trace = cli.ok("trace", "evil:1", "/" + name)
        assert "\x1b" not in trace
        [line] = [x for x in trace.splitlines() if x.startswith("    read: lamina ")]
        command = line.removeprefix("    read: lamina ").replace("evil:1", "evil:1", 1)
        # What a user pastes: bash turns the quoted word back into the name's bytes.
        words = subprocess.run(
            ["bash", "-c", f'for w in {command}; do printf "%s\\0" "$w"; done'],
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")[:-1]
        assert words[2] == os.fsencode("/" + name), name
        assert cli.ok("cat", *(os.fsdecode(w) for w in words[1:])) == data.decode()
    tree_json = json.loads(cli.ok("tree", "--format", "json", "evil:1"))
    assert "/evil\n/etc/shadow" in [n["Path"] for n in tree_json]


def test_cat_and_extract_find_files_under_dirs_without_entries(cli: Cli, shm_tmp: Path) -> None:
    """A tar need not list a file's parent dirs (extraction makes them). cat and extract
    walked the index entry by entry and said such files were not in the image, while tree and
    trace showed them: a file could be kept from the verbs that show evidence."""
    docker_archive(shm_tmp / "a.tar", [layer_tar({"hidden/deeper/key": b"secret"})])
    cli.ok("load", "-q", "-i", str(shm_tmp / "a.tar"))
    assert cli.ok("cat", "evil:1", "/hidden/deeper/key") == "secret"
    cli.ok("extract", "-o", str(shm_tmp / "out"), "evil:1", "/hidden")
    assert (shm_tmp / "out" / "hidden" / "deeper" / "key").read_bytes() == b"secret"
    code, _, err = cli("cat", "evil:1", "/hidden/nothing")
    assert code == 1
    assert "not in evil:1" in err


def test_deep_verify_keeps_few_hashes_in_flight(
    cli: Cli, shm_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A future per file, kept for the whole layer: a layer of 300,000 empty files (a few MB
    as a gzip layer) took ``verify`` to ~800 MB, ~10 GB at the 4M-entry limit. Hashes now
    wait in a small window; a tampered file is still found."""
    from lamina.forensics import verify

    held: list[int] = []

    class Watched(verify._Checker):
        def check(self, path: str, full: str, st: os.stat_result) -> bool:
            descend = super().check(path, full, st)
            held.append(len(self.pending))
            return descend

    monkeypatch.setattr(verify, "_Checker", Watched)
    monkeypatch.setattr(verify, "_IN_FLIGHT", 4, raising=False)
    docker_archive(shm_tmp / "a.tar", [layer_tar({f"f{i}": b"%d" % i for i in range(40)})])
    cli.ok("load", "-q", "-i", str(shm_tmp / "a.tar"))
    assert cli("verify", "evil:1")[0] == 0
    assert max(held) <= 4
    held.clear()
    [layer_dir] = (cli.root / "vfs").glob("*/rootfs")
    (layer_dir / "f33").write_bytes(b"XX")  # same size as "33"
    code, out, _ = cli("verify", "evil:1")
    assert code == 1
    assert "/f33" in out
    assert len(held) == 40
    assert max(held) <= 4


def test_a_history_shorter_than_the_layers_loads_and_grows_aligned(cli: Cli, shm_tmp: Path) -> None:
    """Docker's image store refuses only *more* non-empty history entries than layers; fewer
    (none at all, in hand-made or stripped images) it loads. lamina refused such an image, and
    its own commit and build on one that had no history wrote a config it then refused (one
    entry for N+1 layers). The entries describe the bottom layers; an appended entry now
    comes after blank ones for the undescribed layers, so it describes the new top layer."""
    top = layer_tar({"etc/motd": b"hi\n"})
    for name, history in (("none", []), ("short", [{"created_by": "base step"}])):
        raw = config_bytes([BASE, top], history=history)
        docker_archive(shm_tmp / f"{name}.tar", [BASE, top], config=raw, tag=f"h:{name}")
        cli.ok("load", "-q", "-i", str(shm_tmp / f"{name}.tar"))
        rows = cli.ok("history", "--format", "{{.CreatedBy}}|{{.Size}}", f"h:{name}").splitlines()
        assert rows == (["base step|25B"] if history else [])  # Docker's rows and sizes
        cid = cli.ok("create", f"h:{name}").strip()
        cli.ok("commit", "-m", "committed", cid, f"h:{name}-c")
        cli.ok("rm", cid)
        (shm_tmp / "ctx").mkdir(exist_ok=True)
        (shm_tmp / "ctx" / "Dockerfile").write_text(
            f"FROM h:{name}-c\nENV A=1\nCOPY Dockerfile /df\n"
        )
        cli.ok("build", "-q", "-t", f"h:{name}-b", str(shm_tmp / "ctx"))
        cfg = json.loads(cli.ok("inspect", "-f", "{{json .}}", f"h:{name}-b"))
        assert len(cfg["RootFS"]["Layers"]) == 4
        steps = cli.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}",
                       f"h:{name}-b").splitlines()  # fmt: skip
        assert steps[0].startswith("COPY") or "COPY" in steps[0], steps
        assert "ENV A=1" in steps[1]
        assert steps[2].endswith("|committed")  # the committed layer's own entry
        assert steps[3] == "|"  # the blank entry standing for the undescribed layer
        assert steps[4:] == (["base step|"] if history else ["|"])
        # Built straight on the image with the short history: the COPY's entry comes after a
        # blank one for each undescribed layer.
        (shm_tmp / "ctx" / "Dockerfile").write_text(f"FROM h:{name}\nCOPY Dockerfile /df\n")
        cli.ok("build", "-q", "-t", f"h:{name}-d", str(shm_tmp / "ctx"))
        direct = cli.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}",
                        f"h:{name}-d").splitlines()  # fmt: skip
        assert "COPY" in direct[0]
        assert direct[1:] == (["", "base step"] if history else ["", ""])
        cli.ok("save", "-o", str(shm_tmp / f"{name}-b.tar"), f"h:{name}-b")
        cli.ok("rmi", f"h:{name}-b")
        cli.ok("load", "-q", "-i", str(shm_tmp / f"{name}-b.tar"))
    # More non-empty entries than layers is still refused, naming both counts.
    raw = config_bytes([BASE], history=[{"created_by": "a"}, {"created_by": "b"}])
    docker_archive(shm_tmp / "long.tar", [BASE], config=raw, tag="h:long")
    code, _, err = cli("load", "-q", "-i", str(shm_tmp / "long.tar"))
    assert code == 1
    assert "history has 2 non-empty entries but rootfs has only 1 diff_ids" in err
