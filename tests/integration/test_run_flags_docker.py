"""The flags of ``test_run_flags``, command by command against dockerd 20.10 itself: each
command runs in both, and both must answer alike -- status, output and error words (Docker's
"docker: " and "Error response from daemon: " and lamina's "error: " dropped, ids made
alike). Skipped where dockerd is not installed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_containers import Lamina, _lamina

from lamina.testing.peers import DockerDaemon

pytestmark = [
    pytest.mark.needs_root,
    pytest.mark.needs_overlay,
    pytest.mark.needs_peer("docker", "dockerd"),
]

IMAGE = "IMAGE"  # stands for the busybox image in each one's store
_DOCKER_IMAGE = "bbflags"
_ID = re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b")


def _words(stderr: str) -> list[str]:
    """A failure's words as both say them."""
    out = []
    for line in stderr.splitlines():
        if line.startswith(("See 'docker", "Error: failed to start containers:")):
            continue
        if "level=error" in line:  # the CLI's own log of an aborted attach
            continue
        for prefix in ("docker: ", "Error response from daemon: ", "error: "):
            line = line.removeprefix(prefix)
        out.append(_ID.sub("ID", line.removesuffix(".")))
    return out


class Pair:
    """dockerd and lamina, given the same commands."""

    def __init__(self, dockerd: DockerDaemon, lamina: Lamina, tmp: Path) -> None:
        self.dockerd, self.lamina, self.tmp = dockerd, lamina, tmp
        # Each one's own dir, where an argument says {dir}: for the files they write.
        self.dirs = (tmp / "docker", tmp / "lamina")
        for d in self.dirs:
            d.mkdir()

    def each(self, *args: str) -> tuple[tuple[int, str, list[str]], tuple[int, str, list[str]]]:
        """(Docker's answer, lamina's): status, output (ids made alike, each one's {dir} so
        named), error words."""
        answers = []
        for image, directory in ((_DOCKER_IMAGE, self.dirs[0]), ("busybox", self.dirs[1])):
            argv = [image if a == IMAGE else a.replace("{dir}", str(directory)) for a in args]
            if image == _DOCKER_IMAGE:
                d = self.dockerd.run(*argv, check=False)
                code, out, err = d.returncode, d.stdout.decode(), d.stderr.decode()
            else:
                r = self.lamina.run(*argv, check=False)
                code, out, err = r.returncode, r.stdout, r.stderr
            out, err = (_ID.sub("ID", t.replace(str(directory), "{dir}")) for t in (out, err))
            answers.append((code, out, _words(err)))
        return answers[0], answers[1]

    def same(
        self, *args: str, unordered: bool = False, words: bool = True
    ) -> tuple[int, str, list[str]]:
        """Docker's answer to ``args``; asserts lamina's is the same (``unordered``: the
        same lines of output, in any order; not ``words``: what failed is said in lamina's
        own words)."""
        theirs, ours = self.each(*args)
        if not words:
            theirs, ours = (*theirs[:2], []), (*ours[:2], [])
        if unordered:
            theirs = (theirs[0], "\n".join(sorted(theirs[1].splitlines())), theirs[2])
            ours = (ours[0], "\n".join(sorted(ours[1].splitlines())), ours[2])
        assert ours == theirs, args
        return theirs


@pytest.fixture
def pair(dockerd: DockerDaemon, shm_tmp: Path, busybox_rootfs_tar: Path) -> Iterator[Pair]:
    dockerd.run("import", "--change", 'CMD ["/bin/sh"]', str(busybox_rootfs_tar), _DOCKER_IMAGE)
    before = set(dockerd.run("ps", "-aq").stdout.decode().split())
    volumes = set(dockerd.run("volume", "ls", "-q").stdout.decode().split())
    try:
        with _lamina(shm_tmp / "root", "overlay2", busybox_rootfs_tar) as lam:
            yield Pair(dockerd, lam, shm_tmp)
    finally:
        made = set(dockerd.run("ps", "-aq").stdout.decode().split()) - before
        if made:
            dockerd.run("rm", "-f", "-v", *made, check=False)
        made = set(dockerd.run("volume", "ls", "-q").stdout.decode().split()) - volumes
        if made:
            dockerd.run("volume", "rm", "-f", *made, check=False)
        dockerd.run("rmi", _DOCKER_IMAGE, check=False)


