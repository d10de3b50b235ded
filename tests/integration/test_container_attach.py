"""``lamina attach`` and the detach keys, as Docker 20.10 has them: the real command, real runc,
a pseudo-terminal as the user's terminal where a terminal matters.

Expected values come from Docker (each test says what docker 20.10 did with the same steps,
and ``test_detach_flow_matches_docker`` runs both side by side where dockerd is installed), the
kernel's pty line discipline, and the host's process table. Waiting is polling with deadlines
on what can be observed: a prompt on the terminal, a line of output, the clients a shim has
taken on its attach socket.
"""

from __future__ import annotations

import os
import select
import signal
import stat
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_containers import wait_attached
from test_tty import Lamina, Terminal, a_terminal, lamina_with_busybox  # noqa: F401 (fixtures)

from lamina.testing.peers import DOCKER_CLIENT, DockerDaemon

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]

CTRL_P_CTRL_Q = b"\x10\x11"


def _spawn(term: Terminal, argv: list[str]) -> subprocess.Popen[bytes]:
    """``argv`` with the terminal as stdin and stdout, and stderr apart (Docker's detach
    message goes there)."""
    return subprocess.Popen(argv, stdin=term.slave, stdout=term.slave, stderr=subprocess.PIPE)


def _ended(proc: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    """Its exit status and what it wrote on stderr."""
    code = proc.wait(timeout=30)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    return code, err


def _readline(stream: Any, timeout: float = 20) -> bytes:
    """A line from a pipe, or a failure after ``timeout`` seconds (never a hang)."""
    fd = stream.fileno()
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], f"no line; got {line!r}"
        byte = os.read(fd, 1)
        assert byte, f"end of output; got {line!r}"
        line += byte
    return line


def _logged(lam: Lamina, name: str, text: str) -> None:
    deadline = time.monotonic() + 20
    while text not in lam.out("logs", name):
        assert time.monotonic() < deadline, f"{text!r} never logged"
        time.sleep(0.05)


def test_attach_types_into_run_dit_and_detaches(lamina: Lamina, terminal: Terminal) -> None:
    """docker 20.10: ``run -dit busybox sh``, ``attach``: what is typed runs in the shell;
    ctrl-p ctrl-q ends the attach with "read escape sequence" on stderr and status 1, the
    container still running; the next attach ends with the shell's own exit status."""
    lamina.run("run", "-dit", "--name", "bg", "busybox", "sh")
    before = termios.tcgetattr(terminal.slave)
    proc = _spawn(terminal, [*lamina.argv, "attach", "bg"])
    os.write(terminal.master, b"echo $((6*7))\r")  # read once the shim takes our input
    terminal.expect(b"\r\n42\r\n")
    os.write(terminal.master, CTRL_P_CTRL_Q)
    assert _ended(proc) == (1, b"read escape sequence\n")
    assert termios.tcgetattr(terminal.slave) == before  # raw while attached, then restored
    assert lamina.state("bg")["Status"] == "running"
    proc = _spawn(terminal, [*lamina.argv, "attach", "bg"])
    os.write(terminal.master, b"exit 3\r")
    assert _ended(proc) == (3, b"")
    state = lamina.state("bg")
    assert (state["Status"], state["ExitCode"]) == ("exited", 3)


def test_run_it_detaches_and_start_ai_attaches(lamina: Lamina, terminal: Terminal) -> None:
    """docker 20.10: ctrl-p ctrl-q in ``run -it`` (``--rm`` too) leaves it running, prints
    nothing and exits 0; ``--detach-keys x,y`` of attach: an "x" that the next key does not
    follow up is typed as it was; ``start -ai`` of the running container attaches, and its
    detach is a quiet 0 too. The --rm container is removed once it has exited."""
    proc = _spawn(terminal, [*lamina.argv, "run", "--rm", "-it", "--name", "fg", "busybox", "sh"])
    terminal.expect(b"# ")
    os.write(terminal.master, CTRL_P_CTRL_Q)
    assert _ended(proc) == (0, b"")
    assert lamina.state("fg")["Status"] == "running"

    proc = _spawn(terminal, [*lamina.argv, "attach", "--detach-keys", "x,y", "fg"])
    os.write(terminal.master, b"echo xz\r")
    terminal.expect(b"\r\nxz\r\n")
    os.write(terminal.master, b"xy")
    assert _ended(proc) == (1, b"read escape sequence\n")

    proc = _spawn(terminal, [*lamina.argv, "start", "-ai", "fg"])
    os.write(terminal.master, b"echo started-again\r")
    terminal.expect(b"\r\nstarted-again\r\n")
    os.write(terminal.master, CTRL_P_CTRL_Q)
    assert _ended(proc) == (0, b"")
    assert lamina.state("fg")["Status"] == "running"

    proc = _spawn(terminal, [*lamina.argv, "attach", "fg"])
    os.write(terminal.master, b"exit 4\r")
    assert _ended(proc) == (4, b"")
    assert lamina.out("ps", "-aq") == ""  # run --rm: removed at the first look after its end


