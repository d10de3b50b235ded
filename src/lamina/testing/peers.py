"""Run the peer tools (podman, buildah, skopeo, umoci, docker) offline against private stores.

Used by the interop tests and by ``bench/``. Nothing under /etc is changed: podman and friends
are pointed at config files written under ``base`` through their environment variables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class PodmanEnv:
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