def test_devices(pair: Pair) -> None:
    run = ("run", "--rm")
    list_ = "cat /sys/fs/cgroup/devices/devices.list"
    for args in (
        ("--device", "/dev/fuse", "--device", "/dev/null:/dev/mynull:r", "--device-cgroup-rule",
         "c 42:* rmw", IMAGE, "sh", "-c", f"stat -c '%A %t:%T %n' /dev/fuse /dev/mynull; {list_}"),
        ("--device", "/dev/null:/dev/x/", IMAGE, "stat", "-c", "%A %t:%T %n", "/dev/x"),
        ("--device", "/dev/../dev/null:/x", IMAGE, "stat", "-c", "%A %t:%T %n", "/x"),
        ("--device", "/dev/null:/dev/a/b/c:r", IMAGE, "stat", "-c", "%t:%T %n", "/dev/a/b/c"),
        ("--device", "/dev/null:/etc/passwd", IMAGE, "stat", "-c", "%F", "/etc/passwd"),
        ("--device", "/dev/null:/dev/zero", IMAGE, "stat", "-c", "%t:%T", "/dev/zero"),
        ("--device", "/dev/pts", IMAGE, "ls", "/dev/pts"),
        ("--device", "/dev/nosuch", IMAGE, "true"),
        ("--device", "/etc/passwd", IMAGE, "true"),
        ("--device", "/dev/null:/dev/x:rwx", IMAGE, "true"),
        ("--device", "/dev/null:/dev/x:rr", IMAGE, "true"),
        ("--device", "/dev/null:/dev/x:", IMAGE, "true"),
        ("--device", "/dev/null:x", IMAGE, "true"),
        ("--device", "/dev/null:", IMAGE, "true"),
        ("--device", "/dev/null:/dev/x:rw:q", IMAGE, "true"),
        ("--device", ":/dev/x", IMAGE, "true"),
        ("--device-cgroup-rule", "x", IMAGE, "true"),
        ("--device-cgroup-rule", "a *:* rwm", IMAGE, "sh", "-c", list_),
        ("--device-cgroup-rule", "b 7:* rw", "--device-cgroup-rule", "c 1:3 r", IMAGE, "sh",
         "-c", list_),
        ("--device-cgroup-rule", "c 99999999999999999999:1 r", IMAGE, "true"),
    ):  # fmt: skip
        pair.same(*run, *args)
    fields = "{{json .HostConfig.Devices}} {{json .HostConfig.DeviceCgroupRules}}"
    for flags in (
        ("--device", "/dev/nosuch:/dev/x:m", "--device-cgroup-rule", "c 99999999999999999999:1 r"),
        ("--device", "/dev/./null:rw", "--device", "/dev/null/"),
        (),
    ):
        pair.same("create", "--name", "later", *flags, IMAGE, "true")
        pair.same("inspect", "-f", fields, "later")
        pair.same("start", "later")  # the first refuses what the create took
        pair.same("rm", "-f", "later")


# A container's mounts, one a line, without what is each store's own (volume paths).
MOUNTS = (
    '{{range .Mounts}}{{.Type}} {{if eq .Type "volume"}}{{.Name}}{{end}} {{.Destination}} '
    "{{.Mode}} {{.RW}} {{.Propagation}}\n{{end}}"
)