def test_start_ai_of_a_created_container_honours_detach_keys(
    lamina: Lamina, terminal: Terminal
) -> None:
    """docker 20.10: ``create -it`` then ``start -ai --detach-keys ctrl-x``: ctrl-x detaches
    (status 0), ctrl-p is an ordinary key there; the container runs on."""
    lamina.run("create", "-it", "--name", "ct", "busybox", "sh")
    proc = _spawn(terminal, [*lamina.argv, "start", "-ai", "--detach-keys", "ctrl-x", "ct"])
    terminal.expect(b"# ")
    os.write(terminal.master, b"\x10\x11echo still\r")
    terminal.expect(b"\r\nstill\r\n")
    os.write(terminal.master, b"\x18")
    assert _ended(proc) == (0, b"")
    assert lamina.state("ct")["Status"] == "running"
    r = lamina.run("exec", "ct", "sh", "-c", "ls -l /proc/1/fd/0")
    assert "/dev/pts/0" in r.stdout  # its terminal is still its own


def test_attach_without_a_terminal(lamina: Lamina) -> None:
    """docker 20.10: every client attached gets the output from then on, stdout and stderr
    apart, and the exit status; one that leaves changes nothing for the container or the
    others. The socket is root's alone (0600) and gone once the container has ended."""
    script = "while [ ! -e /go ]; do sleep 0.05; done; echo out; echo err >&2; exit 3"
    cid = lamina.out("run", "-d", "--name", "nt", "busybox", "sh", "-c", script).strip()
    sock = lamina.root / "runtime" / "shim" / cid / "attach.sock"
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    pipes: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": subprocess.PIPE}
    clients = [
        subprocess.Popen([*lamina.argv, "attach", "nt"], stderr=subprocess.PIPE, **pipes)
        for _ in range(3)
    ]
    wait_attached(lamina, "nt", clients[0], clients=3)
    clients[2].kill()
    clients[2].communicate()
    lamina.run("exec", "nt", "touch", "/go")
    for client in clients[:2]:
        out, err = client.communicate(timeout=30)
        assert (client.returncode, out, err) == (3, b"out\n", b"err\n")
    assert lamina.state("nt")["ExitCode"] == 3
    assert not sock.exists()


