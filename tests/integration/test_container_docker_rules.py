"""Rules of ``docker run`` a container must follow to behave as Docker's, each checked against
docker 20.10 by hand (the notes in each test say what Docker did): the supplementary groups a
process gets, how ``-v`` args at one destination merge, and ``-v /path`` as a VOLUME of the
container's config (which ``commit`` keeps)."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_containers import LAMINA, Lamina, _lamina, wait_attached

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]


@pytest.fixture
def lamina(shm_tmp: Path, busybox_rootfs_tar: Path) -> Iterator[Lamina]:
    with _lamina(shm_tmp / "root", "overlay2", busybox_rootfs_tar) as lam:
        yield lam


def test_supplementary_groups_are_dockers(lamina: Lamina, shm_tmp: Path) -> None:
    # docker 20.10, busybox `id` in an image where nobody is in wheel and extra:
    ctx = shm_tmp / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "RUN echo wheel:x:10:nobody >> /etc/group && echo extra:x:20:root,nobody >> /etc/group\n"
    )
    lamina.run("build", "-q", "-t", "groups", str(ctx))
    docker = {
        (): "uid=0(root) gid=0(root) groups=0(root),20(extra)",
        ("-u", "nobody"): (
            "uid=65534(nobody) gid=65534(nogroup) groups=10(wheel),20(extra),65534(nogroup)"
        ),
        ("-u", "nobody:0"): "uid=65534(nobody) gid=0(root) groups=0(root)",  # explicit: no extras
        ("-u", "1234:5678"): "uid=1234 gid=5678 groups=5678",
    }
    for flags, expected in docker.items():
        assert lamina.out("run", "--rm", *flags, "groups", "id").strip() == expected, flags


def test_volume_args_at_one_destination(lamina: Lamina, shm_tmp: Path) -> None:
    # docker 20.10: "Duplicate mount point: /x" (125) for two binds/named volumes; one
    # anonymous volume for -v /x -v /x; the named volume for -v nv:/x -v /x.
    host = shm_tmp / "host"
    host.mkdir()
    for dup in (["nv:/x", "nv2:/x"], [f"{host}:/x", "nv:/x"], [f"{host}:/x/", f"{host}:/x"]):
        args = [a for v in dup for a in ("-v", v)]
        r = lamina.run("run", "--rm", *args, "busybox", "true", check=False)
        assert (r.returncode, r.stderr.strip()) == (125, "error: Duplicate mount point: /x")
    assert lamina.out("volume", "ls", "-q") == ""  # nothing made by the refused runs
    out = lamina.out(
        "run", "--rm", "-v", "/x", "-v", "/x", "busybox", "grep", "-c", " /x ", "/proc/mounts"
    )
    assert out.strip() == "1"
    lamina.run("run", "--rm", "-v", "nv:/x", "-v", "/x", "busybox", "touch", "/x/f")
    assert lamina.out("run", "--rm", "-v", "nv:/y", "busybox", "ls", "/y") == "f\n"


def test_an_anonymous_volume_is_a_volume_of_the_config_and_commit_keeps_it(
    lamina: Lamina,
) -> None:
    # docker 20.10: Config.Volumes {"/anon":{}} (the named one is not there), and the image
    # committed from it has Volumes {"/anon":{}}.
    cid = lamina.out("create", "-v", "/anon", "-v", "nv:/named", "busybox").strip()
    assert lamina.out("inspect", "-f", "{{json .Config.Volumes}}", cid) == '{"/anon":{}}\n'
    lamina.run("commit", cid, "withvol")
    assert lamina.out("inspect", "-f", "{{json .Config.Volumes}}", "withvol") == '{"/anon":{}}\n'


def test_env_file_label_file_read_only_and_stop_signal(lamina: Lamina, shm_tmp: Path) -> None:
    # docker 20.10 with the same files: "9|two words|/root|unset"; labels {"x":"over","z":"3"}
    # (a bare key in a label file is dropped); --read-only: "Read-only file system" for / and
    # /tmp, /dev still writable.
    env = shm_tmp / "env.list"
    env.write_text("# c\n\n  A=1\nB=two words\nHOME\nNOPE_UNSET\n")
    labels = shm_tmp / "labels.list"
    labels.write_text("x=1\ny\n")
    script = 'echo "$A|$B|$HOME|${NOPE_UNSET-unset}"'
    out = lamina.out(
        "run", "--rm", "--env-file", str(env), "-e", "A=9", "busybox", "sh", "-c", script
    )
    assert out == f"9|two words|{Path.home()}|unset\n"
    cid = lamina.out(
        "create", "--label-file", str(labels), "-l", "z=3", "-l", "x=over", "--read-only",
        "--stop-signal", "SIGUSR1", "busybox", "sh", "-c",
        "trap 'echo got-usr1; exit 7' USR1; touch /x || echo ro; while :; do sleep 0.1; done",
    )  # fmt: skip
    cid = cid.strip()
    fields = "{{json .Config.Labels}} {{.Config.StopSignal}} {{.HostConfig.ReadonlyRootfs}}"
    assert lamina.out("inspect", "-f", fields, cid) == '{"x":"over","z":"3"} SIGUSR1 true\n'
    lamina.run("start", cid)
    for _ in range(50):  # the trap is set once the shell has written "ro"
        if "ro" in lamina.out("logs", cid):
            break
        time.sleep(0.1)
    lamina.run("stop", "-t", "5", cid)
    assert lamina.out("wait", cid) == "7\n"  # stopped by SIGUSR1, answered by the trap
    assert lamina.out("logs", cid) == "ro\ngot-usr1\n"
    r = lamina.run("run", "--rm", "--stop-signal", "BOGUS", "busybox", "true", check=False)
    assert (r.returncode, r.stderr.strip()) == (125, "error: invalid stop signal: 'BOGUS'")


def test_logs_tail_since_and_until(lamina: Lamina) -> None:
    # docker logs: --tail N the last N entries (0: none), -f after --tail N prints those and
    # what follows; --since/--until keep the entries logged between (durations back from now).
    script = "for i in 1 2 3 4 5; do echo l$i; done; sleep 1.5; echo late"
    cid = lamina.out("run", "-d", "busybox", "sh", "-c", script).strip()
    assert lamina.out("wait", cid) == "0\n"
    assert lamina.out("logs", "--tail", "2", cid) == "l5\nlate\n"
    assert lamina.out("logs", "-n", "0", cid) == ""
    assert lamina.out("logs", "--tail", "all", cid) == "l1\nl2\nl3\nl4\nl5\nlate\n"
    assert lamina.out("logs", "--tail", "9" * 20, cid) == "l1\nl2\nl3\nl4\nl5\nlate\n"
    assert lamina.out("logs", "--tail", "1", "-f", cid) == "late\n"
    stamps = [line.split()[0] for line in lamina.out("logs", "-t", cid).splitlines()]
    assert lamina.out("logs", "--since", stamps[5], cid) == "late\n"  # at or after
    assert lamina.out("logs", "--until", stamps[4], cid) == "l1\nl2\nl3\nl4\nl5\n"
    assert lamina.out("logs", "--since", "10m", "--until", "1700000000", cid) == ""
    r = lamina.run("logs", "--since", "yesterday", cid, check=False)
    assert r.returncode == 2 and "invalid --since 'yesterday'" in r.stderr


def test_init_runs_a_static_tini_as_pid_1(lamina: Lamina) -> None:
    # docker 20.10 --init: PID 1 is "/sbin/docker-init -- CMD", a missing command is tini's
    # to report (exit 127, the container ran), the mount point shows in diff, HostConfig.Init
    # is true (null without --init), and a TERM reaches a command that is not PID 1.
    script = 'cat /proc/1/cmdline | tr "\\0" " "'
    out = lamina.out("run", "--rm", "--init", "busybox", "sh", "-c", script)
    assert out == '/sbin/docker-init -- sh -c cat /proc/1/cmdline | tr "\\0" " " '
    r = lamina.run("run", "--rm", "--init", "busybox", "nosuch", check=False)
    assert r.returncode == 127 and "exec nosuch failed: No such file or directory" in r.stderr
    cid = lamina.out("run", "-d", "--init", "busybox", "sleep", "300").strip()
    fields = "{{.HostConfig.Init}} {{.Path}} {{json .Args}}"
    assert lamina.out("inspect", "-f", fields, cid) == 'true sleep ["300"]\n'
    start = time.monotonic()
    lamina.run("stop", cid)  # sleep as PID 1 would ignore TERM for the 10 s grace
    assert time.monotonic() - start < 8
    assert lamina.out("diff", cid).splitlines() == ["C /sbin", "A /sbin/docker-init"]
    plain = lamina.out("create", "busybox", "true").strip()
    assert lamina.out("inspect", "-f", "{{json .HostConfig.Init}}", plain) == "null\n"


def _started(lamina: Lamina, cid: str, marker: str) -> None:
    for _ in range(100):  # the trap is set once the shell has logged the marker
        if marker in lamina.out("logs", cid):
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} never logged {marker!r}")


def test_stop_timeout_is_what_stop_and_restart_wait_without_t(lamina: Lamina) -> None:
    # docker 20.10: Config.StopTimeout is absent unless --stop-timeout is given (0 included);
    # `stop`/`restart` without -t wait the container's StopTimeout (else 10 s) before SIGKILL,
    # -t overrides it. A shell that takes a moment to answer TERM exits 7 given the time,
    # 137 (SIGKILL) under --stop-timeout 0.
    script = "trap 'sleep 0.5; exit 7' TERM; echo up; while :; do sleep 0.1; done"
    quick = lamina.out("run", "-d", "--stop-timeout", "0", "busybox", "sh", "-c", script).strip()
    assert lamina.out("inspect", "-f", "{{json .Config.StopTimeout}}", quick) == "0\n"
    _started(lamina, quick, "up")
    lamina.run("stop", quick)
    assert lamina.out("wait", quick) == "137\n"
    lamina.run("start", quick)
    _started(lamina, quick, "up\nup")
    lamina.run("restart", quick)
    assert lamina.out("inspect", "-f", "{{.State.Running}}", quick) == "true\n"
    _started(lamina, quick, "up\nup\nup")
    lamina.run("stop", "-t", "5", quick)
    assert lamina.out("wait", quick) == "7\n"
    patient = lamina.out("run", "-d", "busybox", "sh", "-c", script).strip()
    assert lamina.out("inspect", "-f", "{{json .Config}}", patient).find("StopTimeout") == -1
    _started(lamina, patient, "up")
    lamina.run("stop", patient)
    assert lamina.out("wait", patient) == "7\n"
    r = lamina.run("create", "--stop-timeout", "soon", "busybox", check=False)
    assert r.returncode == 2 and "--stop-timeout: invalid int value: 'soon'" in r.stderr


def test_resource_limits_reach_the_containers_cgroups(lamina: Lamina) -> None:
    # docker 20.10 on this host (cgroup v1 controllers): HostConfig CpuShares 512, Memory
    # 67108864, NanoCpus 1500000000, MemorySwap 134217728, PidsLimit 100; in the container
    # memory.limit_in_bytes, memory.memsw.limit_in_bytes, cpu.cfs_quota_us, cpu.cfs_period_us,
    # cpu.shares, pids.max read "67108864 134217728 150000 100000 512 100"; without flags
    # "9223372036854771712 9223372036854771712 -1 100000 1024 max" and PidsLimit null.
    files = (
        "memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes cpu/cpu.cfs_quota_us "
        "cpu/cpu.cfs_period_us cpu/cpu.shares pids/pids.max"
    )
    show = f"cd /sys/fs/cgroup && echo $(cat {files})"
    flags = ("-m", "64m", "--memory-swap", "128m", "--cpus", "1.5", "-c", "512")
    cid = lamina.out("create", *flags, "--pids-limit", "100", "busybox", "sh", "-c", show)
    fields = "{{.CpuShares}} {{.Memory}} {{.NanoCpus}} {{.MemorySwap}} {{json .PidsLimit}}"
    assert lamina.out(
        "inspect", "-f", "{{with .HostConfig}}" + fields + "{{end}}", cid.strip()
    ) == ("512 67108864 1500000000 134217728 100\n")
    assert lamina.out("start", "-a", cid.strip()) == "67108864 134217728 150000 100000 512 100\n"
    unlimited = "9223372036854771712 9223372036854771712 -1 100000 1024 max\n"
    assert lamina.out("run", "--rm", "busybox", "sh", "-c", show) == unlimited
    # -m 64m alone: twice as much memory+swap; --memory-swap -1: unlimited swap.
    out = lamina.out("run", "--rm", "-m", "64m", "--memory-swap", "-1", "busybox", "sh", "-c", show)
    assert out == "67108864 9223372036854771712 -1 100000 1024 max\n"
    # docker run: "Minimum memory limit allowed is 6MB", "shares: invalid argument" (125);
    # runc's own refusal of a share below 2 fails the start too.
    for bad, message in (
        (("-m", "5m"), "Minimum memory limit allowed is 6MB"),
        (("-c", "-5"), "shares: invalid argument"),
        (("-c", "1"), "the minimum allowed cpu-shares is 2"),
        (("-m", "lots"), 'invalid argument "lots" for "-m, --memory" flag: invalid size: \'lots\''),
    ):
        r = lamina.run("run", "--rm", *bad, "busybox", "true", check=False)
        assert r.returncode == 125 and message in r.stderr, (bad, r.stderr)
    r = lamina.run("create", "-m", "5m", "busybox", check=False)  # docker create: status 1
    assert (r.returncode, r.stderr.strip()) == (1, "error: Minimum memory limit allowed is 6MB")
    assert lamina.out("ps", "-aq").split() == [cid.strip()[:12]]  # nothing left by the refusals


def test_a_memory_hog_is_oom_killed(lamina: Lamina) -> None:
    # docker 20.10, run -m 16m: the shell holding 100 MB ends 137 with State.OOMKilled true;
    # a child killed for memory marks the container OOMKilled too though it exits 0; a
    # container that stays within its limit is OOMKilled false.
    hog = 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'
    r = lamina.run("run", "--name", "hog", "-m", "16m", "busybox", "sh", "-c", hog, check=False)
    assert r.returncode == 137 and "survived" not in r.stdout
    state = "{{.State.ExitCode}} {{.State.OOMKilled}}"
    assert lamina.out("inspect", "-f", state, "hog") == "137 true\n"
    child = f"sh -c '{hog}'; echo $?"
    assert (
        lamina.out("run", "--name", "child", "-m", "16m", "busybox", "sh", "-c", child) == "137\n"
    )
    assert lamina.out("inspect", "-f", state, "child") == "0 true\n"
    lamina.run("run", "-d", "--name", "bg", "-t", "-m", "16m", "busybox", "sh", "-c", hog)
    assert lamina.out("wait", "bg") == "137\n"
    assert lamina.out("inspect", "-f", state, "bg") == "137 true\n"
    lamina.run("run", "--name", "fine", "-m", "16m", "busybox", "true")
    assert lamina.out("inspect", "-f", state, "fine") == "0 false\n"


def test_exec_env_file_and_privileged(lamina: Lamina, shm_tmp: Path) -> None:
    # docker 20.10 exec: --env-file lines first, -e over them by key, a bare KEY from the
    # CLI's environment ("9|two words|$HOME|1" with the container's X=1 kept); a missing file
    # "open nosuchfile: no such file or directory" (status 1). --privileged gives the command
    # every capability (the container's own processes keep theirs); /proc/sys stays
    # read-only. (On this host Docker's own exec --privileged fails, 126: "unable to apply
    # caps: operation not permitted", as dockerd asks for capabilities it lacks; lamina gives
    # the ones it holds, as its run --privileged does.)
    env = shm_tmp / "exec.env"
    env.write_text("A=1\nB=two words\n#c\nHOME\n")
    cid = lamina.out("run", "-d", "-e", "X=1", "busybox", "sleep", "300").strip()
    script = 'echo "$A|$B|$HOME|$X"'
    out = lamina.out("exec", "--env-file", str(env), "-e", "A=9", cid, "sh", "-c", script)
    assert out == f"9|two words|{Path.home()}|1\n"
    r = lamina.run("exec", "--env-file", str(shm_tmp / "nosuch"), cid, "true", check=False)
    assert r.returncode == 1 and "cannot read the env file" in r.stderr
    caps = "grep CapEff /proc/self/status"
    plain = lamina.out("exec", cid, "sh", "-c", caps)
    assert plain == "CapEff:\t00000000a80425fb\n"  # Docker's 14 default capabilities
    status = Path("/proc/self/status").read_text()
    held = next(line.split()[1] for line in status.splitlines() if line.startswith("CapPrm:"))
    assert lamina.out("exec", "--privileged", cid, "sh", "-c", caps) == f"CapEff:\t{held}\n"
    assert lamina.out("exec", cid, "sh", "-c", "grep CapEff /proc/1/status") == plain
    ro = "grep ' /proc/sys ' /proc/mounts | grep -c ro,"
    assert lamina.out("exec", "--privileged", cid, "sh", "-c", ro) == "1\n"
    lamina.run("exec", "-d", "--privileged", cid, "sh", "-c", f"{caps} > /tmp/caps")
    for _ in range(100):
        if lamina.run("exec", cid, "test", "-s", "/tmp/caps", check=False).returncode == 0:
            break
        time.sleep(0.05)
    assert lamina.out("exec", cid, "cat", "/tmp/caps") == f"CapEff:\t{held}\n"


def test_mount_long_syntax(lamina: Lamina, shm_tmp: Path) -> None:
    # docker 20.10, the same flags: HostConfig.Mounts is the API's mount.Mount as given; the
    # top-level Mounts show the bind "rprivate", the volumes Mode "z" (the anonymous one too),
    # the tmpfs Source ""; in the container the bind is read-only, the tmpfs "mode=1770" and
    # 1 MiB, the no-copy volume empty where the other was filled from the image's /etc.
    host = shm_tmp / "host"
    host.mkdir()
    (host / "f").write_text("hi\n")
    flags = [
        *("--mount", f"type=bind,src={host},dst=/b,readonly"),
        *("--mount", "type=volume,source=filled,target=/etc,volume-label=a=b"),
        *("--mount", "type=volume,src=empty,dst=/usr,volume-nocopy"),
        *("--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770"),
        *("--mount", "type=volume,dst=/anon"),
    ]
    cid = lamina.out("create", *flags, "busybox").strip()
    assert lamina.out("inspect", "-f", "{{json .HostConfig.Mounts}}", cid) == (
        f'[{{"Type":"bind","Source":"{host}","Target":"/b","ReadOnly":true}},'
        '{"Type":"volume","Source":"filled","Target":"/etc",'
        '"VolumeOptions":{"Labels":{"a":"b"},"DriverConfig":{}}},'
        '{"Type":"volume","Source":"empty","Target":"/usr",'
        '"VolumeOptions":{"NoCopy":true,"DriverConfig":{}}},'
        '{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576,"Mode":1016}},'
        '{"Type":"volume","Target":"/anon"}]\n'
    )
    shown = "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Mode}} {{.RW}} {{.Propagation}};{{end}}"
    assert lamina.out("inspect", "-f", shown, cid) == (
        "bind /b  false rprivate;volume /etc z true ;volume /usr z true ;"
        "volume /anon z true ;tmpfs /t  true ;\n"
    )
    assert lamina.out("volume", "inspect", "-f", "{{json .Labels}}", "filled") == '{"a":"b"}\n'
    script = (
        "grep ' /t ' /proc/mounts | cut -d' ' -f4; ls -ld /t | cut -c1-10; cat /b/f;"
        " touch /b/x 2>&1; ls /etc | wc -l; ls /usr | wc -l"
    )
    lamina.run("rm", cid)
    out = lamina.out("run", "--rm", *flags, "busybox", "sh", "-c", script)
    assert out == (
        "rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770\ndrwxrwx--T\nhi\n"
        "touch: /b/x: Read-only file system\n6\n0\n"
    )


def test_mount_refusals_and_duplicates(lamina: Lamina, shm_tmp: Path) -> None:
    # docker 20.10 (run: exit 125; the daemon's words after "Error response from daemon: ").
    refused = {
        "type=bind,src=/nonexist-4b1d,dst=/x": 'invalid mount config for type "bind": '
        "bind source path does not exist: /nonexist-4b1d",
        "type=volume,src=v": 'invalid argument "type=volume,src=v" for "--mount" flag: '
        "target is required",
    }
    if "shared:" not in _mountinfo_line("/"):  # a private "/" (not under systemd)
        refused["type=bind,src=/,dst=/x,bind-propagation=shared"] = (
            "path / is mounted on / but it is not a shared mount"
        )
    for spec, words in refused.items():
        r = lamina.run("run", "--rm", "--mount", spec, "busybox", "true", check=False)
        assert (r.returncode, r.stderr.strip()) == (125, f"error: {words}"), spec
    for args in (
        ["--mount", "type=bind,src=/tmp,dst=/t", "-v", "/tmp:/t"],
        ["--mount", "type=volume,dst=/t", "--mount", "type=volume,dst=/t"],
        ["--tmpfs", "/t", "-v", "/tmp:/t"],
    ):
        r = lamina.run("create", *args, "busybox", check=False)
        assert (r.returncode, r.stderr.strip()) == (1, "error: Duplicate mount point: /t")
    assert lamina.out("volume", "ls", "-q") == ""  # nothing made by the refused ones


def test_tmpfs(lamina: Lamina) -> None:
    # docker 20.10: HostConfig.Tmpfs {"/a/b":"","/t":"size=2m,exec,uid=5"} (a Go map: sorted),
    # no Mounts entry; the mount's options "rw,nosuid,nodev,relatime,size=2048k,uid=5"; diff
    # shows nothing before the first start, the mount points after it; an unknown option
    # fails the start (125): 'invalid tmpfs option ["bogus"]'.
    cid = lamina.out("create", "--tmpfs", "/t:size=2m,exec,uid=5", "--tmpfs", "/a/b", "busybox")
    cid = cid.strip()
    fields = "{{json .HostConfig.Tmpfs}} {{json .Mounts}}"
    assert lamina.out("inspect", "-f", fields, cid) == (
        '{"/a/b":"","/t":"size=2m,exec,uid=5"} []\n'
    )
    assert lamina.out("diff", cid) == ""
    lamina.run("start", "-a", cid)
    assert sorted(lamina.out("diff", cid).splitlines()) == ["A /a", "A /a/b", "A /t"]
    out = lamina.out(
        "run", "--rm", "--tmpfs", "/t:size=2m,exec,uid=5", "busybox", "grep", " /t ", "/proc/mounts"
    )
    assert out == "tmpfs /t tmpfs rw,nosuid,nodev,relatime,size=2048k,uid=5 0 0\n"
    r = lamina.run("run", "--rm", "--tmpfs", "/t:bogus", "busybox", "true", check=False)
    assert (r.returncode, r.stderr.strip()) == (125, 'error: invalid tmpfs option ["bogus"]')


def test_add_host_and_dns_flags_write_dockers_files(lamina: Lamina) -> None:
    # docker 20.10, byte for byte, --network none and host alike: the loopback block then the
    # --add-host lines; resolv.conf built from the flags. HostConfig: ExtraHosts as given, Dns
    # as Go prints the address, DnsSearch without the trailing dot; [] [] [] null without them.
    # On the host's network the host name is the host's (Config.Hostname, /etc/hostname).
    flags = [
        *("--add-host", "foo:1.2.3.4", "--add-host", "bar:::1", "--add-host", "foo:5.6.7.8"),
        *("--dns", "9.9.9.9", "--dns", "::0:1", "--dns-search", "ex.com."),
        *("--dns-search", "b.org", "--dns-option", "ndots:2", "--dns-option", "rotate"),
    ]
    expected = (
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
        "ff02::2\tip6-allrouters\n1.2.3.4\tfoo\n::1\tbar\n5.6.7.8\tfoo\n---\n"
        "search ex.com b.org\nnameserver 9.9.9.9\nnameserver ::1\noptions ndots:2 rotate\n"
    )
    script = "cat /etc/hosts; echo ---; cat /etc/resolv.conf"
    for network in ("none", "host"):
        out = lamina.out("run", "--rm", "--network", network, *flags, "busybox", "sh", "-c", script)
        assert out == expected, network
    cid = lamina.out("create", "--network", "host", *flags, "busybox").strip()
    fields = (
        "{{json .HostConfig.ExtraHosts}} {{json .HostConfig.Dns}} {{json .HostConfig.DnsSearch}}"
        " {{json .HostConfig.DnsOptions}} {{.Config.Hostname}}"
    )
    assert lamina.out("inspect", "-f", fields, cid) == (
        '["foo:1.2.3.4","bar:::1","foo:5.6.7.8"] ["9.9.9.9","::1"] ["ex.com","b.org"]'
        f' ["ndots:2","rotate"] {os.uname().nodename}\n'
    )
    plain = lamina.out("create", "busybox").strip()
    assert lamina.out("inspect", "-f", fields, plain) == f"null [] [] [] {plain[:12]}\n"
    r = lamina.run("create", "--add-host", "foo:bar", "busybox", check=False)
    assert (r.returncode, r.stderr.strip()) == (
        1,
        'error: invalid argument "foo:bar" for "--add-host" flag: '
        'invalid IP address in add-host: "bar"',
    )
    r = lamina.run("create", "--dns", "127.0.0.1", "busybox", check=False)
    assert r.stderr == "WARNING: Localhost DNS setting (--dns=127.0.0.1) may fail in containers.\n"


def test_group_add_ulimit_and_shm_size(lamina: Lamina) -> None:
    # docker 20.10 (busybox's /etc/group has root and nogroup): the ids below, exec -u gets
    # the added groups too; an unknown group fails the start (125) in runc's words; the
    # limits in the container; /dev/shm "size=1024k"; HostConfig GroupAdd/Ulimits as given,
    # ShmSize 1048576 (67108864 and GroupAdd/Ulimits null without the flags).
    flags = ["--group-add", "5", "--group-add", "nogroup", "-u", "nobody"]
    out = lamina.out("run", "--rm", *flags, "busybox", "id")
    assert out == "uid=65534(nobody) gid=65534(nogroup) groups=5,65534(nogroup)\n"
    r = lamina.run("run", "--rm", "--group-add", "nosuch", "busybox", "id", check=False)
    assert (r.returncode, r.stderr.strip()) == (
        125,
        "error: Unable to find group nosuch: no matching entries in group file",
    )
    cid = lamina.out("run", "-d", "--group-add", "1234", "busybox", "sleep", "100").strip()
    try:
        assert lamina.out("exec", cid, "id") == "uid=0(root) gid=0(root) groups=0(root),1234\n"
        assert lamina.out("exec", "-u", "nobody", cid, "id") == (
            "uid=65534(nobody) gid=65534(nogroup) groups=1234,65534(nogroup)\n"
        )
    finally:
        lamina.run("rm", "-f", cid)
    limits = ["--ulimit", "nofile=1000:2000", "--ulimit", "nproc=50", "--ulimit", "core=-1"]
    script = "ulimit -n; ulimit -Hn; ulimit -u; ulimit -c; grep ' /dev/shm ' /proc/mounts"
    out = lamina.out("run", "--rm", *limits, "--shm-size", "1m", "busybox", "sh", "-c", script)
    assert out == (
        "1000\n2000\n50\nunlimited\n"
        "shm /dev/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k 0 0\n"
    )
    fields = "{{json .HostConfig.GroupAdd}} {{json .HostConfig.Ulimits}} {{.HostConfig.ShmSize}}"
    cid = lamina.out("create", "--group-add", "x", *limits[:4], "--shm-size", "1m", "busybox")
    assert lamina.out("inspect", "-f", fields, cid.strip()) == (
        '["x"] [{"Name":"nofile","Hard":2000,"Soft":1000},{"Name":"nproc","Hard":50,"Soft":50}]'
        " 1048576\n"
    )
    plain = lamina.out("create", "busybox").strip()
    assert lamina.out("inspect", "-f", fields, plain) == "null null 67108864\n"


def test_a_ulimit_the_host_cannot_grant_is_a_clear_error(lamina: Lamina) -> None:
    # docker 20.10 here (hard nofile 20000, no CAP_SYS_RESOURCE): runc's "error setting
    # rlimit type 7: operation not permitted" (125); lamina says why before runc runs.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    status = Path("/proc/self/status").read_text()
    cap_prm = int(next(x for x in status.splitlines() if x.startswith("CapPrm:")).split()[1], 16)
    if hard == resource.RLIM_INFINITY or cap_prm >> 24 & 1:
        pytest.skip("this host could grant any nofile limit")
    want = f"nofile={hard + 1}:{hard + 1}"
    r = lamina.run("run", "--rm", "--ulimit", want, "busybox", "true", check=False)
    assert (r.returncode, r.stderr.strip()) == (
        125,
        f"error: --ulimit {want}: the hard limit is above this host's ({hard}), and lamina "
        "lacks CAP_SYS_RESOURCE to raise it",
    )
    assert lamina.out("ps", "-aq") == ""  # run --rm took the container back


def test_volume_create_opt_mounts_the_device_while_in_use(lamina: Lamina, shm_tmp: Path) -> None:
    # docker 20.10: Options as given (null for a volume a container made); the tmpfs is
    # mounted on _data while a container uses it -- shared by two at once, gone after the
    # last -- a bind volume shows the device dir and is pre-filled into it; a bad option is
    # the start's error (run: 125) in the kernel's words.
    lamina.run(
        "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m,uid=5", "tv"
    )
    assert lamina.out("volume", "inspect", "-f", "{{json .Options}}", "tv") == (
        '{"device":"tmpfs","o":"size=1m,uid=5","type":"tmpfs"}\n'
    )
    data = lamina.root / "volumes" / "tv" / "_data"
    out = lamina.out(
        "run", "--rm", "-v", "tv:/t", "busybox", "sh", "-c", "grep ' /t ' /proc/mounts"
    )
    assert out == "tmpfs /t tmpfs rw,relatime,size=1024k,uid=5 0 0\n"
    assert f" {data} " not in Path("/proc/self/mountinfo").read_text()  # unmounted after
    cid = lamina.out("run", "-d", "-v", "tv:/x", "busybox", "sleep", "100").strip()
    try:
        lamina.run("run", "--rm", "-v", "tv:/x", "busybox", "sh", "-c", "echo hi > /x/f")
        assert lamina.out("exec", cid, "cat", "/x/f") == "hi\n"  # one tmpfs for both
    finally:
        lamina.run("rm", "-f", cid)
    assert f" {data} " not in Path("/proc/self/mountinfo").read_text()
    assert lamina.out("run", "--rm", "-v", "tv:/x", "busybox", "ls", "/x") == ""
    lamina.run("volume", "rm", "tv")

    device = shm_tmp / "device"
    device.mkdir()
    (device / "mine").write_text("keep\n")
    opts = ["-o", "type=none", "-o", "o=bind", "-o", f"device={device}"]
    lamina.run("volume", "create", *opts, "bv")
    assert lamina.out("run", "--rm", "-v", "bv:/b", "busybox", "cat", "/b/mine") == "keep\n"
    empty = shm_tmp / "empty"
    empty.mkdir()
    lamina.run("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={empty}", "ev")
    lamina.run("run", "--rm", "-v", "ev:/etc", "busybox", "true")
    assert "passwd" in {p.name for p in empty.iterdir()}  # the image's /etc copied in
    # A mount left on _data (a crash) is undone before the volume's dirs go: the device's
    # files are the user's.
    subprocess.run(
        ["mount", "--bind", str(device), str(lamina.root / "volumes/bv/_data")], check=True
    )
    lamina.run("volume", "rm", "bv")
    assert (device / "mine").read_text() == "keep\n"

    lamina.run("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=bogus", "bad")
    r = lamina.run("run", "--rm", "-v", "bad:/t", "busybox", "true", check=False)
    assert (r.returncode, r.stderr.strip()) == (
        125,
        f"error: error while mounting volume '{lamina.root}/volumes/bad/_data': failed to mount "
        f"local volume: mount tmpfs:{lamina.root}/volumes/bad/_data, data: bogus: invalid argument",
    )
    r = lamina.run("volume", "create", "-o", "type=tmpfs", "x1", check=False)
    assert r.stderr.strip() == 'error: create x1: missing required option: "device"'
    lamina.run("create", "-v", "made:/m", "busybox")
    assert lamina.out("volume", "inspect", "-f", "{{json .Options}}", "made") == "null\n"
    lamina.run("volume", "create", "plain")
    assert lamina.out("volume", "inspect", "-f", "{{json .Options}}", "plain") == "{}\n"


def _mountinfo_line(target: str) -> str:
    """The last /proc/self/mountinfo line of the mount at ``target`` (the one on top)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line for line in lines if line.split()[4] == target][-1]