def test_volumes_from(pair: Pair) -> None:
    host = pair.tmp / "host"
    host.mkdir()
    (host / "h").write_text("host\n")
    pair.same(
        "create", "--name", "src", "-v", "/anon", "-v", "nv:/named", "-v", f"{host}:/bind:ro",
        "--mount", f"type=bind,src={host},target=/mb", "--tmpfs", "/tf", IMAGE,
    )  # fmt: skip
    for name, flags in (
        ("c1", ("--volumes-from", "src")),
        ("c2", ("--volumes-from", "src:ro")),
        ("c3", ("--volumes-from", "src:ro,z")),
        ("c4", ("--volumes-from", "src:")),
        ("c5", ("--volumes-from", "src", "--volumes-from", "c2")),
        ("c6", ("--volumes-from", "c2")),
        ("c7", ("--volumes-from", "src", "-v", "/named", "-v", f"{host}:/anon")),
    ):
        pair.same("create", "--name", name, *flags, IMAGE)
        pair.same("inspect", "-f", MOUNTS, name, unordered=True)
        fields = (
            "{{json .HostConfig.VolumesFrom}} {{json .HostConfig.Binds}} {{json .Config.Volumes}}"
        )
        pair.same("inspect", "-f", fields, name)
    script = "echo a > /anon/f; echo n > /named/f; cat /bind/h; ls /tf; touch /bind/x /mb/y"
    pair.same("run", "--rm", "--volumes-from", "src", IMAGE, "sh", "-c", script)
    script = "cat /anon/f /named/f; touch /anon/g"
    for spec in ("src:ro", "c2", "c1"):
        pair.same("run", "--rm", "--volumes-from", spec, IMAGE, "sh", "-c", script)
    for spec in ("src:rw,rprivate", "src:nocopy", "src:bogus", "src:ro:rw", "src:ro,ro", ""):
        pair.same("create", "--volumes-from", spec, IMAGE)
    pair.same("run", "--rm", "--volumes-from", "src:Z,z", IMAGE)
    # The source removed: the others keep its volumes (an anonymous -v one: dockerd 20.10
    # loses an anonymous --mount volume here, which lamina keeps), and use them on.
    pair.same("rm", "-v", "src")
    pair.same("run", "--rm", "--volumes-from", "c1", IMAGE, "cat", "/anon/f")
    pair.same("rm", "-v", "c1", "c2", "c3", "c4", "c5", "c6", "c7")
    pair.same("volume", "ls", "-q")
    pair.same("volume", "rm", "nv")


def test_cidfile(pair: Pair) -> None:
    def files(directory: Path) -> list[tuple[str, int, str]]:
        return sorted((p.name, p.stat().st_mode, len(p.read_text())) for p in directory.iterdir())

    for args in (
        ("create", "--name", "first", "--cidfile", "{dir}/cid1", IMAGE),
        ("inspect", "-f", "{{.HostConfig.ContainerIDFile}}", "first"),
        ("create", "--cidfile", "{dir}/cid1", IMAGE),  # found
        ("run", "--cidfile", "{dir}/cid1", IMAGE, "true"),
        ("create", "--cidfile", "{dir}/cid2", "--volumes-from", "", IMAGE),
        ("run", "--rm", "--cidfile", "{dir}/cid4", IMAGE, "true"),
        ("run", "-d", "--cidfile", "{dir}/cid5", IMAGE, "true"),
        ("run", "--cidfile", "{dir}/cid6", IMAGE, "sh", "-c", "exit 3"),
        ("run", "--cidfile", "{dir}/cid7", "--device", "/dev/nosuch", IMAGE, "true"),
        ("create", "--cidfile", "{dir}/nodir/cid", IMAGE),
        ("run", "--cidfile", "{dir}/nodir/cid", IMAGE, "true"),
        ("create", "--name", "none", "--cidfile", "", IMAGE),
        ("inspect", "-f", "{{json .HostConfig.ContainerIDFile}}", "none"),
    ):
        pair.same(*args)
        assert files(pair.dirs[1]) == files(pair.dirs[0]), args  # names, modes, 64 bytes
    # What lamina says in its own words: a name in use (Docker's "Conflict. The container
    # name ..."), a command not found (runc's words, through containerd's).
    for args in (
        ("create", "--cidfile", "{dir}/cid8", "--name", "first", IMAGE),
        ("run", "--cidfile", "{dir}/cid3", IMAGE, "nosuchcmd"),
    ):
        pair.same(*args, words=False)
        assert files(pair.dirs[1]) == files(pair.dirs[0]), args


