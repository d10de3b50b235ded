"""Rules of Docker's classic builder that a build must follow to give Docker's image, each
checked against docker 20.10 by hand (the notes in each test say what Docker did): a RUN's
changes inside a VOLUME are discarded, the build exits with a failed RUN's status, unknown
users fail the build (exit 1, not ``run``'s 125), stage names are unique, and the history of a
RUN given only unreferenced proxy build args carries ``|0``; and `build --network` sets
the RUN steps' network."""

from __future__ import annotations

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
