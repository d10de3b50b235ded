"""lamina.runtime end to end: real runc, a busybox rootfs on tmpfs, the lamina shim.

Expected values come from outside lamina: Docker's documented CapEff for its default set, the
kernel's view from inside the container (/proc/self/status, mountinfo, /sys/class/net), the
host's own rlimits.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lamina.errors import ContainerNotFoundError
from lamina.runtime import (
    CommandNotExecutableError,
    CommandNotFoundError,
    ContainerRunningError,
    ContainerStartError,
    ContainerStatus,
    MountSpec,
    NetworkMode,
    RunSpec,
    Runtime,
    build_spec,
    write_bundle,
)

pytestmark = [pytest.mark.needs_root]

BUSYBOX = Path("/bin/busybox")


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    """A busybox rootfs (host busybox-static + applet symlinks), as scripts/make-busybox-rootfs."""
    if not BUSYBOX.exists() or not (shutil.which("runc") or Path("/usr/sbin/runc").exists()):
        if os.environ.get("LAMINA_REQUIRE_ALL") == "1":
            pytest.fail("LAMINA_REQUIRE_ALL=1 but busybox-static or runc is missing")
        pytest.skip("busybox-static and runc are needed")
    base = Path(tempfile.mkdtemp(prefix="lamina-rt-rootfs-", dir="/dev/shm"))
    r = base / "rootfs"
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev"):
        (r / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, r / "bin/busybox")
    applets = subprocess.run(
        [str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet == "bin/busybox":
            continue
        (r / applet).parent.mkdir(parents=True, exist_ok=True)
        os.symlink("/bin/busybox", r / applet)
    (r / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (r / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (r / "etc/motd").write_text("not a program\n")
    yield r
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def rt(shm_tmp: Path) -> Iterator[Runtime]:
    runtime = Runtime(state_dir=shm_tmp / "state")
    yield runtime
    # Teardown: nothing may outlive a test -- no runc container, no shim record.
    for cid in runtime._runc.list_ids():
        runtime.delete(cid, force=True)
    shims = shm_tmp / "state" / "shim"
    for d in shims.iterdir() if shims.exists() else ():
        runtime.delete(d.name, force=True)
    assert runtime._runc.list_ids() == []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        assert str(shm_tmp) not in f.read(), "a mount leaked"


@pytest.fixture
def bundle(shm_tmp: Path) -> Path:
    return shm_tmp / "bundle"


def _prepare(bundle: Path, rootfs: Path, *args: str, **kw: Any) -> Path:
    write_bundle(bundle, build_spec(RunSpec(args=args, **kw), rootfs=rootfs))
    return bundle


def _output(rt: Runtime, cid: str) -> str:
    return "".join(e.line for e in rt.logs(cid) if e.stream == "stdout")


def test_echo_hi_prints_hi_and_exits_0(
    rt: Runtime, bundle: Path, rootfs: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _prepare(bundle, rootfs, "sh", "-c", "echo hi")
    assert rt.run_attached("c-echo", bundle, stdin=False) == 0
    assert capfd.readouterr().out == "hi\n"
    state = rt.state("c-echo")
    assert state.status is ContainerStatus.EXITED
    assert state.exit_code == 0
    assert state.started_at <= state.finished_at


def test_false_exits_1(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "false")
    assert rt.run_attached("c-false", bundle, stdin=False) == 1
    assert rt.state("c-false").exit_code == 1


def test_missing_command_is_127_with_a_clear_error(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "no-such-command")
    with pytest.raises(CommandNotFoundError) as info:
        rt.run_attached("c-missing", bundle, stdin=False)
    assert info.value.exit_status == 127
    assert 'exec: "no-such-command": executable file not found in $PATH' in str(info.value)
    # As Docker leaves it: Created, ExitCode 127, Error set.
    state = rt.state("c-missing")
    assert state.status is ContainerStatus.CREATED
    assert state.exit_code == 127
    assert "executable file not found" in state.error


def test_missing_command_detached_is_127(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "/bin/nope")
    with pytest.raises(CommandNotFoundError):
        rt.start_detached("c-missing-d", bundle)


def test_non_executable_command_is_126(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "/etc/motd")
    with pytest.raises(CommandNotExecutableError) as info:
        rt.run_attached("c-noexec", bundle, stdin=False)
    assert info.value.exit_status == 126
    assert rt.state("c-noexec").exit_code == 126


def test_default_capabilities_are_dockers(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "cat", "/proc/self/status")
    assert rt.run_attached("c-caps", bundle, stdin=False) == 0
    status = _output(rt, "c-caps")
    assert "CapEff:\t00000000a80425fb\n" in status
    assert "CapBnd:\t00000000a80425fb\n" in status
    assert "CapInh:\t0000000000000000\n" in status
    assert "CapAmb:\t0000000000000000\n" in status
    assert "Seccomp:\t2\n" in status  # filter mode: the default profile is loaded


def _mountinfo(rt: Runtime, bundle: Path, rootfs: Path, cid: str) -> dict[str, list[str]]:
    _prepare(bundle, rootfs, "cat", "/proc/self/mountinfo")
    assert rt.run_attached(cid, bundle, stdin=False) == 0
    mounts: dict[str, list[str]] = {}
    for line in _output(rt, cid).splitlines():
        fields = line.split()
        mounts[fields[4]] = fields[5].split(",")
    return mounts


def test_masked_paths(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    mounts = _mountinfo(rt, bundle, rootfs, "c-masked")
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/acpi", "/proc/scsi"):
        if Path(path).exists():  # the kernel here may not have them at all
            assert path in mounts, f"{path} is not masked"
    _prepare(
        bundle,
        rootfs,
        "sh",
        "-c",
        "cat /proc/kcore /proc/timer_list /proc/keys 2>/dev/null | wc -c",
    )
    rt.run_attached("c-masked2", bundle, stdin=False)
    assert _output(rt, "c-masked2").strip() == "0"


def test_readonly_paths(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    mounts = _mountinfo(rt, bundle, rootfs, "c-ro")
    for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"):
        if Path(path).exists():
            assert "ro" in mounts[path], f"{path} is writable"
    assert "ro" in mounts["/sys"]
    script = (
        "echo h > /proc/sys/kernel/hostname; echo s=$?; echo 1 > /proc/sysrq-trigger; echo t=$?"
    )
    _prepare(bundle, rootfs, "sh", "-c", script)
    rt.run_attached("c-ro2", bundle, stdin=False)
    out = _output(rt, "c-ro2")
    assert "s=1" in out
    assert "t=1" in out  # read-only where it exists, absent where the kernel lacks it


def test_network_none_has_only_loopback(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "ls", "/sys/class/net")
    assert rt.run_attached("c-net", bundle, stdin=False) == 0
    assert _output(rt, "c-net").split() == ["lo"]


def test_network_host_sees_host_interfaces(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "ls", "/sys/class/net", network=NetworkMode.HOST)
    assert rt.run_attached("c-hostnet", bundle, stdin=False) == 0
    assert sorted(_output(rt, "c-hostnet").split()) == sorted(os.listdir("/sys/class/net"))


def test_nofile_limit_within_host_hard_limit(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "sh", "-c", "ulimit -n; ulimit -Hn")
    assert rt.run_attached("c-ulimit", bundle, stdin=False) == 0
    soft, hard = (int(v) for v in _output(rt, "c-ulimit").split())
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard <= host_hard
    assert soft <= hard
    assert soft == min(host_hard, 1 << 20)


def test_user_is_resolved_in_the_image(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "sh", "-c", "id -u; id -g; echo $HOME", user="nobody")
    assert rt.run_attached("c-user", bundle, stdin=False) == 0
    assert _output(rt, "c-user").split() == ["65534", "65534", "/nonexistent"]


def test_readonly_rootfs_and_bind_mounts(
    rt: Runtime, bundle: Path, rootfs: Path, shm_tmp: Path
) -> None:
    rw, ro = shm_tmp / "rw", shm_tmp / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "f").write_text("from host\n")
    script = "touch /x; echo root=$?; echo data > /rw/new; cat /ro/f; touch /ro/g; echo ro=$?"
    _prepare(
        bundle,
        rootfs,
        "sh",
        "-c",
        script,
        readonly_rootfs=True,
        mounts=(
            MountSpec(source=rw, destination="/rw"),
            MountSpec(source=ro, destination="/ro", readonly=True),
        ),
    )
    assert rt.run_attached("c-mounts", bundle, stdin=False) == 0
    out = _output(rt, "c-mounts")
    assert "root=1" in out
    assert "from host" in out
    assert "ro=1" in out
    assert (rw / "new").read_text() == "data\n"
    assert not (rootfs / "x").exists()


def test_stdin_is_passed_when_asked(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "sh", "-c", "cat; echo done")
    r, w = os.pipe()
    os.write(w, b"from stdin\n")
    os.close(w)
    saved = os.dup(0)
    os.dup2(r, 0)
    try:
        assert rt.run_attached("c-stdin", bundle, stdin=True) == 0
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(r)
    assert _output(rt, "c-stdin") == "from stdin\ndone\n"


TRAP_TERM = "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done"


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_detached_logs_and_stop_reports_trapped_exit(
    rt: Runtime, bundle: Path, rootfs: Path
) -> None:
    _prepare(bundle, rootfs, "sh", "-c", TRAP_TERM)
    pid = rt.start_detached("c-detached", bundle)
    assert pid > 0
    state = rt.state("c-detached")
    assert state.status is ContainerStatus.RUNNING
    assert state.pid == pid
    _wait_for(lambda: "ready\n" in _output(rt, "c-detached"))
    with pytest.raises(ContainerRunningError):
        rt.delete("c-detached")
    assert rt.stop("c-detached", timeout=10) == 3
    state = rt.state("c-detached")
    assert state.status is ContainerStatus.EXITED
    assert state.exit_code == 3
    raw = (bundle / "c-detached-json.log").read_text().splitlines()
    entries = [json.loads(line) for line in raw]
    assert [e["log"] for e in entries] == ["ready\n", "got TERM\n"]
    assert all(list(e) == ["log", "stream", "time"] and e["stream"] == "stdout" for e in entries)
    assert all(e["time"].endswith("Z") and "T" in e["time"] for e in entries)
    assert raw[0].startswith('{"log":"ready\\n","stream":"stdout","time":"')


def test_stop_kills_after_timeout(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    # PID 1 without a handler ignores TERM, so only the SIGKILL after the timeout ends it.
    _prepare(bundle, rootfs, "sleep", "60")
    rt.start_detached("c-stubborn", bundle)
    assert rt.stop("c-stubborn", timeout=0.5) == 137


def test_logs_follow_ends_when_the_container_exits(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "sh", "-c", "echo one; sleep 0.5; echo two >&2")
    rt.start_detached("c-follow", bundle)
    entries = list(rt.logs("c-follow", follow=True))
    assert [(e.stream, e.line) for e in entries] == [("stdout", "one\n"), ("stderr", "two\n")]


LAUNCHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lamina.runtime import Runtime
    rt = Runtime(state_dir=Path(sys.argv[1]))
    mode = sys.argv[4]
    if mode == "detached":
        print(rt.start_detached(sys.argv[2], Path(sys.argv[3])), flush=True)
        time.sleep(60)
    else:
        sys.exit(rt.run_attached(sys.argv[2], Path(sys.argv[3]), stdin=False))
    """
)