def test_namespaces(pair: Pair) -> None:
    mountinfo_shm = "grep ' /dev/shm ' /proc/self/mountinfo | cut -d' ' -f5,6,9-"
    for flags in (
        ("-d", "--name", "donor"),
        ("-d", "--name", "sdonor", "--ipc", "shareable"),
    ):
        pair.same("run", *flags, IMAGE, "sh", "-c", "echo hi > /dev/shm/x; sleep 300")
    pair.same("create", "--name", "stopped", "--ipc", "shareable", IMAGE, "sleep", "300")
    for args in (
        ("--pid", "host", IMAGE, "sh", "-c", "cat /proc/1/comm"),
        ("--uts", "host", IMAGE, "hostname"),
        ("--uts", "host", IMAGE, "sh", "-c", "wc -c < /etc/hostname; echo $HOSTNAME | wc -c"),
        ("--uts", "host:x", IMAGE, "sh", "-c", "hostname | wc -c"),
        ("--ipc", "host", IMAGE, "sh", "-c", mountinfo_shm),
        ("--ipc", "none", IMAGE, "ls", "/dev/shm"),
        ("--ipc", "private", IMAGE, "sh", "-c", mountinfo_shm),
        ("--ipc", "shareable", "--shm-size", "1m", IMAGE, "sh", "-c", mountinfo_shm),
        ("--ipc", "container:sdonor", "--pid", "container:sdonor", "--uts", "host", IMAGE,
         "sh", "-c", "hostname; cat /proc/1/cmdline; cat /dev/shm/x"),
        ("--pid", "container:donor", IMAGE, "cat", "/proc/1/cmdline"),
        ("--uts", "host", "--hostname", "foo", IMAGE, "true"),
        ("--ipc", "bogus", IMAGE, "true"),
        ("--pid", "bogus", IMAGE, "true"),
        ("--pid", "container:", IMAGE, "true"),
        ("--uts", "bogus", IMAGE, "true"),
        ("--uts", "container:donor", IMAGE, "true"),
        ("--pid", "container:stopped", IMAGE, "true"),
        ("--ipc", "container:donor", IMAGE, "true"),
        ("--ipc", "container:stopped", IMAGE, "true"),
        ("--ipc", "container:", IMAGE, "true"),
    ):  # fmt: skip
        pair.same("run", "--rm", *args)
    fields = "{{.HostConfig.PidMode}}|{{.HostConfig.IpcMode}}|{{.HostConfig.UTSMode}}"
    for name, flags in (
        ("j1", ("--pid", "container:donor", "--ipc", "container:sdonor")),
        ("j2", ("--pid", "host", "--ipc", "host", "--uts", "host")),
        ("j3", ("--ipc", "")),
        ("j4", ("--ipc", "shareable:x", "--pid", "host:donor", "--uts", "host:x")),
        ("j5", ("--ipc", "container:")),
    ):
        pair.same("create", "--name", name, *flags, IMAGE, "true")
        pair.same("inspect", "-f", fields, name)
    for name in ("j4", "j5"):
        pair.same("start", name)
    # "No such container: X" is said in lamina's words (no capital).
    for flags in (
        ("--pid", "container:nosuch"),
        ("--ipc", "container:nosuch"),
        ("--pid", "host:x"),
    ):
        pair.same("create", *flags, IMAGE, words=False)
    pair.same("rm", "-f", "donor")
    pair.same("start", "j1", words=False)
    pair.same("rm", "-f", "sdonor")
    pair.same("start", "j1", words=False)


def test_sysctls(pair: Pair) -> None:
    show = "cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start"
    for args in (
        ("--sysctl", "net.ipv4.ip_forward=1", IMAGE, "cat", "/proc/sys/net/ipv4/ip_forward"),
        ("--sysctl", "kernel.shmmax=1000000", IMAGE, "cat", "/proc/sys/kernel/shmmax"),
        ("--sysctl", "fs.mqueue.msg_max=20", IMAGE, "cat", "/proc/sys/fs/mqueue/msg_max"),
        ("--sysctl", "kernel.sem=250 32000 32 128", IMAGE, "cat", "/proc/sys/kernel/sem"),
        ("--sysctl", "net.ipv4.ip_forward= 1", IMAGE, "cat", "/proc/sys/net/ipv4/ip_forward"),
        (IMAGE, "sh", "-c", show),
        ("--sysctl", "net.ipv4.ping_group_range=1 2", IMAGE, "sh", "-c", show),
        ("--network", "host", IMAGE, "sh", "-c", show),
        ("--sysctl", "kernel.hostname=foo", IMAGE, "true"),
        ("--sysctl", "vm.swappiness=1", IMAGE, "true"),
        ("--sysctl", "net.ipv4.ip_forward", IMAGE, "true"),
        ("--sysctl", "=1", IMAGE, "true"),
    ):
        pair.same("run", "--rm", *args)
    for name, flags in (
        ("s1", ("--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=1000000",
                "--sysctl", "net.ipv4.ip_forward=0")),
        ("s2", ()),
    ):  # fmt: skip
        pair.same("create", "--name", name, *flags, IMAGE, "true")
        pair.same("inspect", "-f", "{{json .HostConfig.Sysctls}}", name)
    # runc's refusals at start: the same words, wrapped by containerd's and lamina's own.
    for flags in (
        ("--network", "host", "--sysctl", "net.ipv4.ip_forward=1"),
        ("--ipc", "host", "--sysctl", "kernel.shmmax=1000000"),
        ("--ipc", "host", "--sysctl", "fs.mqueue.msg_max=20"),
        ("--sysctl", "net.nosuch=1"),
        ("--sysctl", "net.ipv4.ip_forward=abc"),
    ):
        theirs, ours = pair.each("run", "--rm", *flags, IMAGE, "true")
        assert ours[0] == theirs[0], flags
        runc_words = theirs[2][0].rsplit("runc create failed: ", 1)[1].removesuffix(": unknown")
        assert ours[2][0].endswith(runc_words), (flags, ours, theirs)