def test_an_option_volume_is_unmounted_when_its_last_user_has_exited(lamina: Lamina) -> None:
    # docker 20.10 unmounts a local -o volume when the last container using it stops; a
    # detached container that exited on its own counts as stopped, even before anyone looked
    # at it (lamina keeps its run mark until then). A new run then gets a fresh tmpfs.
    lamina.run("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "tv2")
    early = lamina.out(
        "run", "-d", "--name", "early", "-v", "tv2:/data", "busybox", "sh", "-c", "echo c > /data/f"
    ).strip()
    # Wait for its exit through the shim's record on disk, not through lamina (a look would
    # release its run mark, which is what this test must not do).
    record = lamina.root / "runtime" / "shim" / early / "state.json"
    deadline = time.monotonic() + 10
    while '"exited"' not in record.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    data = lamina.root / "volumes" / "tv2" / "_data"
    lamina.run("run", "-d", "--name", "late", "-v", "tv2:/data", "busybox", "sleep", "100")
    lamina.run("stop", "-t", "0", "late")
    lamina.run("rm", "late")
    assert f" {data} " not in Path("/proc/self/mountinfo").read_text()
    assert lamina.out("run", "--rm", "-v", "tv2:/data", "busybox", "ls", "/data") == ""
    lamina.run("rm", "early")
    lamina.run("volume", "rm", "tv2")


def test_a_volume_too_small_for_the_images_files_is_a_clear_error(lamina: Lamina) -> None:
    # The pre-fill copies the image's /bin into a 5-inode tmpfs: ENOSPC, named, not exit 70.
    opt = 'volume-opt=type=tmpfs,volume-opt=device=tmpfs,"volume-opt=o=size=4k,nr_inodes=5"'
    r = lamina.run(
        "create",
        "--mount",
        f"type=volume,src=smallv,dst=/bin,{opt}",
        "busybox",
        "true",
        check=False,
    )
    assert r.returncode == 1, r.stderr
    assert "cannot copy the image's /bin into volume smallv" in r.stderr
    assert "Traceback" not in r.stderr
    assert lamina.out("ps", "-aq") == ""


def test_attach_refusals_and_detach_keys_are_dockers(lamina: Lamina) -> None:
    # docker 20.10, each status 1: "You cannot attach to a stopped container, start it first"
    # (created or exited), "You cannot attach to a paused container, unpause it first", "the
    # input device is not a TTY" (a -t container, its -i or not, from a stdin that is no
    # terminal; --no-stdin takes it), "Invalid detach keys (KEYS) provided" -- which docker's
    # daemon sends down the attached stream and then hangs; lamina refuses before attaching.
    lamina.run("create", "--name", "created", "busybox", "true")
    lamina.run("run", "--name", "exited", "busybox", "true")
    go = "while [ ! -e /go ]; do sleep 0.05; done; exit 2"
    lamina.run("run", "-d", "--name", "paused", "busybox", "sleep", "300")
    lamina.run("pause", "paused")
    lamina.run("run", "-dt", "--name", "tty", "busybox", "sh", "-c", go)
    stopped = "You cannot attach to a stopped container, start it first"
    refusals = {
        ("created",): stopped,
        ("exited",): stopped,
        ("paused",): "You cannot attach to a paused container, unpause it first",
        ("tty",): "the input device is not a TTY",
        ("--no-stdin", "--detach-keys", "ctrl-P", "tty"): "Invalid detach keys (ctrl-P) provided",
        ("--no-stdin", "--detach-keys", ",", "tty"): "Invalid detach keys (,) provided",
    }
    argv = [*LAMINA, "--root", str(lamina.root), "--storage-driver", lamina.driver]
    for args, message in refusals.items():
        r = subprocess.run(
            [*argv, "attach", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (r.returncode, r.stderr) == (1, f"error: {message}\n"), args
    lamina.run("unpause", "paused")
    # Valid keys (DEL, ctrl-@, a one-byte character) attach; the exit status is the container's.
    client = subprocess.Popen(
        [*argv, "attach", "--no-stdin", "--detach-keys", "DEL,ctrl-@,a", "tty"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    wait_attached(lamina, "tty", client)
    lamina.run("exec", "tty", "touch", "/go")
    assert client.wait(timeout=30) == 2
    assert client.stdout is not None and client.stdout.read() == b""
    client.stdout.close()
    # run and start -a: docker creates and starts the container, then fails to read the
    # daemon's refusal from the stream ("Unrecognized input header: 73", status 1); lamina
    # refuses first (run: its 125, start: 1) and makes nothing. Detached, docker never reads
    # the keys, and neither does lamina.
    r = lamina.run("run", "--name", "bad", "--detach-keys", "bogus", "busybox", "true", check=False)
    assert (r.returncode, r.stderr) == (125, "error: Invalid detach keys (bogus) provided\n")
    assert "bad" not in lamina.out("ps", "-a", "--format", "{{.Names}}").split()
    r = lamina.run("start", "-a", "--detach-keys", "bogus", "exited", check=False)
    assert (r.returncode, r.stderr) == (1, "error: Invalid detach keys (bogus) provided\n")
    assert lamina.out("start", "--detach-keys", "bogus", "exited") == "exited\n"
    lamina.run("run", "-d", "--detach-keys", "bogus", "busybox", "true")
