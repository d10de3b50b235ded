"""Rules of Docker's classic builder that a build must follow to give Docker's image, each
checked against docker 20.10 by hand (the notes in each test say what Docker did): a RUN's
changes inside a VOLUME are discarded, the build exits with a failed RUN's status, unknown
users fail the build (exit 1, not ``run``'s 125), stage names are unique, and the history of a
RUN given only unreferenced proxy build args carries ``|0``; and `build --network` sets
the RUN steps' network."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile
from pathlib import Path

import pytest
from test_build import Root, _ctx

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]


@pytest.fixture
def root(shm_tmp: Path, busybox_rootfs_tar: Path) -> Root:
    return Root(shm_tmp / "root", busybox_rootfs_tar)


def test_a_run_after_volume_leaves_the_volume_as_it_was(root: Root, shm_tmp: Path) -> None:
    # docker 20.10: /vol holds only "before" (still "before"), /newvol exists and is empty,
    # /kept is kept; the RUN layer has /kept and the new mount points only.
    ctx = _ctx(
        shm_tmp,
        "FROM busybox\n"
        "RUN mkdir /vol && echo before > /vol/before && echo gone > /vol/gone\n"
        "VOLUME /vol /newvol\n"
        "RUN echo after > /vol/after && echo x > /vol/before && rm /vol/gone"
        " && echo y > /newvol/y && echo kept > /kept && cat /vol/after\n"
        "COPY f /vol/copied\n",  # COPY is no container step: Docker keeps it
        {"f": "copied\n"},
    )
    r = root.build(ctx, "-t", "vols")
    assert "after" in r.stdout + r.stderr  # the step itself saw its writes
    out = root(
        "run", "--rm", "vols", "sh", "-c", "ls -A /vol /newvol; cat /vol/before /kept /vol/copied"
    ).stdout
    assert out == "/newvol:\n\n/vol:\nbefore\ncopied\ngone\nbefore\nkept\ncopied\n"
    root.assert_no_leftovers()


def test_a_hard_link_out_of_a_volume_fails_the_step(root: Root, shm_tmp: Path) -> None:
    # docker 20.10: ln fails across the volume's mount (EXDEV), so the RUN fails.
    ctx = _ctx(shm_tmp, "FROM busybox\nVOLUME /vol\nRUN echo a > /vol/a && ln /vol/a /b\n")
    r = root.build(ctx, check=False)
    assert r.returncode == 1
    assert "/b is a hard link to /vol/a, inside a VOLUME" in r.stderr
    root.assert_no_leftovers()


def test_the_build_exits_with_the_failed_commands_status(root: Root, shm_tmp: Path) -> None:
    # docker 20.10: "The command '/bin/sh -c exit 3' returned a non-zero code: 3", exit 3.
    r = root.build(_ctx(shm_tmp, "FROM busybox\nRUN exit 3\n"), check=False)
    assert r.returncode == 3
    assert "The command '/bin/sh -c exit 3' returned a non-zero code: 3" in r.stderr


@pytest.mark.parametrize(
    "dockerfile",
    ["FROM busybox\nUSER nouser\nRUN id\n", "FROM busybox\nCOPY --chown=nouser f /f\n"],
    ids=["USER", "COPY --chown"],
)
def test_an_unknown_user_fails_the_build_with_status_1(
    root: Root, shm_tmp: Path, dockerfile: str
) -> None:
    # docker 20.10: "unable to find user nouser: no matching entries in passwd file", exit 1.
    r = root.build(_ctx(shm_tmp, dockerfile, {"f": "x"}), check=False)
    assert r.returncode == 1
    assert "unable to find user nouser: no matching entries in passwd file" in r.stderr


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        # docker 20.10: "base name ($UNDEF) should not be blank", exit 1.
        ("FROM $UNDEF\n", "base name ($UNDEF) should not be blank"),
        ("FROM busybox\nCOPY --from=$UNDEF /x /y\n", "--from=$UNDEF names no stage or image"),
        # An id prefix several images share (docker would try to pull "b"; exit 1 either way).
        ("FROM busybox\nFROM {prefix}\n", "is ambiguous"),
    ],
    ids=["FROM", "COPY --from", "ambiguous"],
)
def test_a_base_no_image_answers_fails_the_build_with_status_1(
    root: Root, shm_tmp: Path, dockerfile: str, message: str
) -> None:
    prefix = ""
    if "{prefix}" in dockerfile:
        # 17 more images: two of the 18 ids must share a first hex digit.
        ctx = _ctx(shm_tmp, "FROM busybox\nARG N\nLABEL n=$N\n")
        for n in range(17):
            root.build(ctx, "-q", "--build-arg", f"N={n}")
        ids = root("images", "-a", "-q", "--no-trunc").stdout.split()
        firsts = [i.removeprefix("sha256:")[0] for i in ids]
        prefix = next(d for d in firsts if firsts.count(d) > 1)
    r = root.build(_ctx(shm_tmp, dockerfile.replace("{prefix}", prefix)), check=False)
    assert (r.returncode, message in r.stderr) == (1, True), r.stderr


def test_a_stage_name_is_used_once(root: Root, shm_tmp: Path) -> None:
    # docker 20.10: "a stage name already used" (names are case-insensitive).
    ctx = _ctx(shm_tmp, "FROM busybox AS a\nRUN true\nFROM busybox AS A\nFROM a\n")
    r = root.build(ctx, check=False)
    assert r.returncode == 1
    assert "Dockerfile:3:1: stage name 'a' is already used by the stage at line 1" in r.stderr


def test_run_history_names_the_build_args_as_docker(root: Root, shm_tmp: Path) -> None:
    # docker 20.10 with --build-arg HTTP_PROXY=http://p (unreferenced, predefined): the RUN's
    # CreatedBy is "|0 /bin/sh -c true"; with a declared ARG it is "|1 A=1 /bin/sh -c true".
    ctx = _ctx(shm_tmp, "FROM busybox\nRUN true\nARG A=1\nRUN true\n")
    root.build(ctx, "-t", "args", "--build-arg", "HTTP_PROXY=http://p")
    history = root("history", "--no-trunc", "--format", "{{.CreatedBy}}", "args").stdout
    assert history.splitlines()[:3] == [
        "|1 A=1 /bin/sh -c true",
        "/bin/sh -c #(nop)  ARG A=1",
        "|0 /bin/sh -c true",
    ]


def test_build_network_sets_the_default_for_run_steps(root: Root, shm_tmp: Path) -> None:
    # docker build --network host: RUN steps see the host's interfaces unless a step says.
    host_ifaces = sum(":" in line for line in Path("/proc/net/dev").read_text().splitlines())
    ctx = _ctx(
        shm_tmp,
        'FROM busybox\nRUN echo "ifaces=$(grep -c : /proc/net/dev)"\n'
        'RUN --network=none echo "none=$(grep -c : /proc/net/dev)"\n',
    )
    default = root.build(ctx, "--no-cache").stderr
    host = root.build(ctx, "--no-cache", "--network", "host").stderr
    assert "ifaces=1\n" in default and "none=1\n" in default  # loopback only
    assert f"ifaces={host_ifaces}\n" in host and "none=1\n" in host


def _steps_output(stderr: str) -> list[str]:
    """Build output with ids as ID, without the container lines (docker's config-only steps
    run a container, lamina's do not; docker also removes each one, noisily)."""
    out = []
    for line in stderr.splitlines():
        if line.startswith((" ---> Running in ", "Removing intermediate container ")):
            continue
        out.append(re.sub(r"\b[0-9a-f]{12}\b", "ID", line))
    return out


def test_build_output_reads_as_dockers(root: Root, shm_tmp: Path) -> None:
    # docker 20.10 (DOCKER_BUILDKIT=0) printed exactly these lines for both builds (its
    # warning lines in red; container lines aside): global ARGs are steps, a step is shown as
    # written with its continuation's blanks, a replaced HEALTHCHECK gets a note, a bare
    # --build-arg nobody declares is named, a tag is shown as name:latest, ONBUILD triggers
    # get one header and no ids of their own, and FROM scratch has an empty id.
    ctx = _ctx(
        shm_tmp,
        "ARG B=busybox\nFROM $B\nLABEL multi=1 \\\n      line=2\n"
        "HEALTHCHECK --interval=5s --retries=3 CMD a\nHEALTHCHECK --timeout=7s CMD b\n"
        "ONBUILD RUN echo trig\nRUN echo one \\\n\n  two\n",
    )
    r = root.build(ctx, "-t", "out", "--build-arg", "NOPE", "--build-arg", "B=busybox")
    assert _steps_output(r.stderr) == [
        "[WARNING]: Empty continuation line found in:",
        "    RUN echo one   two",
        "[WARNING]: Empty continuation lines will become errors in a future release.",
        "Step 1/7 : ARG B=busybox",
        "Step 2/7 : FROM $B",
        " ---> ID",
        "Step 3/7 : LABEL multi=1       line=2",
        " ---> ID",
        "Step 4/7 : HEALTHCHECK --interval=5s --retries=3 CMD a",
        " ---> ID",
        "Step 5/7 : HEALTHCHECK --timeout=7s CMD b",
        "Note: overriding previous HEALTHCHECK: [CMD-SHELL a]",
        " ---> ID",
        "Step 6/7 : ONBUILD RUN echo trig",
        " ---> ID",
        "Step 7/7 : RUN echo one   two",
        "one two",
        " ---> ID",
        "[Warning] One or more build-args [NOPE] were not consumed",
        "Successfully built ID",
        "Successfully tagged out:latest",
    ]
    child = _ctx(shm_tmp, "FROM out\nFROM scratch\nCOPY --from=0 /bin/busybox /\n")
    assert _steps_output(root.build(child, "-t", "child").stderr) == [
        "Step 1/3 : FROM out",
        "# Executing 1 build trigger",
        "trig",
        " ---> ID",
        "Step 2/3 : FROM scratch",
        " ---> ",
        "Step 3/3 : COPY --from=0 /bin/busybox /",
        " ---> ID",
        "Successfully built ID",
        "Successfully tagged child:latest",
    ]


def test_config_and_history_as_docker(root: Root, shm_tmp: Path) -> None:
    # docker 20.10: EXPOSE's history sorts the words as written, then expands them; a
    # HEALTHCHECK keeps the previous one's fields it leaves at zero (Config.Healthcheck
    # {"Test":["CMD-SHELL","b"],"Interval":5000000000,"Timeout":7000000000,"Retries":3});
    # a bare CMD is ["/bin/sh","-c"].
    ctx = _ctx(
        shm_tmp,
        "FROM busybox\nENV P=8080\nEXPOSE $P ${P}/udp 80 90/udp 8000-8002\n"
        "HEALTHCHECK --interval=5s --retries=3 --timeout=2s CMD a\n"
        "HEALTHCHECK --timeout=7s CMD b\nCMD\n",
    )
    root.build(ctx, "-t", "cfg")
    history = root("history", "--no-trunc", "--format", "{{.CreatedBy}}", "cfg").stdout
    assert "/bin/sh -c #(nop)  EXPOSE 8080 8080/udp 80 8000-8002 90/udp\n" in history
    cfg = json.loads(root("inspect", "-f", "{{json .Config}}", "cfg").stdout)
    assert cfg["Healthcheck"] == {
        "Test": ["CMD-SHELL", "b"], "Interval": 5 * 10**9, "Timeout": 7 * 10**9, "Retries": 3,
    }  # fmt: skip
    assert cfg["Cmd"] == ["/bin/sh", "-c"]


def test_add_extracts_only_tars_and_untars_as_root(root: Root, shm_tmp: Path) -> None:
    # docker 20.10: a gzipped text file is no archive (`ADD notes.gz /d/` copies notes.gz);
    # `ADD --chown=1:1 a.tar /t/` keeps the archive's owners and makes /t root's (0:0).
    ctx = _ctx(
        shm_tmp,
        "FROM busybox\nADD notes.gz /d/\nADD --chown=1:1 a.tar /t/\n",
    )
    (ctx / "notes.gz").write_bytes(gzip.compress(b"notes\n"))
    with tarfile.open(ctx / "a.tar", "w") as tar:
        info = tarfile.TarInfo("in")
        info.size, info.uid, info.gid = 3, 7, 8
        tar.addfile(info, io.BytesIO(b"in\n"))
    root.build(ctx, "-t", "adds")
    script = "zcat /d/notes.gz; stat -c '%u:%g %n' /t /t/in"
    out = root("run", "--rm", "adds", "sh", "-c", script).stdout
    assert out == "notes\n0:0 /t\n7:8 /t/in\n"