def test_cpusets(pair: Pair) -> None:
    cpuset = "cat /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset/cpuset.mems"
    fields = "{{json .HostConfig.CpusetCpus}} {{json .HostConfig.CpusetMems}}"
    for flags in (
        ("--cpuset-cpus", "0"), ("--cpuset-cpus", "0,1"), ("--cpuset-mems", "0"),
        ("--cpuset-cpus", "01"), ("--cpuset-cpus", "0-4095"), ("--cpuset-cpus", "0-a"),
        ("--cpuset-cpus", "1-0"), ("--cpuset-cpus", "-1"), ("--cpuset-cpus", "9999"),
        ("--cpuset-cpus", "0, 1"), ("--cpuset-cpus", "0,,1"), ("--cpuset-mems", "1"),
        ("--cpuset-mems", "x"), ("--cpuset-cpus", "4095", "--cpuset-mems", "x"),
        ("--cpuset-cpus", "4095", "-m", "1m"), ("--cpus", "4096", "--cpuset-cpus", "4095"),
    ):  # fmt: skip
        pair.same("run", "--rm", *flags, IMAGE, "sh", "-c", cpuset)
    pair.same("create", "--name", "later", "--cpuset-cpus", "0", IMAGE, "sh", "-c", cpuset)
    pair.same("inspect", "-f", fields, "later")
    pair.same("run", "-d", "--name", "up", IMAGE, "sleep", "300")
    for args in (
        ("--cpuset-cpus", "0"), ("--cpuset-mems", "0"), ("--cpuset-cpus", "0-4095"),
        ("--cpuset-cpus", "x"), ("--cpuset-cpus", ""), ("--cpuset-mems", "1"),
    ):  # fmt: skip
        pair.same("update", *args, "up")
        pair.same("inspect", "-f", fields, "up")
        pair.same("exec", "up", "sh", "-c", cpuset)
    pair.same("update", "--cpuset-cpus", "0", "later")
    pair.same("inspect", "-f", fields, "later")
    pair.same("update", "--cpuset-cpus", "4095", "later")


def test_oom_and_domainname(pair: Pair) -> None:
    show = "head -1 /sys/fs/cgroup/memory/memory.oom_control; cat /proc/1/oom_score_adj"
    for args in (
        ("--oom-kill-disable", IMAGE, "sh", "-c", show),
        ("--oom-kill-disable", "-m", "64m", IMAGE, "sh", "-c", show),
        ("--oom-kill-disable=false", IMAGE, "sh", "-c", show),
        ("--oom-score-adj", "500", IMAGE, "sh", "-c", show),
        ("--oom-score-adj", "0x10", IMAGE, "sh", "-c", show),
        ("--oom-score-adj", "010", IMAGE, "sh", "-c", show),
        ("--oom-score-adj", "1001", IMAGE, "true"),
        ("--oom-score-adj", "-1001", IMAGE, "true"),
        ("--oom-score-adj", "x", IMAGE, "true"),
        ("--oom-score-adj", "1001", "-m", "1m", IMAGE, "true"),
        ("--domainname", "example.com", IMAGE, "cat", "/proc/sys/kernel/domainname"),
        ("--domainname", "bad domain!", IMAGE, "cat", "/proc/sys/kernel/domainname"),
        ("--domainname", "a" * 70, IMAGE, "cat", "/proc/sys/kernel/domainname"),
        ("--domainname", "", IMAGE, "cat", "/proc/sys/kernel/domainname"),
        ("--network", "host", "--domainname", "d", IMAGE, "cat", "/proc/sys/kernel/domainname"),
    ):
        pair.same("run", "--rm", *args)
    fields = (
        "{{.HostConfig.OomKillDisable}} {{.HostConfig.OomScoreAdj}} {{json .Config.Domainname}}"
    )
    for name, flags in (
        ("o1", ("--oom-kill-disable", "--oom-score-adj", "5", "--domainname", "dom")),
        ("o2", ()),
    ):
        pair.same("create", "--name", name, *flags, IMAGE)  # the warnings, as Docker's
        pair.same("inspect", "-f", fields, name)
    # runc's refusals at start: the same words, wrapped by containerd's and lamina's own.
    for flags in (("--uts", "host", "--domainname", "d"), ("--oom-score-adj", "-1000")):
        theirs, ours = pair.each("run", "--rm", *flags, IMAGE, "true")
        assert ours[0] == theirs[0], flags
        runc_words = theirs[2][0].rsplit("runc create failed: ", 1)[1].removesuffix(": unknown")
        assert ours[2][0].endswith(runc_words), (flags, ours, theirs)


