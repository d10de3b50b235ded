"""``lamina exec`` end to end: the real command, real runc, the busybox fixture on tmpfs.

Expected values come from inside the container (its files, env, ids, tty) and from Docker's
documented exec behaviour: the exit status propagates, 126 for a command that cannot be run
(not there, not executable, an unknown user or working dir: docker 20.10's exec status), 1
when there is no running container to run it in.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]


class Lamina:
    def __init__(self, root: Path) -> None:
        self.base = [sys.executable, "-m", "lamina", "--root", str(root)]

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.base, *args],
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def out(self, *args: str) -> str:
        r = self.run(*args)
        assert r.returncode == 0, r.stderr
        return r.stdout


@pytest.fixture
def lamina(shm_tmp: Path, busybox_rootfs_tar: Path) -> Iterator[Lamina]:
    lam = Lamina(shm_tmp / "root")
    lam.out("import", "--change", 'CMD ["/bin/sh"]', str(busybox_rootfs_tar), "busybox")
    yield lam
    ids = lam.out("ps", "-aq", "--no-trunc").split()
    if ids:
        lam.out("rm", "-f", "-v", *ids)
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        assert str(shm_tmp / "root") + "/" not in f.read()


def _wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_exec_runs_in_the_container(lamina: Lamina) -> None:
    lamina.out(
        "run", "-d", "--name", "box", "-e", "FOO=from-run", "-v", "data:/data", "busybox",
        "sh", "-c", "echo state > /state; printf '#!/bin/sh\\necho tool $1\\n' > /data/tool; "
        "chmod +x /data/tool; exec sleep 300",
    )  # fmt: skip
    # The container's files and env, and its mount namespace (a program in a volume).
    deadline = time.monotonic() + 10
    while lamina.run("exec", "box", "cat", "/state").stdout != "state\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert lamina.out("exec", "box", "sh", "-c", "echo $FOO $HOME") == "from-run /root\n"
    assert lamina.out("exec", "-e", "FOO=over", "box", "sh", "-c", "echo $FOO") == "over\n"
    assert lamina.out("exec", "box", "/data/tool", "x") == "tool x\n"
    # The user is resolved in the image; the working dir is set.
    assert lamina.out("exec", "-u", "nobody", "-w", "/tmp", "box", "sh", "-c", "id -u; pwd") == (
        "65534\n/tmp\n"
    )
    # Same pid namespace: the container's init (sleep) is pid 1 there.
    assert lamina.out("exec", "box", "cat", "/proc/1/cmdline").startswith("sleep")
    # Exit status propagates; stdin only with -i.
    assert lamina.run("exec", "box", "sh", "-c", "exit 7").returncode == 7
    assert lamina.run("exec", "-i", "box", "cat", stdin="piped\n").stdout == "piped\n"
    assert lamina.run("exec", "box", "cat", stdin="piped\n").stdout == ""
    # docker 20.10's exec exits 126 for whatever keeps the command from running, with the
    # reason once.
    r = lamina.run("exec", "box", "nosuchcmd")
    assert r.returncode == 126 and "nosuchcmd" in r.stderr and "not found" in r.stderr
    r = lamina.run("exec", "box", "/etc/passwd")
    assert r.returncode == 126 and "permission denied" in r.stderr
    r = lamina.run("exec", "-u", "ghost", "box", "true")
    assert r.returncode == 126 and "ghost" in r.stderr
    r = lamina.run("exec", "-w", "/nonexist", "box", "true")
    assert r.returncode == 126 and r.stderr.count("\n") == 1
    assert 'chdir to cwd ("/nonexist") set in config.json failed: no such file' in r.stderr
    r = lamina.run("exec", "-w", "/etc/passwd", "box", "true")
    assert r.returncode == 126 and r.stderr.count("\n") == 1
    assert 'chdir to cwd ("/etc/passwd") set in config.json failed: not a directory' in r.stderr
    # -it with a stdin that is not a terminal is refused, as Docker does (status 1).
    r = lamina.run("exec", "-it", "box", "true", stdin="")
    assert r.returncode == 1 and "not a TTY" in r.stderr
    # The container is still running after all of that; a stopped one refuses exec.
    assert lamina.out("inspect", "-f", "{{.State.Status}}", "box") == "running\n"
    lamina.out("stop", "-t", "1", "box")
    r = lamina.run("exec", "box", "true")
    assert r.returncode == 1 and "is not running" in r.stderr
    r = lamina.run("exec", "ghost", "true")
    assert r.returncode == 1 and "no such container" in r.stderr


def test_exec_forwards_term_and_reports_the_trapped_exit(lamina: Lamina) -> None:
    lamina.out("run", "-d", "--name", "box", "busybox", "sleep", "300")
    merged = Path(lamina.out("inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", "box").strip())
    script = "trap 'exit 3' TERM; touch /ready; while :; do sleep 0.1; done"
    proc = subprocess.Popen(
        [*lamina.base, "exec", "box", "sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # no terminal: the CLI is the only way a signal gets in
    )
    try:
        _wait_for(merged / "ready")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(shutil.which("script") is None, reason="script(1) is needed for a pty")
def test_exec_tty_gives_a_terminal(lamina: Lamina) -> None:
    lamina.out("run", "-d", "--name", "box", "busybox", "sleep", "300")
    cmd = " ".join([*lamina.base, "exec", "-t", "box", "sh", "-c", "'tty; echo $TERM; exit 4'"])
    r = subprocess.run(
        ["script", "-qec", cmd, "/dev/null"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "TERM": "dumb"},
    )
    lines = r.stdout.replace("\r", "").split()
    assert r.returncode == 4, r.stdout + r.stderr
    assert any(line.startswith("/dev/pts/") for line in lines)
    assert "xterm" in lines
    # Without any terminal to relay to, -t falls back to pipes (as `run -t` does).
    r2 = lamina.run("exec", "-t", "box", "sh", "-c", "tty; exit 4")
    assert r2.returncode == 4 and "not a tty" in r2.stdout


def test_exec_detached(lamina: Lamina, shm_tmp: Path) -> None:
    # docker 20.10 `exec -d`: nothing printed, status 0 at once whatever the command's own
    # status; the process runs on in the container (top shows it) and its output goes
    # nowhere (not to the log); a command that cannot start is the daemon's error, status 1.
    lamina.out("run", "-d", "--name", "box", "busybox", "sleep", "300")
    started = time.monotonic()
    r = lamina.run("exec", "-d", "box", "sh", "-c", "echo hi; echo err >&2; sleep 30")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert time.monotonic() - started < 10
    assert lamina.run("exec", "-d", "box", "sh", "-c", "exit 3").returncode == 0
    assert lamina.run("exec", "-d", "-u", "nobody", "box", "sleep", "31").returncode == 0
    top = lamina.out("top", "box")
    assert "sleep 30" in top and "sleep 31" in top and "nobody" in top
    lamina.out("exec", "-d", "box", "sh", "-c", "echo done > /tmp/out")
    deadline = time.monotonic() + 10
    while lamina.run("exec", "box", "cat", "/tmp/out").stdout != "done\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert lamina.out("logs", "box") == ""
    for args in (("nosuchcmd",), ("/etc",), ("-u", "ghost", "true"), ("-w", "/nope", "true")):
        r = lamina.run("exec", "-d", *args[:-1], "box", args[-1])
        assert r.returncode == 1 and r.stdout == "" and r.stderr.count("\n") == 1, (args, r)
    assert "executable file not found" in lamina.run("exec", "-d", "box", "nosuchcmd").stderr
    lamina.out("stop", "-t", "1", "box")
    r = lamina.run("exec", "-d", "box", "true")
    assert r.returncode == 1 and "is not running" in r.stderr
