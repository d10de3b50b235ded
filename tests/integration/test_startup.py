"""What a CLI call loads: each verb imports what it uses and nothing else (every call is a new
process, so imports are most of a call's time; docs/design-notes.md "Start-up"). Runs the
console script itself (:func:`lamina.cli.entry.run`, with its stand-ins) against a store
holding an image and two containers, and reads ``sys.modules`` as it leaves."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from interop import LAMINA, run

# attach's own modules: never for create or --version (run loads the engine's for a
# start's stdin options; the shim loads the socket's after its fork, the launcher never).
ATTACH_MODULES = (
    "lamina.cli.commands.attach",
    "lamina.engine.container_attach",
    "lamina.runtime.attach",
    "lamina.runtime.attach_client",
)

# Loaded only by the verbs that need them (cli.entry, cli.main, lamina.digest, the engine's
# lazy services): none of the verbs below mounts, removes a tree, runs a process or reads a
# transport.
DEFERRED = (
    "gettext",
    "locale",
    "platform",
    "urllib.parse",
    "ipaddress",
    "shutil",
    "bz2",
    "lzma",
    "_hashlib",
    "ctypes",
    "threading",
    "subprocess",
    "typing_extensions",
    "inspect",
    "base64",
    "tarfile",
    "_strptime",
    "lamina.runtime.runtime",
    "lamina.engine.transfer",
    *ATTACH_MODULES,
    # bound lazily while msgspec loads (cli.main._import_msgspec), never run by these verbs
    "textwrap",
    "msgspec.inspect",
    "msgspec.toml",
    "msgspec.yaml",
)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )


def console_script(*argv: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``lamina ARGV`` as the console script does (:func:`lamina.cli.entry.run`); return
    the process and the modules it had loaded when it left (a module bound lazily and never
    used does not count: its body has not run)."""
    code = (
        "import os, sys\n"
        f"sys.argv = ['lamina', *{list(argv)!r}]\n"
        "leave = os._exit\n"
        "def report(status):\n"
        "    sys.stdout.flush()\n"
        "    loaded = [n for n, m in sys.modules.items() if type(m).__name__ != '_LazyModule']\n"
        "    print(sorted(loaded), file=sys.stderr, flush=True)\n"
        "    leave(status)\n"
        "os._exit = report\n"
        "from lamina.cli.entry import run\n"
        "run()\n"
    )
    r = _python(code)
    loaded: list[str] = eval(r.stderr.splitlines()[-1])
    return r, loaded


def test_the_stand_ins_answer_as_the_modules_they_defer() -> None:
    r, loaded = console_script("--version")
    assert r.returncode == 0 and r.stdout.startswith("lamina, version "), r.stderr
    assert sorted(set(ATTACH_MODULES) & set(loaded)) == []
    # argparse's messages, through the identity gettext
    r, _ = console_script("rm", "c1", "--bogus")
    assert r.returncode == 2
    assert "error: unrecognized arguments: --bogus" in r.stderr
    code = (
        "from lamina.cli.startup import import_argparse, import_pathlib\n"
        "from lamina.cli.main import _import_msgspec\n"
        "import_argparse(); import_pathlib(); _import_msgspec()\n"
        "import gettext, pathlib, platform, uuid, urllib.parse, textwrap, msgspec\n"
        "print(pathlib.PurePosixPath('/a b%').as_uri(), gettext.find is not None,\n"
        "      platform.python_implementation(), uuid._LINUX, textwrap.dedent('  x'),\n"
        "      type(msgspec.inspect.type_info(int)).__name__, msgspec.toml.decode('a = 1')['a'])\n"
    )
    r = _python(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["file:///a%20b%25", "True", "CPython", "True", "x", "IntType", "1"]


@pytest.fixture(scope="module")
def root(busybox_rootfs_tar: Path, session_shm: Path) -> Path:
    """busybox, a created container ``c0`` and one that ran and exited, ``c1``."""
    root = Path(tempfile.mkdtemp(prefix="startup-", dir=session_shm)) / "root"
    lamina = [*LAMINA, "--root", str(root)]
    run([*lamina, "import", "--change", 'CMD ["/bin/sh"]', str(busybox_rootfs_tar), "busybox"])
    run([*lamina, "create", "--name", "c0", "busybox", "true"])
    run([*lamina, "run", "--name", "c1", "busybox", "sh", "-c", "echo x > /new; echo out"])
    return root


@pytest.mark.parametrize(
    "argv",
    [
        ["images", "-q"],
        ["ps", "-a"],
        ["history", "busybox"],
        ["inspect", "busybox"],
        ["inspect", "c1"],
        ["diff", "c1"],
        ["logs", "c1"],
        ["volume", "ls"],
    ],
    ids=" ".join,
)
def test_a_verb_loads_only_what_it_uses(root: Path, argv: list[str]) -> None:
    r, loaded = console_script("--root", str(root), *argv)
    assert r.returncode == 0, r.stderr
    assert sorted(set(DEFERRED) & set(loaded)) == []
    assert "msgspec" in loaded and "sqlite3" in loaded  # the store was opened


def test_a_verb_that_mounts_loads_the_mount_syscalls(root: Path) -> None:
    """The counter-check: the list above is not vacuous."""
    r, loaded = console_script("--root", str(root), "mount", "c0")
    assert r.returncode == 0, r.stderr
    assert "ctypes" in loaded
    run([*LAMINA, "--root", str(root), "umount", "c0"])


# What create loads only for the flags that need it (each a few tenths of a ms of every create).
CREATE_FLAG_MODULES = {
    "fractions": ("--cpus", "0.5"),
    "lamina.engine.mount_args": ("--tmpfs", "/scratch"),
    "lamina.engine.dns_args": ("--dns", "192.0.2.53"),
    "lamina.engine.limit_args": ("--ulimit", "nofile=100:100"),
    "lamina.engine.device_args": ("--device", "/dev/null"),
    "lamina.engine.volumes_from": ("--volumes-from", "c0"),
    "lamina.engine.cidfile": ("--cidfile", "{root}/cid"),
    "lamina.engine.namespace_args": ("--pid", "host"),
    "lamina.engine.sysctl_args": ("--sysctl", "net.ipv4.ip_forward=1"),
    "lamina.engine.cpuset_args": ("--cpuset-cpus", "0"),
    "lamina.engine.oom_args": ("--oom-score-adj", "5"),
    "lamina.engine.log_args": ("--log-opt", "max-size=1m"),
}


def test_create_loads_a_flags_module_only_for_that_flag(root: Path) -> None:
    r, loaded = console_script("--root", str(root), "create", "busybox", "true")
    assert r.returncode == 0, r.stderr
    assert sorted(set(CREATE_FLAG_MODULES) & set(loaded)) == []
    assert sorted(set(ATTACH_MODULES) & set(loaded)) == []
    for module, flag in CREATE_FLAG_MODULES.items():
        flag = tuple(a.format(root=root) for a in flag)
        r, loaded = console_script("--root", str(root), "create", *flag, "busybox", "true")
        assert r.returncode == 0, r.stderr
        assert module in loaded, flag