def test_logging(pair: Pair) -> None:
    for args in (
        ("--log-driver", "none", IMAGE, "echo", "hi"),
        ("--log-driver", "bogus", IMAGE, "true"),
        ("--log-opt", "max-size=1k", IMAGE, "true"),
        ("--log-opt", "bogus=1", IMAGE, "true"),
        ("--log-opt", "max-size=x", IMAGE, "true"),
        ("--log-opt", "max-size=0", IMAGE, "true"),
        ("--log-opt", "max-size=-1", IMAGE, "true"),
        ("--log-opt", "max-size", IMAGE, "true"),
        ("--log-opt", "max-file=0", IMAGE, "true"),
        ("--log-opt", "max-file=x", IMAGE, "true"),
        ("--log-opt", "max-file=3", IMAGE, "true"),
        ("--log-driver", "none", "--log-opt", "max-size=1k", IMAGE, "true"),
    ):
        pair.same("run", "--rm", *args)
    pair.same("run", "-d", "--name", "quiet", "--log-driver", "none", IMAGE, "echo", "hi")
    pair.same("wait", "quiet")
    for args in (("logs", "quiet"), ("logs", "-f", "quiet")):
        pair.same(*args)
    fields = "{{json .HostConfig.LogConfig}} {{json .LogPath}}"
    pair.same("inspect", "-f", fields, "quiet")
    fields = "{{json .HostConfig.LogConfig}}"
    for name, flags in (
        ("l1", ("--log-opt", "max-size=1k", "--log-opt", "max-file=3")),
        ("l2", ("--log-opt", "max-size=1k", "--log-opt", "max-size=2k")),
        ("l3", ("--log-driver", "json-file")),
        ("l4", ("--log-opt", "max-size=x")),
    ):
        pair.same("create", "--name", name, *flags, IMAGE, "sh", "-c", HUNDRED)
        pair.same("inspect", "-f", fields, name)
    pair.same("start", "l4")  # its logger refuses the size
    # Rotation: where each rotates depends on its entries' sizes (their time stamps), so
    # what is compared is the shape: the same files, each rotated one reaching 1000 bytes and
    # no entry past it, `logs` giving the last lines in order, and --tail.
    pair.same("start", "-a", "l1")
    ids = (
        pair.dockerd.run("inspect", "-f", "{{.Id}}", "l1").stdout.decode().strip(),
        (pair.lamina.out("inspect", "-f", "{{.Id}}", "l1").strip()),
    )
    dirs = (
        pair.dockerd.base / "data" / "containers" / ids[0],
        pair.lamina.root / "containers" / ids[1],
    )
    files = [
        sorted(
            (p.name.removeprefix(cid), p.name.endswith(".log") or p.stat().st_size >= 1000)
            for p in d.glob(f"{cid}-json.log*")
        )
        for d, cid in zip(dirs, ids, strict=True)
    ]
    assert (
        files[1] == files[0] == [("-json.log", True), ("-json.log.1", True), ("-json.log.2", True)]
    )
    theirs, ours = pair.each("logs", "l1")
    for out in (theirs[1], ours[1]):
        lines = out.split()
        assert 26 <= len(lines) <= 40 and lines == [
            f"line{i}" for i in range(101 - len(lines), 101)
        ]
    pair.same("logs", "--tail", "3", "l1")


HUNDRED = "for i in $(seq 1 100); do echo line$i; done"