def _launcher(shm_tmp: Path, cid: str, bundle: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(shm_tmp / "state"), cid, str(bundle), mode],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_kill_9_of_the_launcher_leaves_the_shim_recording(
    rt: Runtime, bundle: Path, rootfs: Path, shm_tmp: Path
) -> None:
    _prepare(bundle, rootfs, "sh", "-c", "echo started; sleep 1; echo finished; exit 7")
    launcher = _launcher(shm_tmp, "c-orphan", bundle, "detached")
    assert launcher.stdout is not None
    pid = int(launcher.stdout.readline())
    launcher.kill()  # SIGKILL: no cleanup of any kind in the launcher
    launcher.wait()
    assert rt.state("c-orphan").status is ContainerStatus.RUNNING
    assert rt.state("c-orphan").pid == pid
    _wait_for(lambda: rt.state("c-orphan").status is ContainerStatus.EXITED)
    assert rt.state("c-orphan").exit_code == 7
    assert _output(rt, "c-orphan") == "started\nfinished\n"


def test_attached_run_forwards_term_and_propagates_the_exit(
    rt: Runtime, bundle: Path, rootfs: Path, shm_tmp: Path
) -> None:
    _prepare(bundle, rootfs, "sh", "-c", TRAP_TERM)
    launcher = _launcher(shm_tmp, "c-fwd", bundle, "attached")
    assert launcher.stdout is not None
    assert launcher.stdout.readline() == "ready\n"  # the container's stdout, passed through
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(timeout=10) == 3
    assert launcher.stdout.read() == "got TERM\n"
    assert rt.state("c-fwd").exit_code == 3


