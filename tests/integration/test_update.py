"""``lamina update`` end to end: a running container's cgroup files and ``inspect`` after each
update, a stopped one's next start, and refusals that leave both as they were -- checked
against the values docker 20.10 showed for the same commands (the notes say what it printed),
and, where dockerd is installed, against dockerd itself, command by command."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_containers import Lamina, _lamina

from lamina.testing.peers import DockerDaemon

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]

# The limits' files as a container sees its own cgroups (v1 controllers, as on this host).
_FILES = (
    "memory/memory.limit_in_bytes",
    "memory/memory.memsw.limit_in_bytes",
    "cpu/cpu.cfs_quota_us",
    "cpu/cpu.cfs_period_us",
    "cpu/cpu.shares",
    "pids/pids.max",
)
SHOW = f"cd /sys/fs/cgroup && echo $(cat {' '.join(_FILES)})"
FIELDS = (
    "{{with .HostConfig}}{{.Memory}} {{.MemorySwap}} {{.NanoCpus}} {{.CpuShares}} "
    "{{.CpuPeriod}} {{.CpuQuota}} {{json .PidsLimit}}{{end}}"
)
NONE = "9223372036854771712"  # v1's "no limit"
MB = 1 << 20


@pytest.fixture
def lamina(shm_tmp: Path, busybox_rootfs_tar: Path) -> Iterator[Lamina]:
    with _lamina(shm_tmp / "root", "overlay2", busybox_rootfs_tar) as lam:
        yield lam


def _cgroup(lamina: Lamina, name: str) -> str:
    return lamina.out("exec", name, "sh", "-c", SHOW).strip()


def _fields(lamina: Lamina, name: str) -> str:
    return lamina.out("inspect", "-f", FIELDS, name).strip()


def _update(lamina: Lamina, *args: str) -> tuple[int, str, str]:
    r = lamina.run("update", *args, check=False)
    return r.returncode, r.stdout, r.stderr


def test_a_running_container_gets_the_limits_at_once(lamina: Lamina) -> None:
    # docker 20.10, the same updates of `docker run -d busybox sleep 300`, each printing the
    # name: HostConfig and cgroup files as asserted after each.
    lamina.run("run", "-d", "--name", "up", "busybox", "sleep", "300")
    assert _fields(lamina, "up") == "0 0 0 0 0 0 null"
    assert _cgroup(lamina, "up") == f"{NONE} {NONE} -1 100000 1024 max"
    r = _update(lamina, "-m", "64m", "--memory-swap", "128m", "--cpus", "1.5", "-c", "512", "up")
    assert r == (0, "up\n", "")
    assert _update(lamina, "--pids-limit", "100", "up") == (0, "up\n", "")
    assert _fields(lamina, "up") == f"{64 * MB} {128 * MB} 1500000000 512 0 0 100"
    assert _cgroup(lamina, "up") == f"{64 * MB} {128 * MB} 150000 100000 512 100"
    # -m alone below the memory+swap set; --pids-limit -1: PidsLimit 0, pids.max "max".
    assert _update(lamina, "-m", "32m", "--pids-limit", "-1", "up") == (0, "up\n", "")
    assert _fields(lamina, "up") == f"{32 * MB} {128 * MB} 1500000000 512 0 0 0"
    assert _cgroup(lamina, "up") == f"{32 * MB} {128 * MB} 150000 100000 512 max"
    # --memory-swap -1: the record says -1, the cgroup keeps its limit (Docker does not send
    # a memory+swap of -1 to runc).
    assert _update(lamina, "--memory-swap", "-1", "up")[0] == 0
    assert _fields(lamina, "up").split()[1] == "-1"
    assert _cgroup(lamina, "up").split()[1] == str(128 * MB)
    # A paused container is updated too, and stays paused.
    lamina.run("pause", "up")
    assert _update(lamina, "--pids-limit", "30", "up") == (0, "up\n", "")
    assert lamina.out("inspect", "-f", "{{.State.Status}}", "up") == "paused\n"
    lamina.run("unpause", "up")
    assert _cgroup(lamina, "up").split()[-1] == "30"
    # Several names: each one updated is printed, each failure reported, status 1.
    code, out, err = _update(lamina, "--pids-limit", "40", "nosuch", "up")
    assert (code, out) == (1, "up\n") and "nosuch" in err
    assert _cgroup(lamina, "up").split()[-1] == "40"


def test_refusals_leave_the_record_and_the_cgroup_as_they_were(lamina: Lamina) -> None:
    cid = lamina.out(
        "run", "-d", "--name", "up", "-m", "64m", "-c", "512", "busybox", "sleep", "300"
    )
    cid = cid.strip()
    before = (_fields(lamina, "up"), _cgroup(lamina, "up"))
    assert before == (
        f"{64 * MB} {128 * MB} 0 512 0 0 null",
        f"{64 * MB} {128 * MB} -1 100000 512 max",
    )
    # docker 20.10: "Error response from daemon: " and these words; status 1.
    refused = {
        ("-m", "200m"): f"Cannot update container {cid}: Memory limit should be smaller than "
        "already set memoryswap limit, update the memoryswap at the same time",
        ("-m", "5m"): "Minimum memory limit allowed is 6MB",
        ("-m", "64m", "--memory-swap", "32m"): "Minimum memoryswap limit should be larger than "
        "memory limit, see usage",
        ("--cpus", "1", "--cpu-quota", "20000"): "Conflicting options: Nano CPUs and CPU Quota "
        "cannot both be set",
        # runc's refusal (Docker: "... runc did not terminate successfully: exit status 1: "
        # before it). Docker leaves cpu.shares at 2, and memory at 100m for the second: the
        # cgroup files runc wrote before it refused; lamina puts them back.
        ("-c", "1"): f"Cannot update container {cid}: the minimum allowed cpu-shares is 2",
        ("-m", "100m", "-c", "1"): f"Cannot update container {cid}: the minimum allowed "
        "cpu-shares is 2",
        ("-c", "-5"): f"Cannot update container {cid}: the maximum allowed cpu-shares is 262144",
    }
    for args, message in refused.items():
        assert _update(lamina, *args, "up") == (1, "", f"error: {message}\n"), args
        assert (_fields(lamina, "up"), _cgroup(lamina, "up")) == before, args
    code, _, err = _update(lamina, "--cpus", "1000", "up")
    assert code == 1 and "Range of CPUs is from 0.01 to" in err


def test_a_memory_limit_below_what_the_container_uses_is_refused(lamina: Lamina) -> None:
    # docker 20.10, a container holding 60 MB in /dev/shm: "Cannot update container ID:
    # unable to set memory limit to 20971520 (current usage: N, peak usage: M)" (after runc's
    # "exit status 1: "), status 1; it runs on with its limits and record as they were.
    script = "dd if=/dev/zero of=/dev/shm/f bs=1M count=60 2>/dev/null; echo held; sleep 300"
    flags = ("--shm-size", "256m", "-m", "256m", "--memory-swap", "256m")
    cid = lamina.out("run", "-d", "--name", "hog", *flags, "busybox", "sh", "-c", script).strip()
    for _ in range(100):
        if lamina.out("logs", "hog") == "held\n":
            break
        time.sleep(0.05)
    before = (_fields(lamina, "hog"), _cgroup(lamina, "hog"))
    for swap in ("20m", "100m", "-1"):
        code, out, err = _update(lamina, "-m", "20m", "--memory-swap", swap, "hog")
        assert (code, out) == (1, ""), swap
        assert re.fullmatch(
            f"error: Cannot update container {cid}: unable to set memory limit to 20971520 "
            r"\(current usage: \d+, peak usage: \d+\)\n",
            err,
        ), err
        assert (_fields(lamina, "hog"), _cgroup(lamina, "hog")) == before
    assert lamina.out("inspect", "-f", "{{.State.Status}} {{.State.OOMKilled}}", "hog") == (
        "running false\n"
    )


def test_a_stopped_container_keeps_them_for_its_next_start(lamina: Lamina) -> None:
    # docker 20.10: update of a created or exited container prints its name and changes the
    # record; the next start runs with it. A record no create would make is refused by that
    # start (status 1): swap without memory, a negative cpu-shares.
    lamina.run("create", "--name", "later", "busybox", "sh", "-c", SHOW)
    flags = ("-m", "64m", "--memory-swap", "128m", "--cpu-period", "50000", "--cpu-quota", "20000")
    assert _update(lamina, *flags, "-c", "256", "--pids-limit", "50", "later") == (
        0,
        "later\n",
        "",
    )
    assert _fields(lamina, "later") == f"{64 * MB} {128 * MB} 0 256 50000 20000 50"
    assert lamina.out("start", "-a", "later") == f"{64 * MB} {128 * MB} 20000 50000 256 50\n"
    assert _update(lamina, "--pids-limit", "20", "later")[0] == 0  # exited now
    assert lamina.out("start", "-a", "later") == f"{64 * MB} {128 * MB} 20000 50000 256 20\n"
    # docker: "Conflicting options: Nano CPUs cannot be updated as CPU Period has already
    # been set" (after "Cannot update container ID: ").
    code, _, err = _update(lamina, "--cpus", "1", "later")
    assert code == 1 and err.endswith(
        "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set\n"
    )
    for create, args, message in (
        ((), ("--memory-swap", "128m"), "You should always set the Memory limit when using "
         "Memoryswap limit, see usage"),
        ((), ("-c", "-5"), "shares: invalid argument"),
        (("-m", "32m"), ("--memory-reservation", "48m"), "Minimum memory limit can not be less "
         "than memory reservation limit, see usage"),
    ):  # fmt: skip
        lamina.run("create", "--name", "bad", *create, "busybox", "true")
        assert _update(lamina, *args, "bad") == (0, "bad\n", "")
        r = lamina.run("start", "bad", check=False)
        assert (r.returncode, r.stderr) == (1, f"error: {message}\n"), args
        lamina.run("rm", "bad")


# -- against dockerd ------------------------------------------------------------------------

# Each step: update's arguments (the container's name last); what both must answer alike.
RUNNING_STEPS: tuple[tuple[str, ...], ...] = (
    ("-m", "64m"),
    ("--memory-swap", "128m"),  # runc refuses memory+swap below the memory limit
    ("-m", "64m", "--memory-swap", "128m"),
    ("-m", "200m"),
    ("-m", "32m"),
    ("--memory-reservation", "5m"),
    ("--memory-reservation", "16m"),
    ("-m", "24m", "--memory-reservation", "48m"),
    ("-m", "5m"),
    ("-m", "64m", "--memory-swap", "32m"),
    ("--memory-swap", "-1"),
    ("--cpus", "1.5"),
    ("-c", "512"),
    ("--pids-limit", "100"),
    ("--pids-limit", "0"),
    ("--pids-limit", "-1"),
    ("--cpu-period", "50000"),
    ("--cpus", "0.5", "--cpu-quota", "20000"),
    ("--cpus", "1000"),
    ("--cpus", "0"),
    ("-c", "1"),
    ("-c", "-5"),
)
PERIOD_STEPS: tuple[tuple[str, ...], ...] = (
    ("--cpu-period", "50000"),
    ("--cpu-quota", "20000"),
    ("--cpus", "1"),
    ("--cpu-period", "500"),
    ("--cpu-quota", "500"),
    ("--cpu-quota", "-1"),
)


def _daemon_words(stderr: str, ids: tuple[str, ...]) -> list[str]:
    """The messages of a failed update, as both say them: Docker's "Error response from
    daemon: " and runc's wrapping by containerd ("runc did not terminate successfully: exit
    status 1: ", "\\n: unknown") and lamina's "error: " dropped, the container's id and
    cgroup path made alike."""
    text = stderr.replace("\n: unknown", "")
    text = text.replace("runc did not terminate successfully: exit status 1: ", "")
    text = re.sub(r"/sys/fs/cgroup/(\w+)/\S*/", r"/sys/fs/cgroup/\1/CGROUP/", text)
    for i in ids:
        text = text.replace(i, "ID")
    out = []
    for line in text.splitlines():
        for prefix in ("Error response from daemon: ", "error: "):
            line = line.removeprefix(prefix)
        out.append(line)
    return out


class Both:
    """The same container in dockerd and in lamina, updated alike."""

    def __init__(self, dockerd: DockerDaemon, lamina: Lamina, name: str) -> None:
        self.dockerd, self.lamina, self.name = dockerd, lamina, name

    def ids(self) -> tuple[str, ...]:
        docker = self.dockerd.run("inspect", "-f", "{{.Id}}", self.name).stdout.decode().strip()
        return docker, self.lamina.out("inspect", "-f", "{{.Id}}", self.name).strip()

    def run(self, *args: str) -> tuple[int, str, list[str]]:
        """Docker's answer; asserts lamina's is the same."""
        d = self.dockerd.run("update", *args, self.name, check=False)
        ours = self.lamina.run("update", *args, self.name, check=False)
        ids = self.ids()
        theirs = (d.returncode, d.stdout.decode(), _daemon_words(d.stderr.decode(), ids))
        assert (ours.returncode, ours.stdout, _daemon_words(ours.stderr, ids)) == theirs, args
        return theirs

    def same(self, what: Callable[[Callable[..., str]], str], *, skip: tuple[int, ...] = ()) -> str:
        """``what(out)`` where ``out(*args)`` runs a command in each; asserts they agree,
        except the words at the indexes ``skip``."""

        def docker_out(*args: str) -> str:
            return self.dockerd.run(*args).stdout.decode()

        theirs, ours = what(docker_out).split(), what(self.lamina.out).split()
        for i in skip:
            theirs[i] = ours[i] = "-"
        assert ours == theirs
        return " ".join(theirs)


@pytest.fixture
def both(
    dockerd: DockerDaemon, lamina: Lamina, busybox_rootfs_tar: Path
) -> Iterator[Callable[..., Both]]:
    dockerd.run("import", "--change", 'CMD ["/bin/sh"]', str(busybox_rootfs_tar), "bbupdate")
    names: list[str] = []

    def make(name: str, *create: str, run: bool = True) -> Both:
        verb = ("run", "-d") if run else ("create",)
        dockerd.run(*verb, "--network", "none", "--name", name, *create, "bbupdate", "sleep", "300")
        lamina.run(*verb, "--name", name, *create, "busybox", "sleep", "300")
        names.append(name)
        return Both(dockerd, lamina, name)

    try:
        yield make
    finally:
        for name in names:
            dockerd.run("rm", "-f", name, check=False)
        dockerd.run("rmi", "bbupdate", check=False)


def _state(b: Both) -> Callable[[Callable[..., str]], str]:
    def what(out: Callable[..., str]) -> str:
        return (
            out("inspect", "-f", FIELDS, b.name)
            + out("exec", b.name, "sh", "-c", SHOW)
            + out("inspect", "-f", "{{.HostConfig.MemoryReservation}}", b.name)
            + out("exec", b.name, "cat", "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes")
        )

    return what


@pytest.mark.needs_peer("docker", "dockerd")
def test_updates_answer_as_dockerds(both: Callable[..., Both]) -> None:
    up = both("up")
    for step in RUNNING_STEPS:
        code, _, _ = up.run(*step)
        # After runc refused a cpu-shares, dockerd's cgroup keeps what runc wrote (2, 262144)
        # where lamina's has the value it had: cpu.shares (the 12th word) is left out there.
        shares_kept_by_docker = code != 0 and step[0] == "-c"
        up.same(_state(up), skip=(11,) if shares_kept_by_docker else ())
    period = both("period")
    for step in PERIOD_STEPS:
        period.run(*step)
        period.same(_state(period))
    # A paused container is updated live and stays paused.
    paused = both("paused")
    paused.same(lambda out: out("pause", paused.name))
    paused.run("--pids-limit", "30")
    paused.same(lambda out: out("inspect", "-f", "{{.State.Status}}", paused.name))
    paused.same(lambda out: out("unpause", paused.name))
    paused.same(_state(paused))


@pytest.mark.needs_peer("docker", "dockerd")
def test_a_created_container_is_updated_as_dockerds(
    both: Callable[..., Both], dockerd: DockerDaemon, lamina: Lamina
) -> None:
    later = both("later", run=False)
    for step in (*RUNNING_STEPS[:11], ("-c", "-5"), *PERIOD_STEPS[:2]):
        later.run(*step)
        later.same(
            lambda out: out(
                "inspect", "-f", FIELDS + " {{.HostConfig.MemoryReservation}}", later.name
            )
        )
    # Its start refuses what no create would make (docker start: status 1).
    d = dockerd.run("start", later.name, check=False)
    ours = lamina.run("start", later.name, check=False)
    assert (ours.returncode, _daemon_words(ours.stderr, ())) == (
        d.returncode,
        _daemon_words(d.stderr.decode(), ())[:1],  # then "Error: failed to start containers"
    )


@pytest.mark.needs_peer("docker", "dockerd")
def test_no_flags_and_no_such_container_as_dockers(
    both: Callable[..., Both], dockerd: DockerDaemon, lamina: Lamina
) -> None:
    both("up")
    d = dockerd.run("update", "up", check=False)
    ours = lamina.run("update", "up", check=False)
    assert (ours.returncode, ours.stderr) == (d.returncode, "error: " + d.stderr.decode())
    d = dockerd.run("update", "--pids-limit", "5", "nosuch", "up", "nosuch2", check=False)
    ours = lamina.run("update", "--pids-limit", "5", "nosuch", "up", "nosuch2", check=False)
    assert (ours.returncode, ours.stdout) == (d.returncode, d.stdout.decode()) == (1, "up\n")
    # Docker's "No such container: nosuch"; lamina's words for it are its own everywhere.
    assert [w.lower() for w in _daemon_words(ours.stderr, ())] == [
        w.lower() for w in _daemon_words(d.stderr.decode(), ())
    ]
