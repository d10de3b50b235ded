"""``create``/``run`` flags whose effect is seen from inside the container -- devices, other
containers' volumes, the container-id file, namespaces, sysctls, cpusets, the OOM killer's
settings, the domain name -- checked against what docker 20.10 showed for the same commands
(the notes in each test say what it printed). ``test_run_flags_docker`` asks dockerd itself,
where it is installed."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_containers import Lamina, _lamina

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]


@pytest.fixture
def lamina(shm_tmp: Path, busybox_rootfs_tar: Path) -> Iterator[Lamina]:
    with _lamina(shm_tmp / "root", "overlay2", busybox_rootfs_tar) as lam:
        yield lam


def _fails(lamina: Lamina, *args: str) -> tuple[int, str]:
    r = lamina.run(*args, check=False)
    return r.returncode, r.stderr


# -- --device, --device-cgroup-rule ---------------------------------------------------------

DEVICES_LIST = "cat /sys/fs/cgroup/devices/devices.list"


def test_a_device_is_made_and_allowed(lamina: Lamina) -> None:
    # docker 20.10: /dev/fuse as on the host (crw------- 10:229), /dev/mynull a 1:3 node, and
    # the container's devices.list as asserted (runc sorts it; "c 42:* rmw" reads rwm).
    script = f"stat -c '%A %t:%T %n' /dev/fuse /dev/mynull; {DEVICES_LIST}"
    out = lamina.out(
        "run", "--rm", "--device", "/dev/fuse", "--device", "/dev/null:/dev/mynull:r",
        "--device-cgroup-rule", "c 42:* rmw", "busybox", "sh", "-c", script,
    )  # fmt: skip
    assert out.splitlines() == [
        "crw------- a:e5 /dev/fuse",
        "crw-rw-rw- 1:3 /dev/mynull",
        *("b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm"),
        *("c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 10:200 rwm", "c 10:229 rwm"),
        *("c 42:* rwm", "c 136:* rwm"),
    ]
    fields = "{{json .HostConfig.Devices}} {{json .HostConfig.DeviceCgroupRules}}"
    cid = lamina.out("create", "--device", "/dev/null:/dev/x/", "busybox").strip()
    assert lamina.out("inspect", "-f", fields, cid) == (
        '[{"PathOnHost":"/dev/null","PathInContainer":"/dev/x","CgroupPermissions":"rwm"}] null\n'
    )
    cid = lamina.out("create", "busybox").strip()
    assert lamina.out("inspect", "-f", fields, cid) == "[] null\n"


@pytest.mark.skipif(not os.path.exists("/dev/loop0"), reason="no /dev/loop0 on this host")
def test_a_devices_permissions_are_its_cgroup_rule(lamina: Lamina) -> None:
    # docker 20.10, --device /dev/loop0:/dev/xl:r: the node reads, a write open is refused
    # by the cgroup; a node made in the container without a rule (7:1) cannot be opened at
    # all, with --device-cgroup-rule 'b 7:0 r' it reads.
    script = (
        "dd if=/dev/xl of=/dev/null count=1 2>/dev/null && echo read; "
        "echo > /dev/xl; mknod /dev/y b 7 1; dd if=/dev/y of=/dev/null count=1 2>&1"
    )
    r = lamina.run(
        "run", "--rm", "--device", "/dev/loop0:/dev/xl:r", "busybox", "sh", "-c", script,
        check=False,
    )  # fmt: skip
    assert r.stdout == "read\ndd: can't open '/dev/y': Operation not permitted\n"
    assert r.stderr == "sh: can't create /dev/xl: Operation not permitted\n"
    r = lamina.run(
        "run", "--rm", "--device-cgroup-rule", "b 7:0 r", "busybox", "sh", "-c",
        "mknod /dev/y b 7 0; dd if=/dev/y of=/dev/null count=1 2>/dev/null && echo read",
    )  # fmt: skip
    assert r.stdout == "read\n"


def test_device_refusals(lamina: Lamina) -> None:
    # docker 20.10: run --device /dev/nosuch: 'error gathering device information while
    # adding custom device "/dev/nosuch": no such file or directory', status 127 (its CLI
    # reads those words); a file that is no device: "not a device node", 125. create takes
    # both and the start refuses them (status 1); the container stays, created.
    gathering = 'error gathering device information while adding custom device "{}": {}'
    code, err = _fails(lamina, "run", "--rm", "--device", "/dev/nosuch", "busybox", "true")
    assert (code, err) == (
        127, "error: " + gathering.format("/dev/nosuch", "no such file or directory") + "\n"
    )  # fmt: skip
    code, err = _fails(lamina, "run", "--rm", "--device", "/etc/passwd", "busybox", "true")
    assert (code, err) == (
        125,
        "error: " + gathering.format("/etc/passwd", "not a device node") + "\n",
    )
    assert lamina.out("ps", "-aq") == ""
    lamina.run("create", "--name", "later", "--device", "/dev/nosuch", "busybox", "true")
    code, err = _fails(lamina, "start", "later")
    assert (code, err) == (
        1, "error: " + gathering.format("/dev/nosuch", "no such file or directory") + "\n"
    )  # fmt: skip
    assert lamina.out("inspect", "-f", "{{.State.Status}}", "later") == "created\n"
    # The CLI's checks (status 125 for run), in its words.
    for value, message in (
        ("/dev/null:/dev/x:rwx", "bad mode specified: rwx"),
        ("/dev/null:x", "x is not an absolute path"),
        (":/dev/x", "bad format for path: :/dev/x"),
    ):
        code, err = _fails(lamina, "run", "--rm", "--device", value, "busybox", "true")
        assert (code, err) == (125, f"error: {message}\n")
    code, err = _fails(lamina, "run", "--rm", "--device-cgroup-rule", "c 1:3  r", "busybox", "true")
    assert (code, err) == (
        125,
        'error: invalid argument "c 1:3  r" for "--device-cgroup-rule" flag: invalid device '
        "cgroup format 'c 1:3  r'\n",
    )
    rule = "c 99999999999999999999:1 r"
    code, err = _fails(lamina, "run", "--rm", "--device-cgroup-rule", rule, "busybox", "true")
    assert (code, err) == (
        125,
        f"error: invalid major value in device cgroup rule format: '{rule}'\n",
    )
    assert json.loads(lamina.out("ps", "-a", "--format", "{{json .Names}}")) == "later"


# -- --volumes-from -------------------------------------------------------------------------


def test_volumes_from_shares_the_sources_volumes_and_binds(lamina: Lamina, shm_tmp: Path) -> None:
    host = shm_tmp / "host"
    host.mkdir()
    (host / "h").write_text("host\n")
    lamina.run(
        "create",
        "--name",
        "src",
        "-v",
        "/anon",
        "-v",
        "nv:/named",
        "-v",
        f"{host}:/bind:ro",
        "busybox",
    )
    # docker 20.10: the same volumes and bind, read-write as in the source ("/bind" stays
    # read-only); :ro makes every one read-only ("Read-only file system").
    script = "echo a > /anon/f; echo n > /named/f; cat /bind/h; touch /bind/x 2>&1 | cut -d: -f2-"
    out = lamina.out("run", "--rm", "--volumes-from", "src", "busybox", "sh", "-c", script)
    assert out == "host\n /bind/x: Read-only file system\n"
    r = lamina.run(
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "cat /anon/f /named/f; touch /anon/g",
        check=False,
    )
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "a\nn\n", "touch: /anon/g: Read-only file system\n"
    )  # fmt: skip
    # docker inspect: the source's Mounts with Mode "" (RW as the source's, or false with
    # :ro), HostConfig.VolumesFrom as given.
    cid = lamina.out("create", "--volumes-from", "src:ro", "busybox").strip()
    mounts = json.loads(lamina.out("inspect", "-f", "{{json .Mounts}}", cid))
    src_mounts = json.loads(lamina.out("inspect", "-f", "{{json .Mounts}}", "src"))
    assert mounts == [{**m, "Mode": "", "RW": False} for m in src_mounts]
    assert lamina.out("inspect", "-f", "{{json .HostConfig.VolumesFrom}}", cid) == '["src:ro"]\n'
    assert lamina.out("inspect", "-f", "{{json .HostConfig.VolumesFrom}}", "src") == "null\n"
    # The container's own bind and named volume win; its anonymous -v at a destination it
    # takes from src is dropped (Config.Volumes keeps it, as Docker's).
    other = shm_tmp / "other"
    other.mkdir()
    cid = lamina.out(
        "create", "--volumes-from", "src", "-v", f"{other}:/anon", "-v", "/named", "busybox"
    ).strip()
    got = {
        m["Destination"]: m.get("Name") or m["Source"]
        for m in json.loads(lamina.out("inspect", "-f", "{{json .Mounts}}", cid))
    }
    assert got == {"/anon": str(other), "/named": "nv", "/bind": str(host)}
    assert lamina.out("inspect", "-f", "{{json .Config.Volumes}}", cid) == '{"/named":{}}\n'
    # Errors, in the daemon's words (status 1 for create, 125 for run).
    for spec, message in (
        ("src:nocopy", "invalid mode: nocopy"),
        ("nosuch", "no such container: nosuch"),
        ("", "volumes-from specification cannot be an empty string"),
    ):
        assert _fails(lamina, "create", "--volumes-from", spec, "busybox") == (
            1,
            f"error: {message}\n",
        )
        assert _fails(lamina, "run", "--volumes-from", spec, "busybox")[0] == 125


def test_an_inherited_volume_is_not_filled_from_the_image(lamina: Lamina, shm_tmp: Path) -> None:
    # docker 20.10: a volume taken from another container is left as it is (CopyData false):
    # the image's /data does not show in it; a new volume at /data is filled.
    ctx = shm_tmp / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN mkdir /data && echo img > /data/f\n")
    lamina.run("build", "-q", "-t", "withdata", str(ctx))
    lamina.run("create", "--name", "src", "-v", "/data", "busybox")  # busybox has no /data
    assert lamina.out("run", "--rm", "--volumes-from", "src", "withdata", "ls", "/data") == ""
    assert lamina.out("run", "--rm", "-v", "/data", "withdata", "ls", "/data") == "f\n"


def test_rm_of_the_source_leaves_its_volumes_to_the_other(lamina: Lamina) -> None:
    # docker 20.10: `volume rm` of a volume another container took is refused ("volume is in
    # use"); `rm -v` of the source removes the container and keeps the anonymous volume for
    # the other, which runs on with it; `rm -v` of that one removes it (a named one stays).
    lamina.run("create", "--name", "src", "-v", "/anon", "-v", "nv:/named", "busybox")
    lamina.run(
        "run", "--name", "user", "--volumes-from", "src", "busybox", "sh", "-c", "echo a > /anon/f"
    )
    anon = next(v for v in lamina.out("volume", "ls", "-q").split() if v != "nv")
    code, err = _fails(lamina, "volume", "rm", anon)
    assert code == 1 and "volume is in use" in err
    assert lamina.out("rm", "-v", "src") == "src\n"
    assert sorted(lamina.out("volume", "ls", "-q").split()) == sorted([anon, "nv"])
    assert lamina.out("start", "-a", "user") == ""
    assert lamina.out("run", "--rm", "--volumes-from", "user", "busybox", "cat", "/anon/f") == "a\n"
    assert lamina.out("rm", "-v", "user") == "user\n"
    assert lamina.out("volume", "ls", "-q") == "nv\n"
    assert _fails(lamina, "create", "--volumes-from", "src", "busybox")[0] == 1


def test_a_non_recursive_bind_stays_so_in_the_containers_that_take_it(
    lamina: Lamina, shm_tmp: Path
) -> None:
    # docker 20.10: a --mount bind-nonrecursive taken with --volumes-from (twice removed too)
    # shows no submount; the recursive -v bind of the same dir does; the container's own
    # mounts at those destinations win.
    host = shm_tmp / "host"
    (host / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(host / "sub")], check=True)
    try:
        (host / "sub" / "inside").touch()
        lamina.run(
            "create",
            "--name",
            "nr",
            "--mount",
            f"type=bind,src={host},target=/flat,bind-nonrecursive",
            "-v",
            f"{host}:/deep",
            "busybox",
        )
        lamina.run("create", "--name", "nr2", "--volumes-from", "nr", "busybox")
        show = ("busybox", "sh", "-c", "echo $(ls /flat/sub) / $(ls /deep/sub)")
        assert lamina.out("run", "--rm", "--volumes-from", "nr2", *show) == "/ inside\n"
        swapped = (
            "--mount",
            f"type=bind,src={host},target=/deep,bind-nonrecursive",
            "-v",
            f"{host}:/flat",
        )
        assert lamina.out("run", "--rm", "--volumes-from", "nr2", *swapped, *show) == "inside /\n"
    finally:
        subprocess.run(["umount", str(host / "sub")], check=False)


# -- --cidfile ------------------------------------------------------------------------------


def test_cidfile(lamina: Lamina, shm_tmp: Path) -> None:
    # docker 20.10: the full id without a newline (-rw-r--r--), ContainerIDFile as given; a
    # file there already refuses the create ("container ID file found, make sure the other
    # container isn't running or delete F": create 1, run 125) and leaves it; a create that
    # fails takes its file back; a start that fails, or --rm, leaves it.
    cid_path = shm_tmp / "cid"
    cid = lamina.out("create", "--cidfile", str(cid_path), "busybox").strip()
    assert cid_path.read_text() == cid
    assert lamina.out("inspect", "-f", "{{.HostConfig.ContainerIDFile}}", cid) == f"{cid_path}\n"
    found = (
        "error: container ID file found, make sure the other container isn't running or "
        f"delete {cid_path}\n"
    )
    assert _fails(lamina, "create", "--cidfile", str(cid_path), "busybox") == (1, found)
    assert _fails(lamina, "run", "--cidfile", str(cid_path), "busybox", "true") == (125, found)
    assert cid_path.read_text() == cid and len(lamina.out("ps", "-aq").split()) == 1
    refused = shm_tmp / "refused"
    assert _fails(lamina, "create", "--cidfile", str(refused), "--name", "a/b", "busybox")[0] == 1
    assert (
        _fails(lamina, "run", "--cidfile", str(refused), "-v", "nv:/x:bogus", "busybox")[0] == 125
    )
    assert not refused.exists() and lamina.out("volume", "ls", "-q") == ""
    failed = shm_tmp / "failed"
    assert _fails(lamina, "run", "--cidfile", str(failed), "busybox", "nosuch")[0] == 127
    assert failed.read_text() == lamina.out("ps", "-alq", "--no-trunc").strip()
    removed = shm_tmp / "removed"
    lamina.run("run", "--rm", "--cidfile", str(removed), "busybox", "true")
    assert len(removed.read_text()) == 64
    # docker 20.10: "failed to create the container ID file: open F: no such file or
    # directory", run 127 (its CLI reads those words), create 1.
    missing = shm_tmp / "nodir" / "cid"
    message = (
        f"error: failed to create the container ID file: open {missing}: no such file or "
        "directory\n"
    )
    assert _fails(lamina, "run", "--cidfile", str(missing), "busybox", "true") == (127, message)
    assert _fails(lamina, "create", "--cidfile", str(missing), "busybox") == (1, message)
    assert len(lamina.out("ps", "-aq").split()) == 2  # cid's and failed's


# -- --pid, --ipc, --uts --------------------------------------------------------------------


def _started(lamina: Lamina, name: str, *flags: str, script: str = "sleep 300") -> str:
    return lamina.out("run", "-d", "--name", name, *flags, "busybox", "sh", "-c", script).strip()


def test_host_namespaces(lamina: Lamina) -> None:
    # docker 20.10: --pid host sees the host's PID 1; --uts host the host's name (while
    # /etc/hostname and $HOSTNAME keep the container's own); --ipc host the host's /dev/shm
    # (a tmpfs) and its IPC namespace; --ipc none no /dev/shm at all.
    with open("/proc/1/comm", encoding="utf-8") as f:
        init = f.read()
    assert lamina.out("run", "--rm", "--pid", "host", "busybox", "cat", "/proc/1/comm") == init
    cid = lamina.out(
        "create",
        "--uts",
        "host",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hostname; echo $HOSTNAME",
    ).strip()
    assert lamina.out("start", "-a", cid) == f"{os.uname().nodename}\n{cid[:12]}\n{cid[:12]}\n"
    ipc = "readlink /proc/self/ns/ipc; stat -f -c %T /dev/shm"
    host_ipc = os.readlink("/proc/self/ns/ipc")
    assert (
        lamina.out("run", "--rm", "--ipc", "host", "busybox", "sh", "-c", ipc)
        == f"{host_ipc}\ntmpfs\n"
    )
    out = lamina.out("run", "--rm", "--ipc", "private", "busybox", "sh", "-c", ipc)
    assert out.split()[0] != host_ipc
    r = lamina.run("run", "--rm", "--ipc", "none", "busybox", "ls", "/dev/shm", check=False)
    assert (r.returncode, r.stderr) == (1, "ls: /dev/shm: No such file or directory\n")
    fields = "{{.HostConfig.PidMode}}|{{.HostConfig.IpcMode}}|{{.HostConfig.UTSMode}}"
    assert lamina.out("inspect", "-f", fields, cid) == "|private|host\n"
    # The CLI's checks and the daemon's (run: 125, create: 1), in their words.
    for flags, message in (
        (("--pid", "bogus"), "--pid: invalid PID mode"),
        (("--pid", "container:"), "--pid: invalid PID mode"),
        (("--uts", "container:x"), "--uts: invalid UTS mode"),
        (("--uts", "host", "--hostname", "foo"), "conflicting options: hostname and the UTS mode"),
        (("--ipc", "bogus"), "Invalid IPC mode: bogus"),  # the start's
    ):
        assert _fails(lamina, "run", "--rm", *flags, "busybox", "true") == (
            125,
            f"error: {message}\n",
        )
    assert lamina.out("ps", "-aq") == f"{cid[:12]}\n"


def test_joining_another_containers_namespaces(lamina: Lamina) -> None:
    # docker 20.10: --pid container:X sees X's processes (X's command as PID 1); --ipc
    # container:X needs X shareable (and running) and shares its /dev/shm and IPC namespace;
    # HostConfig keeps "container:<X's full id>".
    donor = _started(
        lamina, "donor", "--ipc", "shareable", script="echo hi > /dev/shm/x; sleep 300"
    )
    plain = _started(lamina, "plain")
    script = "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /dev/shm/x; readlink /proc/self/ns/ipc"
    out = lamina.out(
        "run",
        "--rm",
        "--pid",
        "container:donor",
        "--ipc",
        "container:donor",
        "busybox",
        "sh",
        "-c",
        script,
    )
    donor_ipc = lamina.out("exec", "donor", "readlink", "/proc/self/ns/ipc")
    assert out == "sleep 300 \nhi\n" + donor_ipc  # its shell execs sleep
    cid = lamina.out(
        "create", "--pid", "container:plain", "--ipc", "container:donor", "busybox"
    ).strip()
    assert lamina.out("inspect", "-f", "{{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}", cid) == (
        f"container:{plain} container:{donor}\n"
    )

    # The donor's /dev/shm is a tmpfs in its container dir while it runs, and only then.
    def shm_mounts() -> list[str]:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            return [line for line in f if f"{donor}/mounts/shm" in line]

    assert len(shm_mounts()) == 1
    # Refusals (run: 125), in Docker's words.
    for flags, message in (
        (
            ("--ipc", "container:plain"),
            f"can't join IPC of container {plain}: non-shareable IPC (hint: use "
            "IpcMode:shareable for the donor container)",
        ),
        (("--ipc", "container:nosuch"), "no such container: nosuch"),
        (("--pid", "container:nosuch"), "no such container: nosuch"),
    ):
        assert _fails(lamina, "run", "--rm", *flags, "busybox", "true") == (
            125,
            f"error: {message}\n",
        )
    lamina.run("stop", "-t", "0", "donor", "plain")
    assert shm_mounts() == []
    assert _fails(lamina, "start", cid) == (
        1,
        f"error: can't join IPC of container {donor}: container {donor} is not running\n",
    )
    lamina.run("start", "donor")
    assert _fails(lamina, "start", cid) == (1, f"error: container {plain} is not running\n")
    lamina.run("rm", "-f", "plain", "donor")
    assert shm_mounts() == []
    # Both gone: the IPC mode is looked at first, as Docker's start does.
    message = f"error: can't join IPC of container {donor}: no such container: {donor}\n"
    assert _fails(lamina, "start", cid) == (1, message)
    joiner = lamina.out("create", "--pid", f"container:{cid}", "busybox").strip()
    lamina.run("rm", cid)
    message = (
        f"error: cannot join PID of a non running container: {cid}: no such container: {cid}\n"
    )
    assert _fails(lamina, "start", joiner) == (1, message)


# -- --sysctl -------------------------------------------------------------------------------


def test_sysctls(lamina: Lamina) -> None:
    # docker 20.10: the values in the container's own namespaces (and its defaults there:
    # ping for every group, any port bound by anyone); HostConfig.Sysctls sorted, a later
    # key winning, absent without the flag; a sysctl off the CLI's list refused at once;
    # runc's refusal, at start, of net.* on the host's network and of IPC ones in the host's
    # IPC namespace (create takes them).
    show = (
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max "
        "/proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start"
    )
    cid = lamina.out(
        "create", "--sysctl", "net.ipv4.ip_forward=0", "--sysctl", "kernel.shmmax=1000000",
        "--sysctl", "fs.mqueue.msg_max=20", "--sysctl", "net.ipv4.ip_forward=1",
        "busybox", "sh", "-c", show,
    ).strip()  # fmt: skip
    assert lamina.out("start", "-a", cid).split("\n") == [
        "1",
        "1000000",
        "20",
        "0\t2147483647",
        "0",
        "",
    ]
    assert lamina.out("inspect", "-f", "{{json .HostConfig.Sysctls}}", cid) == (
        '{"fs.mqueue.msg_max":"20","kernel.shmmax":"1000000","net.ipv4.ip_forward":"1"}\n'
    )
    plain = lamina.out("create", "busybox").strip()
    assert lamina.out("inspect", "-f", "{{json .HostConfig.Sysctls}}", plain) == "null\n"
    for value in ("vm.swappiness=1", "kernel.hostname=x", "net.ipv4.ip_forward"):
        assert _fails(lamina, "run", "--rm", "--sysctl", value, "busybox", "true") == (
            125,
            f'error: invalid argument "{value}" for "--sysctl" flag: sysctl \'{value}\' is not '
            "whitelisted\n",
        )
    for flags, words in (
        (
            ("--network", "host", "--sysctl", "net.ipv4.ip_forward=1"),
            'sysctl "net.ipv4.ip_forward" not allowed in host network namespace',
        ),
        (
            ("--ipc", "host", "--sysctl", "kernel.shmmax=1"),
            'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace',
        ),
    ):
        cid = lamina.out("create", *flags, "busybox", "true").strip()
        code, err = _fails(lamina, "start", cid)
        assert code == 1 and err.endswith(f"{words}\n"), err
    # A key the kernel does not have: runc's "open /proc/sys/net/nosuch: no such file or
    # directory", which docker run exits 127 for.
    assert _fails(lamina, "run", "--rm", "--sysctl", "net.nosuch=1", "busybox", "true")[0] == 127


# -- --cpuset-cpus, --cpuset-mems (create, run, update) -------------------------------------

CPUSET = "cat /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/cpuset/cpuset.mems"
pytest_cpuset = pytest.mark.skipif(
    not os.path.exists("/sys/fs/cgroup/cpuset/cpuset.cpus"), reason="no v1 cpuset hierarchy"
)


def _host_cpus() -> str:
    with open("/sys/fs/cgroup/cpuset/cpuset.cpus", encoding="ascii") as f:
        return f.read().strip()


@pytest_cpuset
def test_cpusets(lamina: Lamina) -> None:
    # docker 20.10 (2 CPUs, one memory node): the container's cpuset files as given;
    # HostConfig.CpusetCpus/CpusetMems ("" unset); CPUs or nodes the host lacks refused at
    # create in its words (run 125, create 1); a list that is no list, likewise.
    cid = lamina.out(
        "create", "--cpuset-cpus", "0", "--cpuset-mems", "0", "busybox", "sh", "-c", CPUSET
    )
    assert lamina.out("start", "-a", cid.strip()) == "0\n0\n"
    fields = "{{json .HostConfig.CpusetCpus}} {{json .HostConfig.CpusetMems}}"
    assert lamina.out("inspect", "-f", fields, cid.strip()) == '"0" "0"\n'
    plain = lamina.out("create", "busybox").strip()
    assert lamina.out("inspect", "-f", fields, plain) == '"" ""\n'
    available = _host_cpus()
    unavailable = "Requested {} are not available - requested {}, available: {}"
    invalid = "Invalid value {} for cpuset {}: {}"
    for flags, message in (
        (("--cpuset-cpus", "0-4095"), unavailable.format("CPUs", "0-4095", available)),
        (("--cpuset-mems", "4095"), unavailable.format("memory nodes", "4095", "0")),
        (("--cpuset-cpus", "1-0"), invalid.format("1-0", "cpus", "invalid format: 1-0")),
        (
            ("--cpuset-cpus", "9999"),
            invalid.format("9999", "cpus", "value of out range, maximum is 8192"),
        ),
        (("--cpuset-mems", "x"), invalid.format("x", "mems", "invalid format: x")),
    ):
        assert _fails(lamina, "run", "--rm", *flags, "busybox", "true") == (
            125,
            f"error: {message}\n",
        )
        assert _fails(lamina, "create", *flags, "busybox", "true") == (1, f"error: {message}\n")
    assert lamina.out("ps", "-aq").split() == [plain[:12], cid.strip()[:12]]


@pytest_cpuset
def test_cpusets_are_updated_and_put_back(lamina: Lamina) -> None:
    # docker 20.10 update: the running container's cpuset at once, a stopped one's at its
    # next start; the daemon's refusals leave both; runc's refusal ("the minimum allowed
    # cpu-shares is 2") after it wrote the cpuset leaves Docker's cpuset changed and its
    # record not -- lamina puts the cgroup back too.
    lamina.run("run", "-d", "--name", "up", "busybox", "sleep", "300")
    available = _host_cpus()
    fields = "{{json .HostConfig.CpusetCpus}} {{json .HostConfig.CpusetMems}}"

    def state() -> tuple[str, str]:
        return (
            lamina.out("inspect", "-f", fields, "up"),
            lamina.out("exec", "up", "sh", "-c", CPUSET),
        )

    assert state() == ('"" ""\n', f"{available}\n0\n")
    assert lamina.out("update", "--cpuset-cpus", "0", "--cpuset-mems", "0", "up") == "up\n"
    assert state() == ('"0" "0"\n', "0\n0\n")
    cid = lamina.out("inspect", "-f", "{{.Id}}", "up").strip()
    for args, message in (
        (
            ("--cpuset-cpus", "0-4095"),
            f"Requested CPUs are not available - requested 0-4095, available: {available}",
        ),
        (("--cpuset-cpus", "x"), "Invalid value x for cpuset cpus: invalid format: x"),
        (
            ("--cpuset-cpus", available, "-c", "1"),
            f"Cannot update container {cid}: the minimum allowed cpu-shares is 2",
        ),
    ):
        assert _fails(lamina, "update", *args, "up") == (1, f"error: {message}\n")
        assert state() == ('"0" "0"\n', "0\n0\n")
    lamina.run("create", "--name", "later", "busybox", "sh", "-c", CPUSET)
    assert lamina.out("update", "--cpuset-cpus", "0", "later") == "later\n"
    assert lamina.out("start", "-a", "later") == "0\n0\n"


# -- --oom-kill-disable, --oom-score-adj, --domainname -------------------------------------

OOM_WARNINGS = (
    "WARNING: Disabling the OOM killer on containers without setting a '-m/--memory' limit "
    "may be dangerous.\n"
    "WARNING: OOM killer is disabled for the container, but no memory limit is set, this can "
    "result in the system running out of resources.\n"
)


@pytest.mark.skipif(
    not os.path.exists("/sys/fs/cgroup/memory/memory.oom_control"), reason="no v1 memory cgroup"
)
def test_oom_killer_and_score(lamina: Lamina) -> None:
    # docker 20.10: memory.oom_control says oom_kill_disable 1 (its two warnings without -m,
    # none with it); the score is the container's processes' oom_score_adj (0 by default);
    # HostConfig.OomKillDisable/OomScoreAdj (false, 0 unset); a score out of [-1000, 1000]
    # refused at create; one that is no int refused by its CLI.
    show = "head -1 /sys/fs/cgroup/memory/memory.oom_control; cat /proc/1/oom_score_adj"
    r = lamina.run(
        "run", "--rm", "--oom-kill-disable", "--oom-score-adj", "500", "busybox", "sh", "-c", show
    )
    assert (r.stdout, r.stderr) == ("oom_kill_disable 1\n500\n", OOM_WARNINGS)
    r = lamina.run("run", "--rm", "--oom-kill-disable", "-m", "64m", "busybox", "sh", "-c", show)
    assert (r.stdout, r.stderr) == ("oom_kill_disable 1\n0\n", "")
    assert lamina.out("run", "--rm", "busybox", "sh", "-c", show) == "oom_kill_disable 0\n0\n"
    fields = "{{.HostConfig.OomKillDisable}} {{.HostConfig.OomScoreAdj}}"
    cid = lamina.out(
        "create", "--oom-kill-disable", "-m", "64m", "--oom-score-adj", "0x10", "busybox"
    ).strip()
    assert lamina.out("inspect", "-f", fields, cid) == "true 16\n"
    cid = lamina.out("create", "busybox").strip()
    assert lamina.out("inspect", "-f", fields, cid) == "false 0\n"
    for value, message in (
        ("1001", "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
        (
            "x",
            'invalid argument "x" for "--oom-score-adj" flag: strconv.ParseInt: parsing "x": '
            "invalid syntax",
        ),
    ):
        assert _fails(lamina, "run", "--rm", "--oom-score-adj", value, "busybox", "true") == (
            125,
            f"error: {message}\n",
        )
    # Below lamina's own score: runc fails the start as under Docker ("can't get final
    # child's PID from pipe: EOF"); lamina says why when it lacks CAP_SYS_RESOURCE.
    code, err = _fails(lamina, "run", "--rm", "--oom-score-adj", "-1000", "busybox", "true")
    if code != 0:
        assert code == 125 and "hint: --oom-score-adj -1000 is below lamina's own" in err


def test_domainname(lamina: Lamina) -> None:
    # docker 20.10: the UTS namespace's domain name (as the kernel.domainname sysctl), as given
    # (64 characters at most, the kernel's limit), "(none)" without; Config.Domainname;
    # with --uts host runc refuses it at start.
    long = "a" * 70
    for value, seen in (
        ("example.com", "example.com"),
        ("bad domain!", "bad domain!"),
        (long, long[:64]),
        ("", "(none)"),
    ):
        out = lamina.out(
            "run", "--rm", "--domainname", value, "busybox", "cat", "/proc/sys/kernel/domainname"
        )
        assert out == f"{seen}\n"
    cid = lamina.out("create", "--domainname", "example.com", "busybox").strip()
    assert lamina.out("inspect", "-f", "{{json .Config.Domainname}}", cid) == '"example.com"\n'
    code, err = _fails(
        lamina, "run", "--rm", "--uts", "host", "--domainname", "x", "busybox", "true"
    )
    assert code == 125 and err.endswith(
        'sysctl "kernel.domainname" is not in a separate kernel namespace\n'
    )


# -- --log-driver, --log-opt ----------------------------------------------------------------

HUNDRED = "for i in $(seq 1 100); do echo line$i; done"


def test_a_rotated_log(lamina: Lamina) -> None:
    # docker 20.10, --log-opt max-size=1k --log-opt max-file=3: <id>-json.log, .1 and .2, the
    # rotated ones about 1000 bytes each (an entry may take one past it); `logs` reads them
    # oldest first (the last 30-odd lines, in order), --tail from the end; LogConfig as given.
    cid = lamina.out(
        "run",
        "-d",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        HUNDRED,
    ).strip()
    assert lamina.out("wait", cid) == "0\n"
    bundle = lamina.root / "containers" / cid
    logs = sorted(p.name.removeprefix(cid) for p in bundle.iterdir() if p.name.startswith(cid))
    assert logs == ["-json.log", "-json.log.1", "-json.log.2"]
    for suffix in (".1", ".2"):
        assert 1000 <= (bundle / f"{cid}-json.log{suffix}").stat().st_size < 1100
    lines = lamina.out("logs", cid).split()
    assert 26 <= len(lines) <= 40 and lines == [f"line{i}" for i in range(101 - len(lines), 101)]
    assert lamina.out("logs", "--tail", "2", cid) == "line99\nline100\n"
    assert lamina.out("inspect", "-f", "{{json .HostConfig.LogConfig}}", cid) == (
        '{"Type":"json-file","Config":{"max-file":"3","max-size":"1k"}}\n'
    )


def test_no_log(lamina: Lamina) -> None:
    # docker 20.10 --log-driver none: an attached run shows the output all the same; `logs`
    # refuses ("configured logging driver does not support reading", status 1); LogPath "".
    assert lamina.out("run", "--rm", "--log-driver", "none", "busybox", "echo", "hi") == "hi\n"
    cid = lamina.out("run", "-d", "--log-driver", "none", "busybox", "sleep", "300").strip()
    assert _fails(lamina, "logs", cid) == (
        1,
        "error: configured logging driver does not support reading\n",
    )
    fields = "{{json .HostConfig.LogConfig}} {{json .LogPath}}"
    assert lamina.out("inspect", "-f", fields, cid) == '{"Type":"none","Config":{}} ""\n'
    # (An attach, or start -a of it running, goes through the shim's socket, not the log:
    # tests/integration/test_container_attach.py.)
    init = "failed to initialize logging driver: "
    for flags, message in (
        (
            ("--log-driver", "none", "--log-opt", "max-size=1"),
            "invalid logging opts for driver none",
        ),
        (("--log-opt", "bogus=1"), "unknown log opt 'bogus' for json-file log driver"),
        (("--log-opt", "max-size=0"), init + "max-size must be a positive number"),
        (("--log-opt", "max-file=x"), init + 'strconv.Atoi: parsing "x": invalid syntax'),
    ):
        assert _fails(lamina, "run", "--rm", *flags, "busybox", "true") == (
            125,
            f"error: {message}\n",
        )
