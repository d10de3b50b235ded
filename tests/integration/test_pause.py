"""``pause``/``unpause`` and what every other verb does with a paused container, each rule
checked against docker 20.10 by hand (the comments say what Docker printed and exited with).

Whether a container is frozen is read from its cgroup's freezer, so what a test checks there is
the kernel's view, not a flag lamina keeps."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_containers import (
    Lamina,
    lamina_on_both_drivers,  # noqa: F401  # the `lamina` fixture
)

pytestmark = [pytest.mark.needs_root]

# A container that counts on stdout and, on SIGTERM, says so and exits 3.
COUNTER = (
    "trap 'echo got TERM; exit 3' TERM; i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"
)


def _state(lamina: Lamina, name: str) -> dict[str, object]:
    state: dict[str, object] = json.loads(lamina.out("inspect", "-f", "{{json .State}}", name))
    return state


def _lines(lamina: Lamina, name: str) -> int:
    return len(lamina.out("logs", name).splitlines())


def _frozen(lamina: Lamina, name: str) -> str:
    """The kernel's word for the container's cgroup (v1 freezer.state)."""
    pid = _state(lamina, name)["Pid"]
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "freezer" in controllers.split(","):
            return Path(f"/sys/fs/cgroup/freezer{path}/freezer.state").read_text().strip()
    pytest.skip("no cgroup v1 freezer on this host")


def test_pause_freezes_and_unpause_resumes(lamina: Lamina) -> None:
    lamina.run("run", "-d", "--name", "ctr", "busybox", "sh", "-c", COUNTER)
    assert lamina.out("pause", "ctr") == "ctr\n"
    assert _frozen(lamina, "ctr") == "FROZEN"
    before = _lines(lamina, "ctr")
    time.sleep(0.3)
    assert _lines(lamina, "ctr") == before  # nothing runs
    # docker: {"Status":"paused","Running":true,"Paused":true,...}, "Up 2 seconds (Paused)"
    state = _state(lamina, "ctr")
    assert (state["Status"], state["Running"], state["Paused"]) == ("paused", True, True)
    assert lamina.out("ps", "--format", "{{.Status}}").strip().endswith("(Paused)")
    assert lamina.out("ps", "--filter", "status=paused", "--format", "{{.Names}}") == "ctr\n"
    assert lamina.out("ps", "--filter", "status=running", "-q") == ""
    assert lamina.out("unpause", "ctr") == "ctr\n"
    assert _frozen(lamina, "ctr") == "THAWED"
    state = _state(lamina, "ctr")
    assert (state["Status"], state["Paused"]) == ("running", False)
    deadline = time.monotonic() + 10
    while _lines(lamina, "ctr") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _lines(lamina, "ctr") > before  # it counts again


def test_verbs_refused_on_a_paused_container(lamina: Lamina) -> None:
    lamina.run("run", "-d", "--name", "ctr", "busybox", "sleep", "1000")
    cid = lamina.out("inspect", "-f", "{{.Id}}", "ctr").strip()
    lamina.run("pause", "ctr")
    refused = {
        # docker: Container <id> is already paused (exit 1)
        ("pause", "ctr"): f"container {cid[:12]} is already paused",
        # docker: Container ctr is paused, unpause the container before exec (exit 1)
        ("exec", "ctr", "true"): (
            f"container {cid[:12]} is paused, unpause the container before exec"
        ),
        # docker: cannot start a paused container, try unpause instead (exit 1)
        ("start", "ctr"): "cannot start a paused container, try unpause instead",
        # docker: You cannot remove a paused container <id>. Unpause and then stop the
        # container before attempting removal or force remove (exit 1)
        ("rm", "ctr"): (
            f"you cannot remove a paused container {cid[:12]}. Unpause and then stop the "
            "container before attempting removal or force remove"
        ),
    }
    for args, message in refused.items():
        r = lamina.run(*args, check=False)
        assert (r.returncode, r.stderr.strip()) == (1, f"error: {message}"), args
    assert _state(lamina, "ctr")["Paused"] is True  # none of them changed it
    lamina.run("unpause", "ctr")
    # docker: Container <id> is not paused (exit 1), running or stopped alike
    r = lamina.run("unpause", "ctr", check=False)
    assert (r.returncode, r.stderr.strip()) == (1, f"error: container {cid[:12]} is not paused")
    lamina.run("kill", "ctr")
    lamina.run("wait", "ctr")
    # docker: Container <id> is not running (exit 1)
    r = lamina.run("pause", "ctr", check=False)
    assert (r.returncode, r.stderr.strip()) == (1, f"error: container {cid[:12]} is not running")


def test_stop_restart_and_rm_f_resume_a_paused_container(lamina: Lamina) -> None:
    lamina.run("run", "-d", "--name", "ctr", "busybox", "sh", "-c", COUNTER)
    lamina.run("pause", "ctr")
    # docker stop of a paused container: the stop signal, then a resume, so the trap runs
    # (exit 3, "got TERM" logged) well before the 20 s timeout.
    start = time.monotonic()
    lamina.run("stop", "-t", "20", "ctr")
    assert time.monotonic() - start < 15
    state = _state(lamina, "ctr")
    assert (state["Status"], state["ExitCode"], state["Paused"]) == ("exited", 3, False)
    assert lamina.out("logs", "ctr").splitlines()[-1] == "got TERM"
    lamina.run("start", "ctr")
    lamina.run("pause", "ctr")
    lamina.run("restart", "-t", "20", "ctr")  # docker: running, not paused
    state = _state(lamina, "ctr")
    assert (state["Status"], state["Paused"]) == ("running", False)
    lamina.run("pause", "ctr")
    assert lamina.out("rm", "-f", "ctr") == "ctr\n"  # docker: removed, exit 0
    assert lamina.out("ps", "-aq") == ""


def test_kill_resumes_as_docker_does(lamina: Lamina) -> None:
    # docker kill of a paused container sends the signal, then resumes it when the signal is
    # SIGKILL, the container's stop signal, or anything if the config names no stop signal;
    # any other signal stays pending while it is paused.
    lamina.run("run", "-d", "--name", "plain", "busybox", "sleep", "1000")
    lamina.run("pause", "plain")
    lamina.run("kill", "-s", "USR1", "plain")  # PID 1 has no handler: it ignores USR1
    assert _state(lamina, "plain")["Status"] == "running"
    lamina.run("run", "-d", "--name", "usr1", "--stop-signal", "USR1", "busybox", "sleep", "1000")
    lamina.run("pause", "usr1")
    lamina.run("kill", "-s", "HUP", "usr1")
    assert _state(lamina, "usr1")["Status"] == "paused"
    lamina.run("kill", "-s", "USR1", "usr1")
    assert _state(lamina, "usr1")["Status"] == "running"
    lamina.run("pause", "usr1")
    lamina.run("kill", "usr1")  # SIGKILL
    assert lamina.out("wait", "usr1") == "137\n"  # not left frozen with the kill pending
    state = _state(lamina, "usr1")
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)


def test_commit_pauses_a_running_container_and_resumes_it(lamina: Lamina) -> None:
    lamina.run("run", "-d", "--name", "ctr", "busybox", "sh", "-c", "echo x > /made; sleep 1000")
    deadline = time.monotonic() + 10
    while "A /made" not in lamina.out("diff", "ctr") and time.monotonic() < deadline:
        time.sleep(0.05)
    lamina.run("commit", "ctr", "snap")
    assert _state(lamina, "ctr")["Status"] == "running"  # resumed after the commit
    lamina.run("commit", "--pause=false", "ctr", "snap2")
    assert _state(lamina, "ctr")["Status"] == "running"
    lamina.run("pause", "ctr")
    lamina.run("commit", "-p", "ctr", "snap3")
    assert _state(lamina, "ctr")["Status"] == "paused"  # it was paused before: left paused
    for image in ("snap", "snap2", "snap3"):
        assert lamina.out("run", "--rm", image, "cat", "/made") == "x\n"
    lamina.run("rm", "-f", "ctr")
