"""Containers end to end, as a user types them: the real ``lamina`` command, real runc, the
busybox fixture, a tmpfs root per test.

Expected values come from outside lamina: Docker's documented ``docker diff`` output for the
issue's scenario (and podman's own ``diff`` where podman is installed), the kernel's view of the
upper dir (a 0:0 char device is a whiteout), the tar of a saved image, the host's filesystem.
Every test ends with no container left, no mount under its root and no runc state.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lamina.testing.peers import DockerDaemon, PodmanEnv

pytestmark = [pytest.mark.needs_root]

LAMINA = [sys.executable, "-m", "lamina"]


@dataclass
class Lamina:
    root: Path
    driver: str

    def run(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [*LAMINA, "--root", str(self.root), "--storage-driver", self.driver, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and r.returncode != 0:
            raise AssertionError(f"lamina {' '.join(args)} -> {r.returncode}\n{r.stderr}")
        return r

    def out(self, *args: str) -> str:
        return self.run(*args).stdout


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]


@contextlib.contextmanager
def _lamina(root: Path, driver: str, busybox: Path) -> Iterator[Lamina]:
    lam = Lamina(root=root, driver=driver)
    lam.run("import", "--change", 'CMD ["/bin/sh"]', str(busybox), "busybox")
    yield lam
    # Nothing may outlive a test: the suite's no-leaked-mounts rule.
    ids = lam.out("ps", "-aq", "--no-trunc").split()
    if ids:
        lam.run("rm", "-f", *ids)
    assert _mounts_under(lam.root) == []
    runc = lam.root / "runtime" / "runc"
    assert not runc.exists() or list(runc.iterdir()) == []


@pytest.fixture(name="lamina", params=["overlay2", "vfs"])
def lamina_on_both_drivers(
    request: pytest.FixtureRequest, shm_tmp: Path, busybox_rootfs_tar: Path
) -> Iterator[Lamina]:
    if request.param == "overlay2":
        request.applymarker(pytest.mark.needs_overlay)
    with _lamina(shm_tmp / "root", str(request.param), busybox_rootfs_tar) as lam:
        yield lam


@pytest.fixture
def overlay_lamina(shm_tmp: Path, busybox_rootfs_tar: Path) -> Iterator[Lamina]:
    """For what only overlay has (upper/lower dirs, whiteout devices) or peers compare."""
    with _lamina(shm_tmp / "root", "overlay2", busybox_rootfs_tar) as lam:
        yield lam


def test_run_prints_and_exits_with_the_container_status(lamina: Lamina) -> None:
    r = lamina.run("run", "--rm", "busybox", "sh", "-c", "echo hi")
    assert (r.returncode, r.stdout) == (0, "hi\n")
    assert lamina.out("ps", "-aq") == ""  # --rm removed it
    r = lamina.run("run", "busybox", "false", check=False)
    assert r.returncode == 1
    r = lamina.run("run", "busybox", "sh", "-c", "exit 42", check=False)
    assert r.returncode == 42
    states = [json.loads(line) for line in lamina.out("ps", "-a", "--format", "json").splitlines()]
    assert sorted(s["Status"].split(" ")[1] for s in states) == ["(1)", "(42)"]
    assert {s["State"] for s in states} == {"exited"}


def test_missing_command_is_127_and_left_created(lamina: Lamina) -> None:
    r = lamina.run("run", "--name", "nf", "busybox", "nosuchcmd", check=False)
    assert r.returncode == 127
    assert "nosuchcmd" in r.stderr and "not found" in r.stderr
    state = json.loads(lamina.out("inspect", "-f", "{{json .State}}", "nf"))
    assert state["Status"] == "created" and state["ExitCode"] == 127
    assert "nosuchcmd" in state["Error"]
    # docker 20.10's start, attached or not, exits 1 and records the same State.
    for attach in ([], ["-a"]):
        r = lamina.run("start", *attach, "nf", check=False)
        assert r.returncode == 1 and "nosuchcmd" in r.stderr and "not found" in r.stderr
        assert json.loads(lamina.out("inspect", "-f", "{{json .State}}", "nf")) == state
    r = lamina.run("run", "--rm", "busybox", "/etc/passwd", check=False)
    assert r.returncode == 126


DIFF_SCRIPT = "rm /bin/vi; echo a > /new; touch /etc/passwd"
# docker 20.10 on the same image prints exactly these (a changed dir before its children);
# sorted by path, which Docker's unordered output allows (formats.md §2.6).
DOCKER_DIFF = ["C /bin", "D /bin/vi", "C /etc", "C /etc/passwd", "A /new"]


def test_diff_against_the_init_layer(lamina: Lamina) -> None:
    lamina.run("run", "--name", "d1", "busybox", "sh", "-c", DIFF_SCRIPT)
    assert lamina.out("diff", "d1").splitlines() == DOCKER_DIFF
    lamina.run("create", "--name", "fresh", "busybox")
    assert lamina.out("diff", "fresh") == ""  # the init placeholders never show


@pytest.mark.needs_overlay
@pytest.mark.needs_peer("podman")
def test_diff_matches_podman(
    overlay_lamina: Lamina, busybox_rootfs_tar: Path, shm_tmp: Path
) -> None:
    penv = PodmanEnv.create(shm_tmp / "podman")
    try:
        penv.run("podman", "import", str(busybox_rootfs_tar), "localhost/bbdiff")
        penv.run("podman", "run", "--name", "pd", "localhost/bbdiff", "sh", "-c", DIFF_SCRIPT)
        theirs = penv.run("podman", "diff", "pd").stdout.decode().splitlines()
    finally:
        penv.run("podman", "rm", "-af", check=False)
        penv.reset()
    overlay_lamina.run("run", "--name", "d1", "busybox", "sh", "-c", DIFF_SCRIPT)
    ours = overlay_lamina.out("diff", "d1").splitlines()
    assert set(ours) == set(theirs)
    for lines in (ours, theirs):  # parents before children, in both
        for i, line in enumerate(lines):
            path = line[2:]
            parent = path.rsplit("/", 1)[0]
            if parent:
                assert any(earlier[2:] == parent for earlier in lines[:i]), (line, lines)


@pytest.mark.needs_overlay
@pytest.mark.needs_peer("docker", "dockerd")
def test_diff_matches_docker_20_10(
    overlay_lamina: Lamina, dockerd: DockerDaemon, busybox_rootfs_tar: Path
) -> None:
    dockerd.run("import", str(busybox_rootfs_tar), "bbdiff")
    try:
        dockerd.run("run", "--network", "none", "--name", "dd", "bbdiff", "sh", "-c", DIFF_SCRIPT)
        theirs = dockerd.run("diff", "dd").stdout.decode().splitlines()
    finally:
        dockerd.run("rm", "-f", "dd", check=False)
        dockerd.run("rmi", "bbdiff", check=False)
    overlay_lamina.run("run", "--name", "d1", "busybox", "sh", "-c", DIFF_SCRIPT)
    ours = overlay_lamina.out("diff", "d1").splitlines()
    assert sorted(ours) == sorted(theirs)
    assert ours == DOCKER_DIFF


@pytest.mark.needs_overlay
def test_whiteout_in_the_upper_dir_and_inspect_paths(overlay_lamina: Lamina) -> None:
    lam = overlay_lamina
    lam.run("run", "--name", "wh", "busybox", "rm", "/bin/vi")
    info = json.loads(lam.out("inspect", "wh"))[0]
    data = info["GraphDriver"]["Data"]
    assert info["GraphDriver"]["Name"] == "overlay2"
    assert info["Name"] == "/wh" and len(info["Id"]) == 64
    lowers = data["LowerDir"].split(":")
    upper = Path(data["UpperDir"])
    assert lowers[0] == str(upper.parent) + "-init/diff"
    image_data = json.loads(lam.out("inspect", "--type", "image", "busybox"))[0]["GraphDriver"]
    assert lowers[1:] == [image_data["Data"]["UpperDir"]]
    for key in ("UpperDir", "WorkDir", "MergedDir"):
        assert Path(data[key]).is_dir(), key
    for lower in lowers:
        assert Path(lower).is_dir()
    for key in ("ResolvConfPath", "HostnamePath", "HostsPath", "LogPath"):
        assert Path(info[key]).is_file(), key
    st = os.lstat(upper / "bin" / "vi")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0  # overlayfs' whiteout
    init = Path(lowers[0])
    assert (init / "etc" / "hostname").is_file() and (init / ".dockerenv").is_file()
    assert os.readlink(init / "etc" / "mtab") == "/proc/mounts"
    assert stat.S_IMODE(upper.parent.stat().st_mode) in (0o700, 0o710)


def test_commit_makes_a_whiteout_layer(lamina: Lamina, shm_tmp: Path) -> None:
    lamina.run("run", "--name", "d1", "busybox", "sh", "-c", DIFF_SCRIPT)
    image_id = lamina.out("commit", "-m", "no vi", "-c", 'CMD ["/bin/sh"]', "d1", "newimg")
    assert image_id.startswith("sha256:")
    r = lamina.run("run", "--rm", "newimg", "ls", "/bin/vi", check=False)
    assert r.returncode == 1 and "No such file" in r.stderr
    assert lamina.out("run", "--rm", "newimg", "cat", "/new") == "a\n"
    archive = shm_tmp / "newimg.tar"
    lamina.run("save", "-o", str(archive), "newimg")
    with tarfile.open(archive) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        top = tf.extractfile(manifest[0]["Layers"][-1])
        assert top is not None
        with tarfile.open(fileobj=top) as layer:
            names = {m.name.rstrip("/") for m in layer}
        config = json.load(tf.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
    assert {"bin/.wh.vi", "new", "etc/passwd"} <= names
    assert not any(n.startswith(("etc/hostname", "etc/hosts", ".dockerenv", "proc")) for n in names)
    assert config["history"][-1]["comment"] == "no vi"
    assert config["config"]["Cmd"] == ["/bin/sh"]
    assert len(config["rootfs"]["diff_ids"]) == 2


@pytest.mark.needs_overlay
@pytest.mark.needs_peer("podman")
def test_committed_image_loads_in_podman(overlay_lamina: Lamina, shm_tmp: Path) -> None:
    overlay_lamina.run("run", "--name", "d1", "busybox", "sh", "-c", DIFF_SCRIPT)
    overlay_lamina.run("commit", "d1", "localhost/newimg:latest")
    archive = shm_tmp / "newimg.tar"
    overlay_lamina.run("save", "-o", str(archive), "localhost/newimg:latest")
    penv = PodmanEnv.create(shm_tmp / "podman")
    try:
        penv.run("podman", "load", "-i", str(archive))
        r = penv.run("podman", "run", "--rm", "localhost/newimg", "ls", "/bin/vi", check=False)
        assert r.returncode != 0
        r = penv.run("podman", "run", "--rm", "localhost/newimg", "cat", "/new")
        assert r.stdout == b"a\n"
    finally:
        penv.run("podman", "rm", "-af", check=False)
        penv.reset()


def test_named_volume_outlives_containers(lamina: Lamina) -> None:
    lamina.run("run", "--name", "w1", "-v", "data:/data", "busybox", "sh", "-c", "echo v > /data/f")
    assert lamina.out("run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f") == "v\n"
    info = json.loads(lamina.out("volume", "inspect", "data"))[0]
    assert list(info) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"]
    assert info["Mountpoint"] == str(lamina.root / "volumes" / "data" / "_data")
    # docker 20.10: "Options": null for a volume a container's -v made ({} after volume create)
    assert (info["Driver"], info["Scope"], info["Labels"], info["Options"]) == (
        "local",
        "local",
        {},
        None,
    )
    assert (Path(info["Mountpoint"]) / "f").read_text() == "v\n"
    mounts = json.loads(lamina.out("inspect", "-f", "{{json .Mounts}}", "w1"))
    assert mounts == [
        {
            "Type": "volume",
            "Name": "data",
            "Source": info["Mountpoint"],
            "Destination": "/data",
            "Driver": "local",
            "Mode": "z",
            "RW": True,
            "Propagation": "",
        }
    ]
    r = lamina.run("volume", "rm", "data", check=False)
    assert r.returncode == 1 and "w1" in r.stderr
    assert lamina.out("diff", "w1").splitlines() == ["A /data"]  # the mount point
    lamina.run("rm", "w1")
    assert (Path(info["Mountpoint"]) / "f").read_text() == "v\n"  # rm leaves the volume
    lamina.run("volume", "rm", "data")
    assert not Path(info["Mountpoint"]).exists()


def test_volume_prefill_anonymous_volumes_and_rm_v(lamina: Lamina) -> None:
    # A named volume on a path the image has is filled with the image's content, as Docker.
    assert "root:" in lamina.out(
        "run", "--rm", "-v", "etcvol:/etc", "busybox", "cat", "/etc/passwd"
    )
    assert (lamina.root / "volumes" / "etcvol" / "_data" / "passwd").is_file()
    # An image VOLUME becomes an anonymous volume; rm -v takes it, plain rm leaves it.
    lamina.run("create", "--name", "base", "busybox")
    lamina.run("commit", "-c", "VOLUME /cache", "base", "withvol")
    lamina.run("run", "--name", "a1", "withvol", "sh", "-c", "echo x > /cache/x")
    anon = [v for v in lamina.out("volume", "ls", "-q").split() if v != "etcvol"]
    assert len(anon) == 1 and len(anon[0]) == 64
    labels = json.loads(lamina.out("volume", "inspect", anon[0]))[0]["Labels"]
    assert labels == {"com.docker.volume.anonymous": ""}
    lamina.run("rm", "-v", "a1")
    assert lamina.out("volume", "ls", "-q").split() == ["etcvol"]
    lamina.run("run", "--name", "a2", "withvol", "true")
    lamina.run("rm", "a2")
    assert lamina.out("volume", "prune").startswith("Deleted Volumes:")
    assert lamina.out("volume", "ls", "-q").split() == ["etcvol"]  # named ones stay
    # docker 20.10's words, with the bytes the data held (etcvol has busybox's /etc)
    out = lamina.out("volume", "prune", "--all").splitlines()
    assert out[:3] == ["Deleted Volumes:", "etcvol", ""]
    assert re.fullmatch(r"Total reclaimed space: [1-9][0-9.]*k?B", out[3]), out
    assert lamina.out("volume", "prune") == "Total reclaimed space: 0B\n"


def test_bind_mounts(lamina: Lamina, shm_tmp: Path) -> None:
    host = shm_tmp / "host"
    host.mkdir()
    (host / "in").write_text("from host\n")
    out = lamina.out("run", "--rm", "-v", f"{host}:/mnt:ro", "busybox", "cat", "/mnt/in")
    assert out == "from host\n"
    r = lamina.run(
        "run", "--rm", "-v", f"{host}:/mnt:ro", "busybox", "touch", "/mnt/x", check=False
    )
    assert r.returncode != 0 and not (host / "x").exists()
    single = host / "in"  # a file bind gets a file mount point, not a dir
    assert lamina.out(
        "run", "--rm", "-v", f"{single}:/etc/in.conf", "busybox", "cat", "/etc/in.conf"
    ) == ("from host\n")
    r = lamina.run("run", "-v", f"{shm_tmp}/nope:/mnt", "busybox", "true", check=False)
    assert r.returncode == 125 and "bind source path does not exist" in r.stderr
    assert lamina.out("ps", "-aq") == ""


@pytest.mark.needs_overlay
@pytest.mark.parametrize(
    "bad",
    ["../x", "a/b", "..", "x", "v" * 256],
    ids=lambda b: b if len(b) < 9 else f"{len(b)}-chars",
)
def test_bad_volume_names(overlay_lamina: Lamina, bad: str) -> None:
    r = overlay_lamina.run("volume", "create", bad, check=False)
    assert r.returncode == 2 and "invalid volume name" in r.stderr
    r = overlay_lamina.run(
        "run", "--rm", "-v", "fine:/a", "-v", f"{bad}:/x", "busybox", "true", check=False
    )
    assert r.returncode == 125 and "invalid volume name" in r.stderr
    assert overlay_lamina.out("volume", "ls", "-q") == ""
    assert list((overlay_lamina.root / "volumes").iterdir()) == []


def test_refused_flags_leave_no_volume(overlay_lamina: Lamina) -> None:
    for flags in (["--security-opt", "label=x"], ["--cap-add", "NOPE"]):
        r = overlay_lamina.run("run", "-v", "fine:/a", *flags, "busybox", "true", check=False)
        assert r.returncode == 125
    assert overlay_lamina.out("volume", "ls", "-q") == ""


def test_refusals_name_the_container(lamina: Lamina) -> None:
    lamina.run("create", "--name", "user1", "busybox")
    r = lamina.run("rmi", "busybox", check=False)
    assert r.returncode == 1 and "user1" in r.stderr
    assert "busybox" in lamina.out("images")
    r = lamina.run("create", "--name", "user1", "busybox", check=False)
    assert r.returncode == 1 and "already in use" in r.stderr  # docker create: 1 (run: 125)
    lamina.run("run", "-d", "--name", "busy", "busybox", "sleep", "60")
    r = lamina.run("rm", "busy", check=False)
    assert r.returncode == 1 and "running" in r.stderr
    assert (
        lamina.out("ps", "-q", "--no-trunc").strip()
        == lamina.out("inspect", "-f", "{{.Id}}", "busy").strip()
    )
    lamina.run("rm", "-f", "busy", "user1")
    lamina.run("rmi", "busybox")


def test_detached_logs_and_stop_forwards_term(lamina: Lamina) -> None:
    script = 'trap "echo bye; exit 3" TERM; echo up; while true; do sleep 0.1; done'
    cid = lamina.out("run", "-d", "--name", "bg", "busybox", "sh", "-c", script).strip()
    assert len(cid) == 64
    deadline = time.monotonic() + 10
    while "up" not in lamina.out("logs", "bg") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lamina.out("ps", "--format", "{{.Names}} {{.State}}") == "bg running\n"
    lamina.run("stop", "bg")
    assert lamina.out("inspect", "-f", "{{.State.ExitCode}} {{.State.Status}}", "bg") == (
        "3 exited\n"
    )
    assert lamina.out("logs", "bg") == "up\nbye\n"
    log = Path(lamina.out("inspect", "-f", "{{.LogPath}}", "bg").strip())
    first = json.loads(log.read_text().splitlines()[0])
    assert (first["log"], first["stream"]) == ("up\n", "stdout")
    assert _mounts_under(lamina.root) == []  # the run's mount went with the run
    assert lamina.out("container", "prune").split()[:3] == ["Deleted", "Containers:", cid]
    # run -d --rm: gone once anyone looks after it exited (there is no daemon to watch it)
    lamina.run("run", "-d", "--rm", "--name", "gone", "busybox", "true")
    deadline = time.monotonic() + 10
    while lamina.out("ps", "-aq") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lamina.out("ps", "-aq") == ""


def test_signals_by_docker_names_and_a_real_time_stop_signal(overlay_lamina: Lamina) -> None:
    """``kill -s`` and ``STOPSIGNAL`` read signals as Docker does: a systemd-style image that
    stops with SIGRTMIN+3 gets it (its trap answers; no 10 s wait for SIGKILL), and a signal
    Linux cannot deliver is a usage error, not a crash. (A container's PID 1 ignores what it
    does not trap, so each one traps.)"""
    lam = overlay_lamina
    lam.run("create", "--name", "base", "busybox")
    lam.run("commit", "-c", "STOPSIGNAL SIGRTMIN+3", "base", "rtstop")
    trap = 'trap "exit {code}" {sig}; while true; do sleep 0.1; done'
    lam.run("run", "-d", "--name", "rt", "rtstop", "sh", "-c", trap.format(code=7, sig=37))
    started = time.monotonic()
    lam.run("stop", "rt")
    assert time.monotonic() - started < 5
    assert lam.out("inspect", "-f", "{{.State.ExitCode}}", "rt") == "7\n"
    lam.run("run", "-d", "--name", "kk", "busybox", "sh", "-c", trap.format(code=9, sig=63))
    for bad in ("0", "99", "32", "SIGFOO", "RTMIN-1"):
        r = lam.run("kill", "-s", bad, "kk", check=False)
        assert (r.returncode, r.stderr.strip()) == (2, f"error: invalid signal: {bad!r}"), bad
    lam.run("kill", "-s", "rtmax-1", "kk")
    deadline = time.monotonic() + 10
    while lam.out("inspect", "-f", "{{.State.Status}}", "kk") != "exited\n":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert lam.out("inspect", "-f", "{{.State.ExitCode}}", "kk") == "9\n"


def test_wait_restart_and_rename(lamina: Lamina) -> None:
    """docker wait (blocks while running; a container not running answers at once), restart
    (stop, then start detached: a second run of the same command) and rename."""
    lamina.run("run", "-d", "--name", "w1", "busybox", "sh", "-c", "sleep 0.5; echo ran; exit 3")
    assert lamina.out("wait", "w1") == "3\n"
    lamina.run("create", "--name", "w2", "busybox", "true")
    assert lamina.out("wait", "w2", "w1") == "0\n3\n"
    assert lamina.out("restart", "w1") == "w1\n"
    assert lamina.out("wait", "w1") == "3\n"
    assert lamina.out("logs", "w1") == "ran\nran\n"
    lamina.run("rename", "w2", "renamed")
    assert lamina.out("inspect", "-f", "{{.Name}}", "renamed") == "/renamed\n"
    assert lamina.run("inspect", "w2", check=False).returncode == 1
    r = lamina.run("rename", "renamed", "w1", check=False)
    assert r.returncode == 1 and "already in use" in r.stderr
    r = lamina.run("rename", "renamed", "bad name", check=False)
    assert r.returncode == 2 and "invalid container name" in r.stderr
    assert lamina.out("ps", "-a", "--format", "{{.Names}}").split() == ["renamed", "w1"]


def _logged(lam: Lamina, name: str, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in lam.out("logs", name):
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("time_flag", ["-1", "-2"])
def test_a_negative_stop_time_waits_for_the_exit(overlay_lamina: Lamina, time_flag: str) -> None:
    """docker 20.10: ``stop -t -1`` (any negative time) sends the stop signal and waits for the
    container however long it takes -- no SIGKILL; ``restart -t -1`` stops the same way."""
    lam = overlay_lamina
    trap = 'trap "sleep 0.3; echo bye; exit 3" TERM; echo up; while :; do sleep 0.1; done'
    lam.run("run", "-d", "--name", "slow", "busybox", "sh", "-c", trap)
    _logged(lam, "slow", "up")
    assert lam.out("stop", "-t", time_flag, "slow") == "slow\n"
    assert lam.out("inspect", "-f", "{{.State.ExitCode}}", "slow") == "3\n"
    lam.run("start", "slow")
    _logged(lam, "slow", "up\nbye\nup")
    assert lam.out("restart", "-t", time_flag, "slow") == "slow\n"
    assert lam.out("logs", "slow").startswith("up\nbye\nup\nbye\n")
    lam.run("kill", "slow")


def attached_clients(lam: Lamina, name: str) -> int:
    """How many clients the shim of the running ``name`` has taken on its attach socket
    (the sockets it holds, less the listening one): once it has taken one, that client gets
    whatever the container writes."""
    cid = lam.out("inspect", "-f", "{{.Id}}", name).strip()
    record = json.loads((lam.root / "runtime" / "shim" / cid / "state.json").read_text())
    sockets = 0
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{record['shim_pid']}/fd").iterdir():
            with contextlib.suppress(OSError):
                sockets += os.readlink(fd).startswith("socket:")
    return max(0, sockets - 1)


def wait_attached(lam: Lamina, name: str, proc: subprocess.Popen[Any], clients: int = 1) -> None:
    deadline = time.monotonic() + 20
    while attached_clients(lam, name) < clients:
        assert time.monotonic() < deadline and proc.poll() is None, "never attached"
        time.sleep(0.02)


def test_start_attach_to_a_running_container(overlay_lamina: Lamina) -> None:
    """docker 20.10: ``start -a`` of a running container attaches to its output from then on
    (stdout and stderr apart) and exits with its status."""
    lam = overlay_lamina
    script = (
        "echo before; while [ ! -e /go ]; do sleep 0.05; done; echo after; echo err >&2; exit 5"
    )
    lam.run("run", "-d", "--name", "att", "busybox", "sh", "-c", script)
    _logged(lam, "att", "before")
    argv = [*LAMINA, "--root", str(lam.root), "--storage-driver", lam.driver]
    attached = subprocess.Popen(
        [*argv, "start", "-a", "att"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_attached(lam, "att", attached)  # whatever comes from now on is seen
    lam.run("exec", "att", "touch", "/go")
    out, err = attached.communicate(timeout=30)
    assert (attached.returncode, out, err) == (5, "after\n", "err\n")


def test_the_working_dir_is_made_at_create(overlay_lamina: Lamina) -> None:
    """docker 20.10 makes the working dir at create, resolving it inside the rootfs: a path
    that is a file refuses the create (1; run: 125) and leaves nothing behind; links resolve
    in the container, never on the host; the path is kept cleaned."""
    lam = overlay_lamina
    r = lam.run("run", "--name", "wd", "-w", "/etc/passwd", "busybox", "true", check=False)
    assert r.returncode == 125
    assert r.stderr.strip() == "error: cannot mkdir: /etc/passwd is not a directory"
    r = lam.run("create", "--name", "wd", "-w", "/etc/passwd", "busybox", check=False)
    assert r.returncode == 1 and "cannot mkdir: /etc/passwd is not a directory" in r.stderr
    assert lam.out("ps", "-aq") == ""
    assert lam.out("run", "--rm", "--name", "wd", "-w", "/a/../b/./c/", "busybox", "pwd") == (
        "/b/c\n"
    )
    lam.run("create", "--name", "wd", "-w", "/a/../b/./c/", "busybox")
    assert lam.out("inspect", "-f", "{{.Config.WorkingDir}}", "wd") == "/b/c\n"
    assert lam.out("diff", "wd").splitlines() == ["A /b", "A /b/c"]  # before any start
    lam.run(
        "run",
        "--name",
        "lk",
        "busybox",
        "sh",
        "-c",
        "ln -s /etc/passwd /lnk; ln -s ../../../../../newdir /up",
    )
    lam.run("commit", "lk", "links")
    r = lam.run("create", "-w", "/lnk", "links", check=False)
    assert r.returncode == 1 and "cannot mkdir: /lnk is not a directory" in r.stderr
    lam.run("create", "--name", "up1", "-w", "/up/sub", "links")
    assert lam.out("diff", "up1").splitlines() == ["A /newdir", "A /newdir/sub"]
    assert not Path("/newdir").exists()
    lam.run("rm", "lk", "up1", "wd")
    lam.run("rmi", "links")


def test_top_lists_the_containers_processes_only(lamina: Lamina) -> None:
    """docker top: the host's ps (-ef, or the options given), rows of this container only."""
    lamina.run("run", "-d", "--name", "tp", "busybox", "sh", "-c", "sleep 600 & sleep 601")
    out = lamina.out("top", "tp").splitlines()
    assert out[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert sorted(line.split(None, 7)[7] for line in out[1:]) == ["sleep 600", "sleep 601"]
    out = lamina.out("container", "top", "tp", "-o", "pid,args").splitlines()
    assert out[0].split() == ["PID", "COMMAND"] and len(out) == 3
    r = lamina.run("top", "tp", "-o", "comm", check=False)
    assert r.returncode == 2 and "no PID column" in r.stderr
    lamina.run("create", "--name", "idle", "busybox")
    r = lamina.run("top", "idle", check=False)
    assert r.returncode == 1 and "is not running" in r.stderr


def test_kill9_of_the_cli_leaves_the_truth(lamina: Lamina) -> None:
    argv = [*LAMINA, "--root", str(lamina.root), "--storage-driver", lamina.driver]
    cli = subprocess.Popen(
        [*argv, "run", "--name", "crash", "busybox", "sleep", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while "running" not in lamina.out("ps", "-a", "--format", "{{.State}}"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cli.send_signal(signal.SIGKILL)
    cli.wait()
    assert lamina.out("ps", "-a", "--format", "{{.Names}} {{.State}}") == "crash running\n"
    assert lamina.run("rm", "crash", check=False).returncode == 1
    lamina.run("rm", "-f", "crash")
    assert lamina.out("ps", "-aq") == ""
    assert _mounts_under(lamina.root) == []
    assert lamina.run("verify", check=False).returncode == 0


def test_cp_stays_inside_the_container(lamina: Lamina, shm_tmp: Path) -> None:
    """CVE-2018-15664 class: symlinks in the container that point "outside" resolve inside."""
    lamina.run(
        "run",
        "--name",
        "cpc",
        "busybox",
        "sh",
        "-c",
        "ln -s / /escape; ln -s ../../../../../../../etc /up; ln -s /tmp /t; "
        "echo inside > /etc/marker",
    )
    host_marker = Path("/etc/marker")
    assert not host_marker.exists()
    lamina.run("cp", "cpc:/escape/etc/marker", str(shm_tmp / "out1"))
    assert (shm_tmp / "out1").read_text() == "inside\n"
    lamina.run("cp", "cpc:/up/marker", str(shm_tmp / "out2"))
    assert (shm_tmp / "out2").read_text() == "inside\n"
    r = lamina.run("cp", "cpc:/up/shadow", str(shm_tmp / "out3"), check=False)
    assert r.returncode == 1 and not (shm_tmp / "out3").exists()  # not the host's shadow
    src = shm_tmp / "payload"
    src.write_text("payload\n")
    lamina.run("cp", str(src), "cpc:/up/lamina-cp-test")
    assert not Path("/etc/lamina-cp-test").exists()
    lamina.run("cp", str(src), "cpc:/t/")
    assert "A /etc/lamina-cp-test" in lamina.out("diff", "cpc").splitlines()
    assert lamina.out("run", "--rm", "busybox", "true") == ""
    tree = shm_tmp / "etc-copy"
    lamina.run("cp", "cpc:/etc", str(tree))
    assert (tree / "marker").read_text() == "inside\n"
    assert (tree / "lamina-cp-test").read_text() == "payload\n"
    # a symlink met while copying out is copied as a symlink, never followed
    lamina.run("cp", "cpc:/", str(shm_tmp / "all"))
    assert os.readlink(shm_tmp / "all" / "escape") == "/"


def test_export_mount_and_volume_tars(lamina: Lamina, shm_tmp: Path) -> None:
    lamina.run("run", "--name", "exp", "-v", "vol:/vol", "busybox", "sh", "-c", DIFF_SCRIPT)
    out = shm_tmp / "e.tar"
    lamina.run("export", "exp", "-o", str(out))
    with tarfile.open(out) as tf:
        names = {m.name.rstrip("/") for m in tf}
    assert {"new", "bin/sh", "etc/passwd", ".dockerenv", "vol"} <= names
    assert "bin/vi" not in names and not any(".wh." in n for n in names)
    merged = Path(lamina.out("mount", "exp").strip())
    assert (merged / "new").read_text() == "a\n" and not (merged / "bin" / "vi").exists()
    lamina.run("umount", "exp")
    assert _mounts_under(lamina.root) == [] or lamina.driver == "vfs"
    data = lamina.root / "volumes" / "vol" / "_data"
    (data / "sub").mkdir()
    (data / "sub" / "f").write_text("vf\n")
    vtar = shm_tmp / "vol.tar"
    lamina.run("volume", "export", "vol", "-o", str(vtar))
    lamina.run("volume", "import", "copy", str(vtar))
    assert (lamina.root / "volumes" / "copy" / "_data" / "sub" / "f").read_text() == "vf\n"
    hostile = shm_tmp / "hostile.tar"
    with tarfile.open(hostile, "w") as tf:
        ti = tarfile.TarInfo("../../../escaped")
        tf.addfile(ti)
    r = lamina.run("volume", "import", "copy", str(hostile), check=False)
    assert r.returncode == 1
    assert not (lamina.root / "escaped").exists() and not (lamina.root.parent / "escaped").exists()


def test_tty_with_interactive(overlay_lamina: Lamina) -> None:
    import pty

    master, slave = pty.openpty()
    argv = [*LAMINA, "--root", str(overlay_lamina.root), "--storage-driver", "overlay2"]
    proc = subprocess.Popen(
        [*argv, "run", "--rm", "-it", "busybox", "sh", "-c", "tty; exit 5"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    assert proc.wait(timeout=30) == 5
    out = b""
    with contextlib.suppress(OSError):  # EIO once the last slave fd is closed
        while chunk := os.read(master, 4096):
            out += chunk
    os.close(master)
    assert b"/dev/pts/0" in out
    # -t without -i gets a terminal too, as Docker's (tests/integration/test_tty.py)
    r = overlay_lamina.run("run", "--rm", "-t", "busybox", "sh", "-c", "tty; exit 4", check=False)
    assert (r.returncode, r.stdout) == (4, "/dev/pts/0\n")


def test_inspect_size(lamina: Lamina) -> None:
    # docker 20.10, the same tar: the fields only with -s/--size, after GraphDriver; a
    # container never started has an empty rw layer (the init layer's placeholders are not in
    # it); SizeRootFs is the image's size plus SizeRw.
    lamina.run("create", "--name", "c0", "busybox")
    lamina.run("run", "--name", "s1", "busybox", "sh", "-c", "head -c 12345 /dev/zero > /f")
    assert "SizeRw" not in json.loads(lamina.out("inspect", "c0"))[0]
    info = json.loads(lamina.out("container", "inspect", "--size", "c0"))[0]
    assert (info["SizeRw"], info["SizeRootFs"]) == (0, 1985581)
    keys = list(info)
    assert keys[keys.index("GraphDriver") + 1 : keys.index("Mounts")] == ["SizeRw", "SizeRootFs"]
    fmt = "{{.SizeRw}} {{.SizeRootFs}}"
    assert lamina.out("inspect", "-s", "-f", fmt, "s1") == "12345 1997926\n"
    assert lamina.out("container", "inspect", "-f", fmt, "s1") == "<no value> <no value>\n"
    # Docker's CLI warns for the kinds that have no size, and shows them as they are.
    r = lamina.run("inspect", "-s", "--type", "image", "busybox")
    assert "SizeRw" not in r.stdout and r.stderr == "WARNING: --size ignored for image\n"