def test_stdin_of_a_detached_i_container(lamina: Lamina) -> None:
    """docker 20.10: ``run -di`` keeps the container's stdin open with nobody attached, and
    after a client's input has ended (StdinOnce false: ``echo x | docker attach`` leaves it
    running); ``create -i`` then ``start`` is StdinOnce: the end of the attached input is
    the end of the container's."""
    script = 'while read l; do echo "got:$l"; done; echo eof; exit 4'
    lamina.run("run", "-di", "--name", "cat", "busybox", "sh", "-c", script)
    for word in (b"one", b"two"):
        client = subprocess.Popen(
            [*lamina.argv, "attach", "cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write(word + b"\n")
        client.stdin.close()  # its end of input: not the container's
        assert _readline(client.stdout) == b"got:" + word + b"\n"
        client.kill()  # a client leaving: the container does not notice
        client.wait()
        client.stdout.close()
        assert lamina.state("cat")["Status"] == "running"
    assert lamina.out("inspect", "-f", "{{.Config.StdinOnce}}", "cat") == "false\n"

    lamina.run("create", "-i", "--name", "once", "busybox", "sh", "-c", script)
    lamina.run("start", "once")
    assert lamina.out("inspect", "-f", "{{.Config.StdinOnce}}", "once") == "true\n"
    r = subprocess.run(
        [*lamina.argv, "attach", "once"],
        input=b"x\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (r.returncode, r.stdout) == (4, b"got:x\neof\n")


def test_sig_proxy(lamina: Lamina) -> None:
    """docker 20.10: a TERM to ``attach`` reaches a container without a terminal (its trap
    answers, and attach exits with its status); with ``--sig-proxy=false``, or for a
    container with a terminal, attach dies of it and the container runs on."""
    script = "trap 'echo got-term; exit 7' TERM; echo up; while :; do sleep 0.05; done"
    for name, flags in (("sp", ()), ("nosp", ("--sig-proxy=false",)), ("tsp", ("-t",))):
        run_flags = ("-t",) if name == "tsp" else ()
        lamina.run("run", "-d", *run_flags, "--name", name, "busybox", "sh", "-c", script)
        _logged(lamina, name, "up")
        attach_flags = tuple(f for f in flags if f != "-t")
        client = subprocess.Popen(
            [*lamina.argv, "attach", "--no-stdin", *attach_flags, name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        wait_attached(lamina, name, client)
        client.send_signal(signal.SIGTERM)
        out, _ = client.communicate(timeout=30)
        if name == "sp":
            assert (client.returncode, out) == (7, b"got-term\n")
            assert lamina.state(name)["ExitCode"] == 7
        else:
            assert client.returncode == -signal.SIGTERM
            assert lamina.state(name)["Status"] == "running"


@pytest.fixture
def docker_busybox(dockerd: DockerDaemon, busybox_rootfs_tar: Path) -> Iterator[DockerDaemon]:
    dockerd.run("import", str(busybox_rootfs_tar), "bbattach")
    yield dockerd
    dockerd.run("rm", "-f", "dflow", "dflow2", check=False)
    dockerd.run("rmi", "bbattach", check=False)


def _detach_flow(argv: list[str], image: str, env: dict[str, str] | None) -> list[object]:
    """What a user sees of attach and the detach keys, tool-independent: statuses, stderr
    and the container's status after each step."""
    seen: list[object] = []

    def status(name: str) -> str:
        r = subprocess.run(
            [*argv, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return r.stdout.strip()

    def attached(args: list[str], keys: bytes, name: str = "dflow") -> None:
        term = Terminal()
        try:
            proc = subprocess.Popen(
                [*argv, *args],
                stdin=term.slave,
                stdout=term.slave,
                stderr=subprocess.PIPE,
                env=env,
            )
            os.write(term.master, b"echo $((6*7))\r")
            term.expect(b"\r\n42\r\n")
            os.write(term.master, keys)
            seen.append((args[0], *_ended(proc), status(name)))
        finally:
            term.close()

    subprocess.run(
        [*argv, "run", "-dit", "--name", "dflow", image, "sh"],
        check=True,
        capture_output=True,
        env=env,
    )
    attached(["attach", "dflow"], CTRL_P_CTRL_Q)
    attached(["attach", "--detach-keys", "ctrl-a,a", "dflow"], b"\x01a")
    attached(["start", "-ai", "dflow"], CTRL_P_CTRL_Q)
    attached(["run", "-it", "--name", "dflow2", image, "sh"], CTRL_P_CTRL_Q, name="dflow2")
    attached(["attach", "dflow"], b"exit 5\r")
    r = subprocess.run(
        [*argv, "attach", "dflow"], capture_output=True, text=True, env=env, check=False
    )
    seen.append((r.returncode, r.stderr.strip().removeprefix("error: ")))
    return seen


@pytest.mark.needs_peer("docker", "dockerd")
def test_detach_flow_matches_docker(lamina: Lamina, docker_busybox: DockerDaemon) -> None:
    theirs = _detach_flow([DOCKER_CLIENT], "bbattach", docker_busybox.env)
    ours = _detach_flow(lamina.argv, "busybox", None)
    assert ours == theirs
    assert theirs == [
        ("attach", 1, b"read escape sequence\n", "running 0"),
        ("attach", 1, b"read escape sequence\n", "running 0"),
        ("start", 0, b"", "running 0"),
        ("run", 0, b"", "running 0"),
        ("attach", 5, b"", "exited 5"),
        (1, "You cannot attach to a stopped container, start it first"),
    ]
