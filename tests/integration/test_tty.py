"""``-t`` as Docker gives it: a real pseudo-terminal with or without ``-i``, attached or
detached, with or without a terminal on lamina's own side.

Expected values come from outside lamina: the container's own view (``tty``, ``test -t``,
``stty size``), the kernel's pty line discipline (ONLCR turns "\\n" into "\\r\\n", as
``docker run -t`` output and ``docker logs`` show it), Docker's documented behaviour (one
``stdout`` stream in the json-file log, the exit status passed on, "the input device is not
a TTY"), and the host's process table and mountinfo (nothing outlives a test).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]

LAMINA = [sys.executable, "-m", "lamina"]


@dataclass
class Lamina:
    root: Path

    @property
    def argv(self) -> list[str]:
        return [*LAMINA, "--root", str(self.root), "--storage-driver", "overlay2"]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The command's status and output, decoded but with "\r\n" kept as it came."""
        raw = subprocess.run(
            [*self.argv, *args],
            capture_output=True,
            timeout=60,
            check=False,
            cwd=self.root.parent,  # a stray relative path lands in the test's tmp dir
            stdin=subprocess.DEVNULL,
        )
        r = subprocess.CompletedProcess(
            raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode()
        )
        if check and r.returncode != 0:
            raise AssertionError(f"lamina {' '.join(args)} -> {r.returncode}\n{r.stderr}")
        return r

    def out(self, *args: str) -> str:
        return self.run(*args).stdout

    def state(self, name: str) -> dict[str, object]:
        raw = self.out("inspect", "-f", "{{json .State}}", name)
        state: dict[str, object] = json.loads(raw)
        return state

    def wait_exited(self, name: str, timeout: float = 20) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while (state := self.state(name))["Status"] == "running":
            assert time.monotonic() < deadline, f"{name} still running"
            time.sleep(0.05)
        return state


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]


