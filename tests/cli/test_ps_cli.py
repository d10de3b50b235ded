"""``ps`` filters, limits and COMMAND as dockerd 20.10 gives them: every expected value below
was read off ``docker ps`` over the same containers (made the same way, in the same order,
from the same busybox tar)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from in_process import Cli as InProcess

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]


class Cli(InProcess):
    def names(self, *args: str) -> list[str]:
        return self.ok("ps", *args, "--format", "{{.Names}}").split()

    def id(self, name: str) -> str:
        return self.ok("inspect", "-f", "{{.Id}}", name).strip()


@pytest.fixture
def cli(shm_tmp: Path, busybox_tar: Path, capfd: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    """Containers, oldest first: c1 (exited 5), r1 (running), c2 (created, two volumes), c0
    (exited 0), k1 (created, from ``child``, built on busybox)."""
    c = Cli(shm_tmp / "root", capfd)
    c.ok("import", "--change", 'CMD ["/bin/sh"]', str(busybox_tar), "busybox")
    ctx = shm_tmp / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN touch /x\n")
    c.ok("build", "-q", "-t", "child", str(ctx))
    assert c("run", "--name", "c1", "busybox", "sh", "-c", "echo out; exit 5")[0] == 5
    c.ok("run", "-d", "--name", "r1", "busybox", "sleep", "1000")
    c.ok("create", "--name", "c2", "-v", "vol1:/data", "-v", "/data2", "busybox", "true")
    c.ok("run", "--name", "c0", "busybox", "true")
    c.ok("create", "--name", "k1", "child", "echo", "a b", 'c"d', "it's", "", "x")
    yield c
    out = c("ps", "-aq")[1]
    if out.split():
        c("rm", "-f", *out.split())


def test_values_of_one_key_widen_keys_narrow(cli: Cli) -> None:
    assert cli.names("-a", "--filter", "name=c1", "--filter", "name=r1") == ["r1", "c1"]
    assert cli.names("-a", "--filter", "status=exited", "--filter", "status=running") == [
        "c0",
        "r1",
        "c1",
    ]
    assert cli.names("-a", "--filter", "name=c", "--filter", "status=exited") == ["c0", "c1"]
    assert cli.names("-a", "--filter", "exited=5", "--filter", "exited=0") == ["c0", "c1"]
    assert cli.names("-a", "--filter", "status=created", "--filter", "exited=0") == []
    c1, r1 = cli.id("c1"), cli.id("r1")
    assert cli.names("-a", "--filter", f"id={c1[:4]}", "--filter", f"id={r1}") == ["r1", "c1"]
    assert cli.names("-a", "--filter", f"id={c1[1:5]}") == []  # a prefix, not a substring
    # without -a: status lists what it names; exited needs -a (Docker's "all" rule)
    assert cli.names("--filter", "status=exited") == ["c0", "c1"]
    assert cli.names("--filter", "status=created") == ["k1", "c2"]
    assert cli.names("--filter", "exited=0") == []
    assert cli.names("--filter", "exited=5") == []
    assert cli.names("--filter", "status=running", "--filter", "status=exited") == [
        "c0",
        "r1",
        "c1",
    ]


def test_name_is_a_regular_expression(cli: Cli) -> None:
    def names(pattern: str) -> list[str]:
        return cli.names("-a", "--filter", f"name={pattern}")

    assert names("^c1$") == ["c1"]
    assert names(".*1") == ["k1", "r1", "c1"]
    assert names("/c1") == names("^/c1") == ["c1"]  # also matched as Docker's "/c1"
    assert names("^c") == ["c0", "c2", "c1"]
    assert names("C1") == []
    assert names("[[:alpha:]]0") == ["c0"]  # RE2's POSIX classes
    assert names(r"\d") == ["k1", "c0", "c2", "r1", "c1"]
    assert names(r"1\z") == ["k1", "r1", "c1"]
    # Docker skips a pattern Go cannot compile (so it matches nothing); lamina says so.
    code, out, err = cli("ps", "-a", "--filter", "name=(")
    assert (code, out) == (2, "") and "name=(" in err


def test_bad_filters_are_refused_in_dockers_words(cli: Cli) -> None:
    def refused(*filters: str) -> tuple[int, str]:
        args = [a for f in filters for a in ("--filter", f)]
        code, out, err = cli("ps", "-a", *args)
        assert out == ""
        return code, err.strip()

    assert refused("status=bogus") == (1, "error: Invalid filter 'status=bogus'")
    assert refused("status=Running") == (1, "error: Invalid filter 'status=Running'")
    assert refused("exited=abc") == (1, 'error: strconv.Atoi: parsing "abc": invalid syntax')
    assert refused("exited=") == (1, 'error: strconv.Atoi: parsing "": invalid syntax')
    assert refused("color=red") == (1, "error: Invalid filter 'color'")
    assert refused("=x") == (1, "error: Invalid filter ''")
    assert refused("health=bogus") == (1, "error: Unrecognised filter value for health: bogus")
    assert refused("is-task=abc") == (1, "error: Invalid filter 'is-task=[abc]'")
    assert refused("before=nope") == (1, "error: no such container: nope")
    code, err = refused("color")
    assert code == 2
    assert 'invalid argument "color" for "-f, --filter" flag: bad format of filter' in err
    # accepted, and matching nothing (or everything) as Docker's do here
    for f in ("exited=-1", "status=paused", "status=dead", "status=restarting"):
        assert cli.names("-a", "--filter", f) == [], f
    for f in ("publish=80", "expose=80", "network=bridge", "is-task=true", "ancestor=nope"):
        assert cli.names("-a", "--filter", f) == [], f
    every = ["k1", "c0", "c2", "r1", "c1"]
    for f in ("health=none", "network=none", "is-task=false", "isolation=default"):
        assert cli.names("-a", "--filter", f) == every, f


def test_ancestor_is_any_name_or_id_of_the_image_or_its_parents(cli: Cli) -> None:
    image = cli.ok("inspect", "-f", "{{.Id}}", "busybox").strip()
    every = ["k1", "c0", "c2", "r1", "c1"]  # k1's image was built on busybox
    for ref in (
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "library/busybox",
        image[7:19],
        image[7:11],
        image[7:],
        image,
        image[:19],
    ):
        assert cli.names("-a", "--filter", f"ancestor={ref}") == every, ref
    assert cli.names("-a", "--filter", "ancestor=child") == ["k1"]
    assert cli.names("-a", "--filter", "ancestor=child:latest") == ["k1"]
    assert cli.names("-a", "--filter", "ancestor=child", "--filter", "ancestor=busybox") == every
    assert cli.names("-a", "--filter", "ancestor=nope", "--filter", "ancestor=child") == ["k1"]
    for ref in ("busybox:other", "BUSYBOX", "", f"busybox@{image}"):
        assert cli.names("-a", "--filter", f"ancestor={ref}") == [], ref
    assert cli.names("--filter", "ancestor=busybox") == ["r1"]


def test_ancestor_after_the_name_moved_or_the_image_went(cli: Cli, shm_tmp: Path) -> None:
    ctx = shm_tmp / "ctx"
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN touch /z\n")
    cli.ok("build", "-q", "-t", "t2", str(ctx))
    cli.ok("create", "--name", "v1", "t2", "true")
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN touch /w\n")
    cli.ok("build", "-q", "-t", "t2", str(ctx))  # t2 now names another image
    assert cli.names("-a", "--filter", "ancestor=t2") == []
    assert cli.names("-a", "--filter", "ancestor=busybox")[0] == "v1"  # still built on it
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN touch /y\n")
    cli.ok("build", "-q", "-t", "t1", str(ctx))
    cli.ok("create", "--name", "u1", "t1", "true")
    t1 = cli.ok("inspect", "-f", "{{.Id}}", "t1").strip()
    cli.ok("rmi", "-f", "t1")  # deleted under its container: no parent, no name, no id
    assert "u1" not in cli.names("-a", "--filter", "ancestor=busybox")
    assert cli.names("-a", "--filter", f"ancestor={t1}") == []
    cli.ok("tag", "child", "t4")
    cli.ok("rmi", "t4")
    assert cli.names("-a", "--filter", "ancestor=t4") == []


def test_command_is_shell_quoted_then_go_quoted(cli: Cli) -> None:
    rows = cli.ok("ps", "-a").splitlines()
    k1 = next(r for r in rows if r.endswith("k1"))
    c1 = next(r for r in rows if r.endswith("c1"))
    assert "   \"echo 'a b' c\\\"d it's…\"   " in k1
    assert '   "sh -c \'echo out; ex…"    ' in c1
    cmds = cli.ok("ps", "-a", "--no-trunc", "--format", "{{.Command}}").splitlines()
    assert cmds[0] == "\"echo 'a b' c\\\"d it's  x\""
    assert cmds[-1] == "\"sh -c 'echo out; exit 5'\""
    record = json.loads(cli.ok("ps", "-a", "--filter", "name=k1", "--format", "{{json .}}"))
    assert record["Command"] == "\"echo 'a b' c\\\"d it's…\""
    assert record["Networks"] == "none"
    cli.ok("create", "--name", "q1", "busybox", "sh", "-c", "echo\tx\ny")
    cli.ok("create", "--name", "q3", "busybox", "echo", "\x01\x7f", "a\\b")
    cli.ok("create", "--name", "q2", "busybox", "echo", "héllo", "wörld", "∑" * 11, "a\tb")
    assert cli.ok("ps", "-a", "--filter", "name=q", "--format", "{{.Command}}").splitlines() == [
        '"echo héllo wörld ∑∑…"',
        '"echo \\x01\\x7f a\\\\b"',
        '"sh -c echo\\tx\\ny"',
    ]


def test_last_latest_before_since(cli: Cli) -> None:
    assert cli.names("-n", "2") == ["k1", "c0"]  # -n N implies -a
    assert cli.names("-n", "0") == cli.names("-n", "-1") == ["r1"]
    assert cli.names("-l") == ["k1"]
    assert cli.names("-l", "-n", "3") == ["k1", "c0", "c2"]
    ids = cli.ok("ps", "-q", "-n", "2").split()
    assert ids == [cli.id("k1")[:12], cli.id("c0")[:12]]
    assert cli.names("-n", "2", "--filter", "status=running") == ["r1"]
    assert cli.names("-n", "1", "--filter", "name=c") == ["c0"]
    assert cli.names("-a", "-n", "2", "--filter", "before=c2") == ["r1", "c1"]
    assert cli.names("-a", "-n", "3", "--filter", "before=k1") == ["c0", "c2", "r1"]
    assert cli.names("--filter", "before=r1") == []  # before/since do not imply -a
    assert cli.names("--filter", "before=r1", "--filter", "status=exited") == ["c1"]
    assert cli.names("--filter", "since=c1") == ["r1"]
    assert cli.names("-a", "--filter", "since=/c1") == ["k1", "c0", "c2", "r1"]
    assert cli.names("-a", "--filter", f"since={cli.id('c1')}") == ["k1", "c0", "c2", "r1"]
    code, _, err = cli("ps", "-a", "--filter", f"since={cli.id('c1')[:12]}")
    assert code == 1 and "no such container" in err  # a full id or a name, as Docker
    # Docker keeps one of several values (Go map order); lamina the narrowest.
    assert cli.names("--filter", "since=c1", "--filter", "since=c2") == []
    assert cli.names("--filter", "before=k1", "--filter", "before=c2") == ["r1"]


def test_volume_and_label(cli: Cli, busybox_tar: Path) -> None:
    for f, want in [
        ("volume=vol1", ["c2"]),
        ("volume=/data", ["c2"]),
        ("volume=/data2", ["c2"]),
        ("volume=/dat", []),
        ("volume=vol", []),
    ]:
        assert cli.names("-a", "--filter", f) == want, f
    assert cli.names("-a", "--filter", "volume=vol1", "--filter", "volume=/data2") == ["c2"]
    labeled = ["--change", "LABEL team=db", "--change", "LABEL solo="]
    cli.ok("import", *labeled, str(busybox_tar), "labeled")
    cli.ok("import", "--change", "LABEL team=web", str(busybox_tar), "webby")
    cli.ok("create", "--name", "l1", "labeled", "true")
    cli.ok("create", "--name", "l2", "webby", "true")
    for filters, want in [
        (["label=team"], ["l2", "l1"]),
        (["label=team=db"], ["l1"]),
        (["label=team=db", "label=solo"], ["l1"]),  # labels AND, unlike other keys
        (["label=solo="], ["l1"]),
        (["label=team=db", "label=team=web"], []),
        (["label=team", "label=solo"], ["l1"]),
        (["label=team!=db"], []),
        (["label=solo=x"], []),
        (["label==db"], []),
    ]:
        args = [a for f in filters for a in ("--filter", f)]
        assert cli.names("-a", *args, "--filter", "name=l") == want, filters
    labels = cli.ok("ps", "-a", "--filter", "name=l", "--format", "{{.Labels}}").split()
    assert labels == ["team=web", "solo=,team=db"]


def test_the_label_method_and_its_header(cli: Cli) -> None:
    # docker 20.10 over `create -l foo=bar -l com.x.my-key=v`: the value, "" when unset, and
    # a table header of the key's last dotted part with - and _ as spaces.
    cli.ok("create", "--name", "lb", "-l", "foo=bar", "-l", "com.x.my-key=v", "busybox", "true")
    fmt = '{{.Names}}:{{.Label "foo"}}|{{.Label "com.x.my-key"}}|{{.Label "nope"}}'
    assert cli.ok("ps", "-a", "--filter", "name=^lb$", "--format", fmt) == "lb:bar|v|\n"
    table = 'table {{.Names}}\t{{.Label "foo"}}\t{{.Label "com.x.my-key"}}'
    out = cli.ok("ps", "-a", "--filter", "name=^lb$", "--format", table).splitlines()
    assert [line.split() for line in out] == [["NAMES", "foo", "my", "key"], ["lb", "bar", "v"]]
    record = json.loads(cli.ok("ps", "-a", "--filter", "name=^lb$", "--format", "{{json .}}"))
    assert "Label" not in record and record["Labels"] == "com.x.my-key=v,foo=bar"


def test_size_as_docker_shows_it(cli: Cli) -> None:
    # docker 20.10 over the fixture's containers plus these writes (same order, same tar):
    # the rw layer's regular files and symlinks (a hardlinked inode once; a chmod copies the
    # whole file up), then the image's size plus it; decimal units, 3 significant digits.
    cli.ok("run", "--name", "s1", "busybox", "sh", "-c", "head -c 12345 /dev/zero > /f")
    script = (
        "head -c 1000 /dev/zero > /a; ln /a /b; ln -s /bin/busybox /s; rm /bin/ls; "
        "chmod 700 /bin/cat; mkdir /d"
    )
    cli.ok("run", "--name", "s2", "busybox", "sh", "-c", script)
    cli.ok("exec", "r1", "sh", "-c", "head -c 2500 /dev/zero > /tmp/w")
    expected = [
        "s2|1.98MB (virtual 3.97MB)",
        "s1|12.3kB (virtual 2MB)",
        "k1|0B (virtual 1.99MB)",
        "c0|0B (virtual 1.99MB)",
        "c2|0B (virtual 1.99MB)",
        "r1|2.5kB (virtual 1.99MB)",
        "c1|0B (virtual 1.99MB)",
    ]
    assert cli.ok("ps", "-a", "-s", "--format", "{{.Names}}|{{.Size}}").splitlines() == expected
    # A template that uses .Size asks for the sizes itself (docker's CLI does: #24696).
    assert cli.ok("ps", "-a", "--format", "{{.Names}}|{{.Size}}").splitlines() == expected
    rows = cli.ok("ps", "-a", "--size").splitlines()
    assert rows[0].startswith("CONTAINER ID") and rows[0].endswith("NAMES     SIZE")
    assert rows[1].endswith("s2        1.98MB (virtual 3.97MB)")
    assert rows[-1].endswith("c1        0B (virtual 1.99MB)")
    table = cli.ok("ps", "-a", "--format", "table {{.Names}}\t{{.Size}}").splitlines()
    assert table[:2] == ["NAMES     SIZE", "s2        1.98MB (virtual 3.97MB)"]
    record = json.loads(cli.ok("ps", "--format", "{{json .}}"))
    assert record["Names"] == "r1" and record["Size"] == "2.5kB (virtual 1.99MB)"
    # Without -s the table has no SIZE column.
    assert not cli.ok("ps", "-a").splitlines()[0].endswith("SIZE")
    assert len(cli.ok("ps", "-a", "-s", "-q").split()) == 7