def test_kill_sends_a_signal_and_exit_is_128_plus_n(
    rt: Runtime, bundle: Path, rootfs: Path
) -> None:
    _prepare(bundle, rootfs, "sleep", "60")
    rt.start_detached("c-kill", bundle)
    rt.kill("c-kill", signal.SIGKILL)
    _wait_for(lambda: rt.state("c-kill").status is ContainerStatus.EXITED)
    assert rt.state("c-kill").exit_code == 137


def test_restart_after_exit_and_delete(rt: Runtime, bundle: Path, rootfs: Path) -> None:
    _prepare(bundle, rootfs, "true")
    assert rt.run_attached("c-again", bundle, stdin=False) == 0
    assert rt.run_attached("c-again", bundle, stdin=False) == 0
    rt.delete("c-again")
    rt.delete("c-again")  # idempotent
    with pytest.raises(ContainerNotFoundError):
        rt.state("c-again")


def test_missing_interpreter_fails_inside_the_container_as_docker(
    rt: Runtime, bundle: Path, rootfs: Path
) -> None:
    # The command exists and is executable, so it starts; runc 1.1's init then fails the
    # execve after the start, prints the reason to the container's stderr and exits 1 --
    # what Docker 20.10+ on runc 1.1 shows too (`exec /x: no such file or directory`, exit 1).
    script = rootfs / "bin" / "orphan-script"
    script.write_text("#!/no/such/interpreter\n")
    script.chmod(0o755)
    try:
        _prepare(bundle, rootfs, "/bin/orphan-script")
        assert rt.run_attached("c-interp", bundle, stdin=False) == 1
        errors = "".join(e.line for e in rt.logs("c-interp") if e.stream == "stderr")
        assert "exec /bin/orphan-script: no such file or directory" in errors
        assert rt.state("c-interp").status is ContainerStatus.EXITED
    finally:
        script.unlink()


