"""build_spec: Docker's defaults, the user's asks, and the host's limits."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from lamina.errors import UsageError
from lamina.runtime import defaults
from lamina.runtime.cgroups import Resources
from lamina.runtime.spec import (
    GROUP_ADD_ANNOTATION,
    HOST_NAMESPACE,
    STOP_SIGNAL_ANNOTATION,
    DeviceMapping,
    MountSpec,
    NetworkMode,
    Rlimit,
    RunSpec,
    TmpfsSpec,
    build_spec,
    capabilities,
    read_bundle,
    write_bundle,
)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    r = tmp_path / "rootfs"
    (r / "etc").mkdir(parents=True)
    (r / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
    )
    (r / "etc/group").write_text("root:x:0:\napp:x:1000:\nwheel:x:10:app\n")
    return r


def _mask(caps: list[str]) -> int:
    return sum(1 << defaults.ALL_CAPABILITIES.index(c) for c in caps)


def test_default_capabilities_make_dockers_capeff() -> None:
    # Docker's documented CapEff for a root process with the default set.
    assert _mask(list(defaults.DEFAULT_CAPABILITIES)) == 0xA80425FB


def test_default_spec_shape(rootfs: Path) -> None:
    spec = build_spec(RunSpec(args=("sh",), hostname="h1"), rootfs=rootfs)
    assert spec["ociVersion"].startswith("1.0")
    assert spec["root"] == {"path": str(rootfs), "readonly": False}
    assert spec["hostname"] == "h1"
    proc = spec["process"]
    assert proc["args"] == ["sh"]
    assert proc["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert proc["cwd"] == "/"
    assert proc["noNewPrivileges"] is False
    assert proc["terminal"] is False
    caps = proc["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        assert _mask(caps[kind]) == 0xA80425FB
    assert caps["inheritable"] == []
    assert caps["ambient"] == []
    assert "PATH=" + defaults.DEFAULT_PATH in proc["env"]
    assert "HOSTNAME=h1" in proc["env"]
    assert "HOME=/root" in proc["env"]
    linux = spec["linux"]
    assert [n["type"] for n in linux["namespaces"]] == ["mount", "pid", "uts", "ipc", "network"]
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/sys/devices/virtual/powercap" in linux["maskedPaths"]
    assert "/proc/sysrq-trigger" in linux["readonlyPaths"]
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert linux["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert "cgroupsPath" not in linux
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/sys",
        "/sys/fs/cgroup",
        "/dev/mqueue",
        "/dev/shm",
    ]
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert "ro" in sys_mount["options"]
    assert spec["annotations"][STOP_SIGNAL_ANNOTATION] == "SIGTERM"


def test_host_network_has_no_network_namespace(rootfs: Path) -> None:
    spec = build_spec(RunSpec(args=("sh",), network=NetworkMode.HOST), rootfs=rootfs)
    assert "network" not in [n["type"] for n in spec["linux"]["namespaces"]]


def test_privileged_drops_confinement(rootfs: Path) -> None:
    spec = build_spec(RunSpec(args=("sh",), privileged=True), rootfs=rootfs)
    linux = spec["linux"]
    assert "seccomp" not in linux
    assert "maskedPaths" not in linux
    assert "readonlyPaths" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    sys_mount = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert "rw" in sys_mount["options"]


def test_cap_add_and_drop_follow_docker() -> None:
    caps = capabilities(privileged=False, cap_add=("net_admin",), cap_drop=("CAP_CHOWN", "mknod"))
    assert "CAP_NET_ADMIN" in caps
    assert "CAP_CHOWN" not in caps
    assert "CAP_MKNOD" not in caps
    assert capabilities(privileged=False, cap_add=("SYS_TIME",), cap_drop=("ALL",)) == [
        "CAP_SYS_TIME"
    ]
    everything = capabilities(privileged=False, cap_add=("ALL",), cap_drop=("SYS_ADMIN",))
    assert "CAP_SYS_ADMIN" not in everything
    assert len(everything) == len(defaults.ALL_CAPABILITIES) - 1
    # An add wins over a drop of the same capability (moby TweakCapabilities).
    assert "CAP_KILL" in capabilities(privileged=False, cap_add=("KILL",), cap_drop=("KILL",))
    with pytest.raises(UsageError):
        capabilities(privileged=False, cap_add=("CAP_FLY",), cap_drop=())


def test_cap_add_sys_admin_opens_mount_in_seccomp(rootfs: Path) -> None:
    spec = build_spec(RunSpec(args=("sh",), cap_add=("SYS_ADMIN",)), rootfs=rootfs)
    names = {n for rule in spec["linux"]["seccomp"]["syscalls"] for n in rule["names"]}
    assert "mount" in names
    assert "unshare" in names


def test_nofile_is_clamped_to_the_host_hard_limit(rootfs: Path) -> None:
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    spec = build_spec(
        RunSpec(args=("sh",), rlimits=(Rlimit(name="nproc", soft=10**9, hard=10**9),)),
        rootfs=rootfs,
    )
    limits = {r["type"]: r for r in spec["process"]["rlimits"]}
    nofile = limits["RLIMIT_NOFILE"]
    expected = min(1 << 20, host_hard) if host_hard != resource.RLIM_INFINITY else 1 << 20
    assert nofile == {"type": "RLIMIT_NOFILE", "hard": expected, "soft": expected}
    nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    if nproc_hard != resource.RLIM_INFINITY:
        assert limits["RLIMIT_NPROC"]["hard"] <= nproc_hard
    assert limits["RLIMIT_NPROC"]["soft"] <= limits["RLIMIT_NPROC"]["hard"]


def test_soft_limit_never_exceeds_hard(rootfs: Path) -> None:
    spec = build_spec(
        RunSpec(args=("sh",), rlimits=(Rlimit(name="RLIMIT_NOFILE", soft=500, hard=100),)),
        rootfs=rootfs,
    )
    nofile = spec["process"]["rlimits"][0]
    assert nofile["soft"] == 100
    with pytest.raises(UsageError):
        build_spec(
            RunSpec(args=("sh",), rlimits=(Rlimit(name="bogus", soft=1, hard=1),)), rootfs=rootfs
        )


def test_user_mounts_and_overrides(rootfs: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    spec = build_spec(
        RunSpec(
            args=("sh",),
            mounts=(
                MountSpec(source=data, destination="/data/sub", readonly=True),
                MountSpec(source=data, destination="/dev/shm"),
                MountSpec(source=data, destination="//data/"),
            ),
        ),
        rootfs=rootfs,
    )
    mounts = spec["mounts"]
    shm = [m for m in mounts if m["destination"] == "/dev/shm"]
    assert shm == [
        {
            "destination": "/dev/shm",
            "type": "bind",
            "source": str(data),
            "options": ["rbind", "rprivate", "rw"],
        }
    ]
    dests = [m["destination"] for m in mounts]
    assert dests.index("/data") < dests.index("/data/sub")
    sub = next(m for m in mounts if m["destination"] == "/data/sub")
    assert "ro" in sub["options"]


@pytest.mark.parametrize("dest", ["relative", "/a/../../etc"])
def test_bad_mount_destination_is_refused(rootfs: Path, tmp_path: Path, dest: str) -> None:
    with pytest.raises(UsageError):
        build_spec(
            RunSpec(args=("sh",), mounts=(MountSpec(source=tmp_path, destination=dest),)),
            rootfs=rootfs,
        )


def test_missing_bind_source_is_refused(rootfs: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        build_spec(
            RunSpec(args=("sh",), mounts=(MountSpec(source=tmp_path / "nope", destination="/x"),)),
            rootfs=rootfs,
        )


def test_user_group_and_supplementary_groups(rootfs: Path) -> None:
    spec = build_spec(RunSpec(args=("sh",), user="app"), rootfs=rootfs)
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10]}
    assert "HOME=/home/app" in spec["process"]["env"]


def test_options_and_validation(rootfs: Path) -> None:
    spec = build_spec(
        RunSpec(
            args=("sh",),
            env=("PATH=/custom", "HOME=/h"),
            no_new_privileges=True,
            readonly_rootfs=True,
            tty=True,
            stop_signal="usr1",
            cgroups_path="/lamina/abc",
        ),
        rootfs=rootfs,
    )
    assert spec["process"]["env"][:1] == ["PATH=/custom"]
    assert "HOME=/h" in spec["process"]["env"]
    assert "TERM=xterm" in spec["process"]["env"]
    assert spec["process"]["noNewPrivileges"] is True
    assert spec["process"]["terminal"] is True
    assert spec["root"]["readonly"] is True
    assert spec["linux"]["cgroupsPath"] == "/lamina/abc"
    assert spec["annotations"][STOP_SIGNAL_ANNOTATION] == "SIGUSR1"
    for bad in (
        RunSpec(args=()),
        RunSpec(args=("sh",), cwd="rel"),
        RunSpec(args=("sh",), stop_signal="SIGNOPE"),
    ):
        with pytest.raises(UsageError):
            build_spec(bad, rootfs=rootfs)


def test_write_bundle_round_trips(rootfs: Path, tmp_path: Path) -> None:
    spec = build_spec(RunSpec(args=("sh",)), rootfs=rootfs)
    write_bundle(tmp_path / "bundle", spec)
    assert read_bundle(tmp_path / "bundle") == spec
    assert (tmp_path / "bundle" / "config.json").stat().st_mode & 0o777 == 0o600


def test_group_add_shm_size_and_tmpfs(rootfs: Path) -> None:
    # docker 20.10 --group-add wheel --group-add 1234 --group-add +7: the user's groups then
    # those (a name from the image's /etc/group, else a number); "Unable to find group nosuch:
    # no matching entries in group file"; "uids and gids must be in range 0-2147483647".
    spec = build_spec(
        RunSpec(
            args=("sh",),
            user="app",
            group_add=("wheel", "1234", "+7", "1234"),
            shm_size=1 << 20,
            tmpfs=(TmpfsSpec(destination="/t", options=("noexec", "size=1m")),),
        ),
        rootfs=rootfs,
    )
    # Appended as Docker's getUser appends them: wheel twice (the user's and the added).
    assert spec["process"]["user"]["additionalGids"] == [1000, 10, 10, 1234, 7]
    assert spec["annotations"][GROUP_ADD_ANNOTATION] == '["wheel", "1234", "+7", "1234"]'
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert mounts["/dev/shm"]["options"][-1] == "size=1048576"
    assert mounts["/t"] == {
        "destination": "/t",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["noexec", "size=1m"],
    }
    for group, words in (
        ("nosuch", "Unable to find group nosuch: no matching entries in group file"),
        ("99999999999", "uids and gids must be in range 0-2147483647"),
        ("-5", "uids and gids must be in range 0-2147483647"),
    ):
        with pytest.raises(UsageError) as err:
            build_spec(RunSpec(args=("sh",), group_add=(group,)), rootfs=rootfs)
        assert str(err.value) == words


def test_bind_propagation_and_recursion(rootfs: Path, tmp_path: Path) -> None:
    m = MountSpec(source=tmp_path, destination="/x", propagation="private", recursive=False)
    spec = build_spec(RunSpec(args=("sh",), mounts=(m,)), rootfs=rootfs)
    assert [x["options"] for x in spec["mounts"] if x["destination"] == "/x"] == [
        ["bind", "private", "rw"]
    ]
    assert "rootfsPropagation" not in spec["linux"]


def test_devices_are_made_and_allowed_after_the_defaults(rootfs: Path) -> None:
    # docker 20.10's spec for --device /dev/null:/dev/mynull:r --device-cgroup-rule
    # 'c 42:* rmw': the node in linux.devices, its rule and then the cgroup rule after the
    # default ones.
    mapping = DeviceMapping(
        path_on_host="/dev/null", path_in_container="/dev/mynull", cgroup_permissions="r"
    )
    run = RunSpec(args=("sh",), devices=(mapping,), device_cgroup_rules=("c 42:* rmw",))
    spec = build_spec(run, rootfs=rootfs)
    assert [d["path"] for d in spec["linux"]["devices"]] == ["/dev/mynull"]
    assert spec["linux"]["resources"]["devices"][-2:] == [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
        {"allow": True, "type": "c", "major": 42, "minor": -1, "access": "rmw"},
    ]
    assert "devices" not in build_spec(RunSpec(args=("sh",)), rootfs=rootfs)["linux"]
    # Privileged: every device is allowed already; the node is made all the same.
    privileged = build_spec(
        RunSpec(args=("sh",), devices=(mapping,), privileged=True), rootfs=rootfs
    )
    assert [d["path"] for d in privileged["linux"]["devices"]] == ["/dev/mynull"]
    assert privileged["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


def test_namespaces_shared_joined_and_the_shm(rootfs: Path, tmp_path: Path) -> None:
    # docker 20.10's specs: --pid host --uts host: no pid or uts namespace and no hostname;
    # --ipc container:X: the ipc namespace by path and X's shm bound (rbind, rprivate);
    # --ipc none: no /dev/shm mount.
    run = RunSpec(
        args=("sh",),
        hostname="h1",
        namespaces={"pid": HOST_NAMESPACE, "uts": HOST_NAMESPACE, "ipc": "/proc/42/ns/ipc"},
        shm=tmp_path,
    )
    spec = build_spec(run, rootfs=rootfs)
    assert spec["linux"]["namespaces"] == [
        {"type": "mount"},
        {"type": "ipc", "path": "/proc/42/ns/ipc"},
        {"type": "network"},
    ]
    assert "hostname" not in spec
    assert "HOSTNAME=h1" in spec["process"]["env"]  # the container's own name, as Docker's
    shm = [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]
    assert shm == [
        {"destination": "/dev/shm", "type": "bind", "source": str(tmp_path),
         "options": ["rbind", "rprivate"]}
    ]  # fmt: skip
    none = build_spec(RunSpec(args=("sh",), no_shm=True), rootfs=rootfs)
    assert [m for m in none["mounts"] if m["destination"] == "/dev/shm"] == []
    assert [n["type"] for n in none["linux"]["namespaces"]] == [
        "mount", "pid", "uts", "ipc", "network"
    ]  # fmt: skip


def test_sysctls_over_dockers_network_defaults(rootfs: Path) -> None:
    # docker 20.10's spec, in a network namespace of the container's own: ping for every
    # group and any port without CAP_NET_BIND_SERVICE; --sysctl over them; none on the host's
    # network.
    run = RunSpec(args=("sh",), sysctls={"net.ipv4.ping_group_range": "1 2", "kernel.sem": "1"})
    assert build_spec(run, rootfs=rootfs)["linux"]["sysctl"] == {
        "net.ipv4.ping_group_range": "1 2",
        "net.ipv4.ip_unprivileged_port_start": "0",
        "kernel.sem": "1",
    }
    host = build_spec(RunSpec(args=("sh",), network=NetworkMode.HOST), rootfs=rootfs)
    assert "sysctl" not in host["linux"]


def test_oom_score_oom_killer_and_domain_name(rootfs: Path) -> None:
    # docker 20.10's spec: process.oomScoreAdj, memory.disableOOMKiller, and --domainname as
    # the kernel.domainname sysctl (which runc refuses in the host's UTS namespace).
    run = RunSpec(
        args=("sh",),
        oom_score_adj=500,
        domainname="example.com",
        resources=Resources(oom_kill_disable=True),
        network=NetworkMode.HOST,
    )
    spec = build_spec(run, rootfs=rootfs)
    assert spec["process"]["oomScoreAdj"] == 500
    assert spec["linux"]["resources"]["memory"] == {"disableOOMKiller": True}
    assert spec["linux"]["sysctl"] == {"kernel.domainname": "example.com"}
    assert "domainname" not in spec