@pytest.fixture(name="lamina")
def lamina_with_busybox(shm_tmp: Path, busybox_rootfs_tar: Path) -> Iterator[Lamina]:
    lam = Lamina(root=shm_tmp / "root")
    lam.run("import", "--change", 'CMD ["/bin/sh"]', str(busybox_rootfs_tar), "busybox")
    yield lam
    ids = lam.out("ps", "-aq", "--no-trunc").split()
    if ids:
        lam.run("rm", "-f", *ids)
    # No shim, runc or container process, no mount, no runc state may outlive a test.
    deadline = time.monotonic() + 10
    while _processes_mentioning(str(lam.root)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_mentioning(str(lam.root)) == []
    assert _mounts_under(lam.root) == []
    runc = lam.root / "runtime" / "runc"
    assert not runc.exists() or list(runc.iterdir()) == []


class Terminal:
    """A pty whose slave end is a launcher's stdio; the test reads and types on the master."""

    def __init__(self, rows: int = 24, cols: int = 80) -> None:
        self.master, self.slave = pty.openpty()
        self.resize(rows, cols)
        self.seen = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def spawn(self, argv: list[str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(argv, stdin=self.slave, stdout=self.slave, stderr=self.slave)
        return proc

    def expect(self, needle: bytes, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{needle!r} never came; got {self.seen!r}"
            if select.select([self.master], [], [], left)[0]:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # EIO: nobody holds the slave any more
                    break
        assert needle in self.seen, f"{needle!r} never came; got {self.seen!r}"
        return self.seen

    def drain(self) -> bytes:
        os.close(self.slave)
        self.slave = -1
        with contextlib.suppress(OSError):
            while select.select([self.master], [], [], 5)[0]:
                chunk = os.read(self.master, 4096)
                if not chunk:
                    break
                self.seen += chunk
        return self.seen

    def close(self) -> None:
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)


@pytest.fixture(name="terminal")
def a_terminal() -> Iterator[Terminal]:
    t = Terminal()
    yield t
    t.close()


def test_run_t_without_a_terminal_anywhere(lamina: Lamina) -> None:
    """lamina's stdio are pipes: the process still gets a terminal, its output is relayed."""
    r = lamina.run("run", "--rm", "-t", "busybox", "tty", check=False)
    assert (r.returncode, r.stdout) == (0, "/dev/pts/0\r\n")
    r = lamina.run(
        "run", "--name", "yes", "-t", "busybox", "sh", "-c",
        "test -t 0 && test -t 1 && test -t 2 && echo yes; echo $TERM; exit 3",
        check=False,
    )  # fmt: skip
    assert (r.returncode, r.stdout, r.stderr) == (3, "yes\r\nxterm\r\n", "")
    # the same bytes are in the log, as one stream
    assert lamina.out("logs", "yes") == "yes\r\nxterm\r\n"
    assert lamina.state("yes")["ExitCode"] == 3
    assert lamina.out("inspect", "-f", "{{.Config.Tty}}", "yes").strip() == "true"


def test_run_t_in_a_terminal_takes_its_size(lamina: Lamina, terminal: Terminal) -> None:
    terminal.resize(33, 99)
    proc = terminal.spawn(
        [*lamina.argv, "run", "--rm", "-t", "busybox", "sh", "-c", "stty size; tty; exit 4"]
    )
    assert proc.wait(timeout=30) == 4
    out = terminal.drain()
    # The launcher's terminal is not raw without -i: its own ONLCR adds a second "\r".
    assert b"33 99\r\r\n/dev/pts/0\r\r\n" in out


def test_run_it_relays_input_and_restores_the_terminal(lamina: Lamina, terminal: Terminal) -> None:
    before = termios.tcgetattr(terminal.slave)
    proc = terminal.spawn([*lamina.argv, "run", "--rm", "-it", "busybox", "sh"])
    terminal.expect(b"# ")
    os.write(terminal.master, b"echo $((6*7)); tty\r")
    terminal.expect(b"42\r\n/dev/pts/0\r\n")
    os.write(terminal.master, b"exit 9\r")
    assert proc.wait(timeout=30) == 9
    # the launcher put its terminal in raw mode while attached (echo came from the
    # container's pty, with its "\r\n") and gave it back as it was
    assert termios.tcgetattr(terminal.slave) == before


def test_window_size_follows_the_launchers_terminal(lamina: Lamina, terminal: Terminal) -> None:
    script = "trap 'stty size; exit 3' WINCH; echo ready; while :; do sleep 0.05; done"
    proc = terminal.spawn([*lamina.argv, "run", "--rm", "-t", "busybox", "sh", "-c", script])
    terminal.expect(b"ready")
    terminal.resize(40, 120)
    os.kill(proc.pid, signal.SIGWINCH)  # what the kernel sends the launcher's process group
    assert proc.wait(timeout=30) == 3
    assert b"40 120" in terminal.drain()


def test_run_t_passes_ctrl_c_on(lamina: Lamina) -> None:
    """-t without -i: lamina's terminal is not raw, so Ctrl-C is a SIGINT to lamina, which
    hands it to the container (Docker's sig-proxy)."""
    script = "trap 'echo got-int; exit 5' INT; echo ready; while :; do sleep 0.05; done"
    proc = subprocess.Popen(
        [*lamina.argv, "run", "--rm", "-t", "busybox", "sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\r\n"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 5
    assert proc.stdout.read() == b"got-int\r\n"
    proc.stdout.close()


def test_run_d_t_logs_one_stdout_stream(lamina: Lamina) -> None:
    cid = lamina.out(
        "run", "-d", "-t", "--name", "bg", "busybox", "sh", "-c",
        "tty; echo to-stderr >&2; test -t 1 && echo yes; exit 7",
    ).strip()  # fmt: skip
    state = lamina.wait_exited("bg")
    assert (state["Status"], state["ExitCode"]) == ("exited", 7)
    assert lamina.out("logs", "bg") == "/dev/pts/0\r\nto-stderr\r\nyes\r\n"
    log = Path(lamina.out("inspect", "-f", "{{.LogPath}}", "bg").strip())
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["log"] for e in entries] == ["/dev/pts/0\r\n", "to-stderr\r\n", "yes\r\n"]
    assert {e["stream"] for e in entries} == {"stdout"}
    assert lamina.out("ps", "-a", "-q", "--no-trunc").split() == [cid]
    # nothing of runc's is left once the shim has seen it end, and no console socket
    assert not (lamina.root / "runtime" / "runc" / cid).exists()
    assert not any(p.is_socket() for p in log.parent.iterdir())


def test_run_d_t_keeps_its_terminal_and_stops(lamina: Lamina) -> None:
    lamina.run("run", "-d", "-t", "--name", "long", "busybox", "sh", "-c",
               "echo up; while :; do sleep 0.05; done")  # fmt: skip
    deadline = time.monotonic() + 20
    while lamina.out("logs", "long") != "up\r\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert lamina.state("long")["Status"] == "running"
    r = lamina.run("exec", "long", "sh", "-c", "ls -l /proc/1/fd/1")
    assert "/dev/pts/0" in r.stdout
    lamina.run("stop", "-t", "1", "long")  # sh as pid 1 ignores SIGTERM: SIGKILL after 1 s
    assert lamina.state("long")["ExitCode"] == 137
    lamina.run("start", "long")
    assert lamina.state("long")["Status"] == "running"
    lamina.run("rm", "-f", "long")  # the shim sees it killed, reaps it and cleans up runc's part
    assert lamina.out("ps", "-aq") == ""


def test_create_t_then_start(lamina: Lamina) -> None:
    lamina.run("create", "-t", "--name", "ct", "busybox", "sh", "-c", "tty; exit 2")
    assert lamina.out("start", "ct") == "ct\n"
    assert lamina.wait_exited("ct")["ExitCode"] == 2
    assert lamina.out("logs", "ct") == "/dev/pts/0\r\n"
    r = lamina.run("start", "-a", "ct", check=False)
    assert (r.returncode, r.stdout) == (2, "/dev/pts/0\r\n")
    assert lamina.out("logs", "ct") == "/dev/pts/0\r\n/dev/pts/0\r\n"


def test_attached_run_t_outlives_a_killed_launcher(lamina: Lamina) -> None:
    proc = subprocess.Popen(
        [*lamina.argv, "run", "-t", "--name", "orphan", "busybox", "sh", "-c",
         "echo started; sleep 1; echo after; exit 6"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"started\r\n"
    proc.kill()
    proc.wait()
    proc.stdout.close()  # the shim's copy to the launcher's stdout now fails; the log goes on
    state = lamina.wait_exited("orphan")
    assert (state["Status"], state["ExitCode"]) == ("exited", 6)
    assert lamina.out("logs", "orphan") == "started\r\nafter\r\n"


def test_it_refuses_a_stdin_that_is_not_a_terminal(lamina: Lamina) -> None:
    r = lamina.run("run", "--name", "nope", "-it", "busybox", "true", check=False)
    assert r.returncode == 1 and "the input device is not a TTY" in r.stderr  # Docker's 1
    assert lamina.out("ps", "-aq") == ""  # refused before anything was made
    lamina.run("create", "-it", "--name", "later", "busybox", "true")
    r = lamina.run("start", "-a", "-i", "later", check=False)
    assert r.returncode == 1 and "the input device is not a TTY" in r.stderr
    # -i alone still takes any stdin
    piped = subprocess.run(
        [*lamina.argv, "run", "--rm", "-i", "busybox", "cat"],
        input=b"piped\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (piped.returncode, piped.stdout) == (0, b"piped\n")