def test_missing_runc_is_a_clear_125(bundle: Path, rootfs: Path, shm_tmp: Path) -> None:
    broken = Runtime(state_dir=shm_tmp / "state-broken", runc_binary="/nonexistent/runc")
    _prepare(bundle, rootfs, "true")
    with pytest.raises(ContainerStartError) as info:
        broken.start_detached("c-norunc", bundle)
    assert info.value.exit_status == 125
    assert "/nonexistent/runc" in str(info.value)
    broken.delete("c-norunc")


TTY_LAUNCHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from lamina.runtime import Runtime
    rt = Runtime(state_dir=Path(sys.argv[1]))
    sys.exit(rt.run_attached(sys.argv[2], Path(sys.argv[3]), stdin=True))
    """
)


def test_tty_mode_gives_the_process_a_terminal(
    rt: Runtime, bundle: Path, rootfs: Path, shm_tmp: Path
) -> None:
    import pty

    _prepare(bundle, rootfs, "sh", "-c", "tty; exit 5", tty=True)
    master, slave = pty.openpty()
    launcher = subprocess.Popen(
        [sys.executable, "-c", TTY_LAUNCHER, str(shm_tmp / "state"), "c-tty", str(bundle)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    assert launcher.wait(timeout=20) == 5
    out = b""
    with contextlib.suppress(OSError):  # EIO once the last slave fd is closed
        while chunk := os.read(master, 4096):
            out += chunk
    os.close(master)
    assert b"/dev/pts/0" in out
    assert any("/dev/pts/0" in e.line for e in rt.logs("c-tty"))
