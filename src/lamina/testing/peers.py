"""Run the peer tools (podman, buildah, skopeo, umoci, docker) offline against private stores.

Used by the interop tests and by ``bench/``. Nothing under /etc is changed: podman and friends
are pointed at config files written under ``base`` through their environment variables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from msgspec import Struct


class PodmanEnv(Struct, frozen=True):
    """Config for podman/buildah/skopeo with every store under ``base`` (put it on tmpfs)."""

    base: Path

    @classmethod
    def create(cls, base: Path) -> PodmanEnv:
        base.mkdir(parents=True, exist_ok=True)
        for d in ("graph", "run", "tmp", "cni"):
            (base / d).mkdir(exist_ok=True)
        (base / "storage.conf").write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{base}/graph"\n'
            f'runroot = "{base}/run"\n'
            "[storage.options.overlay]\n"
            'mountopt = "nodev"\n'
        )
        (base / "containers.conf").write_text(
            "[containers]\n"
            'netns = "none"\n'
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{base}/tmp/events.log"\n'
            f'tmp_dir = "{base}/tmp"\n'
            f'volume_path = "{base}/graph/volumes"\n'
            f'static_dir = "{base}/graph/libpod"\n'
            "[network]\n"
            f'network_config_dir = "{base}/cni"\n'
        )
        (base / "registries.conf").write_text(
            'unqualified-search-registries = []\nshort-name-mode = "permissive"\n'
        )
        (base / "policy.json").write_text(
            '{ "default": [ { "type": "insecureAcceptAnything" } ] }\n'
        )
        return cls(base)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "CONTAINERS_STORAGE_CONF": str(self.base / "storage.conf"),
                "CONTAINERS_CONF": str(self.base / "containers.conf"),
                "CONTAINERS_REGISTRIES_CONF": str(self.base / "registries.conf"),
                "TMPDIR": str(self.base / "tmp"),
            }
        )
        return env

    def policy_args(self) -> list[str]:
        return ["--policy", str(self.base / "policy.json")]

    def run(
        self,
        tool: str,
        *args: str,
        check: bool = True,
        input: bytes | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        env = self.env
        if extra_env:
            env.update(extra_env)
        return subprocess.run([tool, *args], env=env, capture_output=True, check=check, input=input)

    def reset(self) -> None:
        """Wipe podman's store (podman system reset would need a running config)."""
        subprocess.run(
            ["podman", "system", "reset", "-f"], env=self.env, capture_output=True, check=False
        )
        _umount_under(self.base / "graph")
        shutil.rmtree(self.base / "graph", ignore_errors=True)
        shutil.rmtree(self.base / "run", ignore_errors=True)
        (self.base / "graph").mkdir(exist_ok=True)
        (self.base / "run").mkdir(exist_ok=True)


def _umount_under(path: Path) -> None:
    prefix = str(path) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        targets = [ln.split()[4] for ln in f if ln.split()[4].startswith(prefix)]
    for t in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", t], capture_output=True, check=False)


def have(tools: Sequence[str]) -> bool:
    return all(shutil.which(t) for t in tools)


DOCKER_CLIENT = "/usr/bin/docker"  # the 20.10 client; a newer one earlier on PATH speaks API 1.44+
DOCKERD = "/usr/sbin/dockerd"


class DockerDaemon(Struct):
    """dockerd 20.10 on a private socket, data-root and exec-root under ``base`` (tmpfs).

    Started as ``../shared/peers/README.md`` shows (no iptables, no bridge, overlay2, the
    host's nofile/nproc hard limits as default ulimits). :meth:`stop` terminates it, waits, and
    unmounts whatever it left under ``base``.
    """

    base: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.base / "docker.sock"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "0"})
        env.pop("DOCKER_CONTEXT", None)
        return env

    def start(self, *, timeout: float = 60.0) -> DockerDaemon:
        for d in ("data", "exec"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        log = (self.base / "dockerd.log").open("wb")
        self.process = subprocess.Popen(
            [
                DOCKERD,
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=overlay2",
                "--data-root",
                str(self.base / "data"),
                "--exec-root",
                str(self.base / "exec"),
                "--pidfile",
                str(self.base / "dockerd.pid"),
                "-H",
                f"unix://{self.socket}",
                "--default-ulimit",
                "nofile=20000:20000",
                "--default-ulimit",
                "nproc=32768:32768",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd exited: {self.log_tail()}")
            if self.run("version", check=False).returncode == 0:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"dockerd did not answer within {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.base / "dockerd.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def run(
        self, *args: str, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [DOCKER_CLIENT, *args], env=self.env, capture_output=True, check=check, input=input
        )

    def stop(self) -> None:
        """Terminate dockerd (SIGTERM, then SIGKILL after 20 s) and unmount its leftovers."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        _umount_under(self.base)
