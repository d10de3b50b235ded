"""Container and volume verbs through ``main([...])`` in-process: output shapes, formats,
filters, exit statuses. (tests/integration/test_containers.py runs the real command.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from in_process import Cli

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]


@pytest.fixture
def cli(shm_tmp: Path, busybox_tar: Path, capfd: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    c = Cli(shm_tmp / "root", capfd)
    assert c("import", str(busybox_tar), "busybox")[0] == 0
    yield c
    code, out, _ = c("ps", "-aq")
    if out.split():
        c("rm", "-f", *out.split())


def test_run_and_ps_shapes(cli: Cli) -> None:
    assert cli("run", "--rm", "busybox", "sh", "-c", "echo hi")[:2] == (0, "hi\n")
    assert cli("run", "--name", "one", "busybox", "sh", "-c", "exit 7")[0] == 7
    code, out, _ = cli("ps")
    header_words = ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert (code, out.split()) == (0, header_words)
    code, out, _ = cli("ps", "-a")
    header, row = out.splitlines()
    assert header.startswith("CONTAINER ID   IMAGE     COMMAND")
    # Docker's COMMAND: Path and Args joined by spaces, an arg with a space in single quotes,
    # then Go-quoted (test_ps_cli.py has the rest)
    assert "\"sh -c 'exit 7'\"" in row and "Exited (7)" in row and row.endswith("one")
    code, out, _ = cli("ps", "-a", "--format", "json")
    rec = json.loads(out)
    assert list(rec) == sorted(rec)
    assert (rec["Names"], rec["State"], rec["Image"], len(rec["ID"])) == (
        "one",
        "exited",
        "busybox",
        12,
    )
    assert cli("ps", "-a", "--format", "{{.Names}}:{{.Status}}")[1].startswith("one:Exited (7)")
    # As docker 20.10's `docker ps -a --format` prints them; a table's header is the template run
    # over the column names, so docker prints "12" (the length of "CONTAINER ID") there too.
    fmt = '{{printf "%-5s|%.4s" .Names .Image}} {{if eq .State "created" "exited"}}stopped{{end}}'
    assert cli("ps", "-a", "--format", fmt)[1] == "one  |busy stopped\n"
    fmt = 'table {{.Names}}\t{{if ne .State "running"}}{{printf "%d" (len .ID)}}{{end}}'
    assert cli("ps", "-a", "--format", fmt)[1].split() == ["NAMES", "12", "one", "12"]
    assert cli("ps", "-a", "--filter", "exited=7", "-q")[1].strip() == rec["ID"]
    assert cli("ps", "-a", "--filter", "exited=0", "-q")[1] == ""
    assert cli("ps", "--filter", "status=exited", "-q")[1].strip() == rec["ID"]
    code, _, err = cli("ps", "--filter", "color=red")
    assert code == 1 and "Invalid filter 'color'" in err  # dockerd's words and status
    full = cli("ps", "-aq", "--no-trunc")[1].strip()
    assert len(full) == 64 and full.startswith(rec["ID"])


def test_inspect_finds_containers_images_and_volumes(cli: Cli) -> None:
    assert cli("create", "--name", "c1", "-e", "A=1", "-w", "/tmp", "busybox", "echo", "x")[0] == 0
    assert cli("volume", "create", "--label", "k=v", "v1")[1] == "v1\n"
    code, out, _ = cli("inspect", "c1")
    info = json.loads(out)[0]
    assert code == 0 and info["Name"] == "/c1" and info["State"]["Status"] == "created"
    assert list(info)[:11] == [
        "Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath",
        "HostsPath", "LogPath", "Name",
    ]  # fmt: skip
    assert (info["Path"], info["Args"]) == ("echo", ["x"])
    assert info["Config"]["WorkingDir"] == "/tmp" and "A=1" in info["Config"]["Env"]
    assert info["Config"]["Image"] == "busybox" and info["Image"].startswith("sha256:")
    assert info["HostConfig"]["NetworkMode"] == "none" and info["HostConfig"]["Binds"] is None
    assert cli("inspect", "-f", "{{.Name}}", "v1")[1] == "v1\n"
    assert cli("inspect", "--type", "volume", "-f", "{{.Labels.k}}", "v1")[1] == "v\n"
    assert cli("inspect", "--type", "image", "-f", "{{.Id}}", "busybox")[1].startswith("sha256:")
    code, _, err = cli("inspect", "--type", "image", "c1")
    assert code == 1 and "no such image" in err
    code, _, err = cli("inspect", "nothing-here")
    assert code == 1 and "no such object" in err


def test_volume_listing(cli: Cli) -> None:
    for name in ("alpha", "beta"):
        cli("volume", "create", name)
    cli("volume", "create", "--label", "team=db", "gamma")
    assert cli("volume", "ls", "-q")[1].split() == ["alpha", "beta", "gamma"]
    code, out, _ = cli("volume", "ls")
    assert out.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert out.splitlines()[1].split() == ["local", "alpha"]
    assert cli("volume", "ls", "-q", "--filter", "label=team=db")[1] == "gamma\n"
    assert cli("volume", "ls", "-q", "--filter", "name=alp")[1] == "alpha\n"
    rows = [json.loads(line) for line in cli("volume", "ls", "--format", "json")[1].splitlines()]
    assert rows[0]["Name"] == "alpha" and rows[0]["Driver"] == "local"
    assert cli("volume", "ls", "--format", "{{.Name}} {{.Mountpoint}}")[1].splitlines()[0] == (
        f"alpha {cli.root}/volumes/alpha/_data"
    )
    assert cli("volume", "rm", "alpha", "nope")[0] == 1  # one removed, one error
    assert cli("volume", "rm", "-f", "nope")[0] == 0
    assert cli("volume", "ls", "-q")[1].split() == ["beta", "gamma"]


def test_volume_ls_filters_are_dockers(cli: Cli) -> None:
    # docker 20.10 with the same volumes: name= is a regexp, values of one key match if any
    # does, every label= must match, dangling=true wins over dangling=false; the refusals.
    cli("volume", "create", "--label", "a=b", "lab1")
    cli("volume", "create", "--label", "a", "lab2")
    cli("volume", "create", "--label", "c=d", "xlab3")
    cli("create", "-v", "lab1:/x", "busybox", "true")

    def names(*filters: str) -> list[str]:
        code, out, err = cli("volume", "ls", "-q", *(a for f in filters for a in ("-f", f)))
        assert code == 0, err
        return out.split()

    assert names("name=^lab") == ["lab1", "lab2"]
    assert names("name=l.b1") == ["lab1"]
    assert names("NAME=lab1", "name=lab2") == ["lab1", "lab2"]
    assert names("label=a", "label=a=") == ["lab2"]
    assert names("dangling=true", "dangling=false") == ["lab2", "xlab3"]
    assert names("dangling=0", "driver=local") == ["lab1"]
    assert names("driver=loc") == []
    for bad, words in (
        ("dangling=maybe", "Invalid filter 'dangling=[maybe]'"),
        ("label!=a", "Invalid filter 'label!'"),
        ("name", 'invalid argument "name" for "-f, --filter" flag: bad format of filter'),
    ):
        code, _, err = cli("volume", "ls", "-f", bad)
        assert code != 0 and words in err, bad


def test_exit_statuses_of_lamina_failures(cli: Cli) -> None:
    code, _, err = cli("run", "--rm", "no-such-image")
    assert code == 125 and "no such image" in err
    code, _, err = cli("run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true")
    assert code == 125 and "capability" in err
    # docker exec: 1 when there is no running container to exec in (docker 20.10).
    code, _, err = cli("exec", "anything", "ls")
    assert code == 1 and "no such container" in err
    assert cli("create", "--name", "idle", "busybox", "true")[0] == 0
    code, _, err = cli("exec", "idle", "ls")
    assert code == 1 and "is not running" in err
    cli("rm", "idle")
    code, _, err = cli("rm", "ghost")
    assert code == 1 and "no such container" in err
    code, _, err = cli("start", "ghost")
    assert code == 1 and "no such container" in err
    assert cli("ps", "-aq")[1] == ""  # no half-made container left by any of them


def test_create_refusals_exit_1_and_run_refusals_125(cli: Cli) -> None:
    """docker 20.10: ``create``'s refusals (the daemon's) exit 1, ``run``'s the same ones 125;
    nothing is left behind by either."""
    assert cli("create", "--name", "taken", "busybox", "true")[0] == 0
    for verb, status in (("create", 1), ("run", 125)):
        code, _, err = cli(verb, "--name", "taken", "busybox", "true")
        assert (code, "already in use" in err) == (status, True), verb
        code, _, err = cli(verb, "--name", "bad name", "busybox", "true")
        assert (code, "invalid container name" in err) == (status, True), verb
        code, _, err = cli(verb, "busybox")  # this busybox has no CMD
        assert (code, "no command specified" in err) == (status, True), verb
        code, _, err = cli(verb, "-w", "rel", "busybox", "true")
        assert (code, "absolute path" in err) == (status, True), verb
    assert cli("ps", "-aq")[1].split() == [cli("inspect", "-f", "{{.Id}}", "taken")[1][:12]]


def test_verbs_of_several_names_act_on_each(cli: Cli) -> None:
    """docker 20.10: an unknown name is reported and the others are still acted on; exit 1."""
    for name in ("s5", "s6"):
        assert cli("run", "-d", "--name", name, "busybox", "sleep", "600")[0] == 0
    assert cli("create", "--name", "cp1", "busybox", "true")[0] == 0
    code, out, err = cli("stop", "-t", "0", "nonexist", "s5")
    assert (code, out) == (1, "s5\n") and "no such container: nonexist" in err
    code, out, err = cli("kill", "nonexist", "s6")
    assert (code, out) == (1, "s6\n") and "no such container: nonexist" in err
    # stop waits for the exit; kill only signals (as docker's), so s6 is checked after wait
    assert cli("inspect", "-f", "{{.State.Status}}", "s5")[1] == "exited\n"
    code, out, err = cli("wait", "nonexist", "s6")
    assert (code, out) == (1, "137\n") and "no such container: nonexist" in err
    assert cli("inspect", "-f", "{{.State.Status}}", "s5", "s6")[1] == "exited\nexited\n"
    code, out, err = cli("start", "nonexist", "s5")
    assert (code, out) == (1, "s5\n") and "no such container: nonexist" in err
    code, out, err = cli("restart", "-t", "0", "s5", "nonexist")
    assert (code, out) == (1, "s5\n") and "no such container: nonexist" in err
    assert cli("inspect", "-f", "{{.State.Status}}", "s5")[1] == "running\n"
    assert cli("kill", "s5")[0] == 0
    # inspect: the objects found (one JSON array, or a template line each), errors on stderr.
    code, out, err = cli("inspect", "-f", "{{.Name}}", "cp1", "nonexist")
    assert (code, out) == (1, "/cp1\n") and "no such object: nonexist" in err
    code, out, err = cli("inspect", "cp1", "nonexist")
    assert code == 1 and [c["Name"] for c in json.loads(out)] == ["/cp1"]
    assert cli("inspect", "nonexist")[:2] == (1, "[]\n")
    code, out, err = cli("container", "inspect", "-f", "{{.Name}}", "nonexist", "cp1")
    assert (code, out) == (1, "/cp1\n") and "no such container: nonexist" in err
    # rm -f: a container that is not there is no error (docker prints it and exits 0).
    code, out, err = cli("rm", "-f", "nonexist")
    assert (code, out) == (0, "") and "no such container: nonexist" in err
    assert cli("rm", "-f", "nonexist", "cp1")[:2] == (0, "cp1\n")
    assert cli("rm", "nonexist")[0] == 1


def test_names_lose_one_leading_slash(cli: Cli) -> None:
    """docker 20.10 accepts ``/name`` in create and rename and strips the slash (one only)."""
    assert cli("create", "--name", "/slashed", "busybox", "true")[0] == 0
    assert cli("inspect", "-f", "{{.Name}}", "slashed")[1] == "/slashed\n"
    code, _, err = cli("create", "--name", "/slashed", "busybox", "true")
    assert code == 1 and "already in use" in err
    code, _, err = cli("create", "--name", "//twice", "busybox", "true")
    assert code == 1 and "invalid container name" in err
    assert cli("rename", "slashed", "/renamed")[0] == 0
    assert cli("ps", "-a", "--format", "{{.Names}}")[1] == "renamed\n"


def test_an_ambiguous_id_prefix_is_reported_as_such(cli: Cli) -> None:
    """docker 20.10: "Multiple IDs found with provided prefix", exit 1, for inspect (which
    then looks no further) as for the other verbs."""
    firsts: dict[str, str] = {}
    while True:
        cid = cli("create", "busybox", "true")[1].strip()
        if cid[0] in firsts:
            break
        firsts[cid[0]] = cid
    for verb in (["inspect"], ["container", "inspect"], ["stop"], ["rm"]):
        code, out, err = cli(*verb, cid[0])
        assert code == 1 and "multiple IDs found with provided prefix" in err, verb
    assert cli("inspect", "-f", "{{.Id}}", cid[:12])[1] == cid + "\n"
