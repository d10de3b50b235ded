"""``lamina build`` against the peers on the subset they understand (no heredocs, no --chmod):
docker 20.10's classic builder (``DOCKER_BUILDKIT=0``) and ``buildah bud --layers`` build
tests/data/build/every FROM the same busybox rootfs; every layer above the base holds the same
files (names, kinds, modes, owners, sizes, content, link targets; mtimes aside), the config
fields a user sees are equal, and history ``created_by`` equals docker's (source hashes aside:
lamina hashes sources its own way, see docs/build.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from interop import BUILD_DATA, Lamina

from lamina.testing.peers import DockerDaemon, PodmanEnv

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay, pytest.mark.slow]

TAG = "localhost/every:latest"
CONFIG_FIELDS = (
    "User", "WorkingDir", "Env", "Cmd", "Entrypoint", "ExposedPorts", "Volumes", "StopSignal",
    "Labels", "Healthcheck", "Shell", "OnBuild",
)  # fmt: skip
# What buildah's RUN leaves behind that is not the step's doing (runtime mount points).
_BUILDAH_ARTIFACTS = re.compile(r"^(run|etc/hostname|etc/hosts|etc/resolv\.conf)(/|$)")
_SOURCE_HASH = re.compile(r"(file|dir|multi):[0-9a-f]{64}")


def _layers(archive: Path) -> tuple[dict[str, Any], list[dict[str, tuple[Any, ...]]]]:
    """(config, per-layer {path: (kind, mode, uid, gid, size, content)}) of a docker-archive."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        layers = []
        for name in manifest["Layers"]:
            entries: dict[str, tuple[Any, ...]] = {}
            with tarfile.open(fileobj=outer.extractfile(name)) as inner:
                for m in inner:
                    path = m.name.removeprefix("./").rstrip("/")
                    content = ""
                    if m.isfile():
                        f = inner.extractfile(m)
                        assert f is not None
                        content = hashlib.sha256(f.read()).hexdigest()
                    elif m.issym() or m.islnk():
                        content = m.linkname
                    entries[path] = (m.type, m.mode & 0o7777, m.uid, m.gid, m.size, content)
            layers.append(entries)
    return config, layers


def _context(dest: Path) -> Path:
    shutil.copytree(BUILD_DATA / "every", dest)
    return dest


@pytest.fixture(scope="module")
def lamina_every(
    session_shm: Path, busybox_rootfs_tar: Path
) -> tuple[dict[str, Any], list[dict[str, tuple[Any, ...]]]]:
    lam = Lamina(session_shm / "lamina-every-root")
    lam("import", str(busybox_rootfs_tar), "busybox")
    lam("build", "-q", "-t", TAG, str(_context(session_shm / "ctx-every-lamina")))
    out = session_shm / "every.lamina.tar"
    lam("save", "-o", str(out), TAG)
    return _layers(out)


@pytest.fixture(scope="module")
def docker_every(
    dockerd: DockerDaemon, busybox_rootfs_tar: Path, session_shm: Path
) -> tuple[dict[str, Any], list[dict[str, tuple[Any, ...]]]]:
    dockerd.run("import", str(busybox_rootfs_tar), "busybox")
    ctx = _context(session_shm / "ctx-every-docker")
    r = dockerd.run("build", "--network", "none", "-t", TAG, str(ctx), check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    out = session_shm / "every.docker.tar"
    dockerd.run("save", "-o", str(out), TAG)
    return _layers(out)


@pytest.fixture(scope="module")
def buildah_every(
    penv: PodmanEnv, busybox_rootfs_tar: Path, session_shm: Path
) -> tuple[dict[str, Any], list[dict[str, tuple[Any, ...]]]]:
    penv.run("podman", "import", str(busybox_rootfs_tar), "docker.io/library/busybox:latest")
    ctx = _context(session_shm / "ctx-every-buildah")
    # --format docker: OCI configs have no Healthcheck, Shell or OnBuild (buildah drops them).
    penv.run(
        "buildah", "bud", "--layers", "--format", "docker", "--network", "none", "-t", TAG,
        str(ctx),
    )  # fmt: skip
    out = session_shm / "every.buildah.tar"
    penv.run("podman", "save", "--format", "docker-archive", "-o", str(out), TAG)
    return _layers(out)


def _without_artifacts(layer: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    out = {p: v for p, v in layer.items() if not _BUILDAH_ARTIFACTS.match(p)}
    # "etc" shows only as the parent of buildah's etc/hosts... when nothing else changed there.
    if "etc" in out and not any(p.startswith("etc/") for p in out):
        del out["etc"]
    return out


def _assert_same_layers(
    ours: list[dict[str, tuple[Any, ...]]], theirs: list[dict[str, tuple[Any, ...]]], peer: str
) -> None:
    assert len(ours) == len(theirs), f"{peer}: {len(theirs)} layers, lamina {len(ours)}"
    for i, (a, b) in enumerate(zip(ours[1:], theirs[1:], strict=True), start=1):
        if a != b:
            only_a = sorted(set(a) - set(b))
            only_b = sorted(set(b) - set(a))
            differ = [(p, a[p], b[p]) for p in sorted(set(a) & set(b)) if a[p] != b[p]]
            pytest.fail(f"layer {i}: only lamina {only_a}; only {peer} {only_b}; differ {differ}")


def _fields(config: dict[str, Any]) -> dict[str, Any]:
    cfg = config.get("config") or {}
    return {k: cfg.get(k) or None for k in CONFIG_FIELDS}


@pytest.mark.needs_peer("dockerd")
def test_layers_equal_docker(lamina_every: Any, docker_every: Any) -> None:
    _assert_same_layers(lamina_every[1], docker_every[1], "docker")


@pytest.mark.needs_peer("dockerd")
def test_config_equals_docker(lamina_every: Any, docker_every: Any) -> None:
    assert _fields(lamina_every[0]) == _fields(docker_every[0])


@pytest.mark.needs_peer("dockerd")
def test_history_created_by_equals_docker(lamina_every: Any, docker_every: Any) -> None:
    def created_by(config: dict[str, Any]) -> list[tuple[str, bool]]:
        return [
            (_SOURCE_HASH.sub(r"\1:<hash>", h.get("created_by", "")), bool(h.get("empty_layer")))
            for h in config["history"][1:]  # the base's own entry differs (import)
        ]

    assert created_by(lamina_every[0]) == created_by(docker_every[0])


@pytest.mark.needs_peer("buildah", "podman")
def test_layers_equal_buildah(lamina_every: Any, buildah_every: Any) -> None:
    # buildah commits a layer for every RUN; one holding only its artifacts ("RUN true") is
    # an empty step for docker and lamina.
    theirs = [x for x in (_without_artifacts(layer) for layer in buildah_every[1]) if x]
    # buildah makes no layer for WORKDIR: the dir shows up in the next step's layer instead.
    steps = [h for h in lamina_every[0]["history"] if not h.get("empty_layer")]
    ours = [
        _without_artifacts(layer)
        for layer, h in zip(lamina_every[1], steps, strict=True)
        if "#(nop) WORKDIR" not in h.get("created_by", "")
    ]
    _assert_same_layers(ours, theirs, "buildah")


@pytest.mark.needs_peer("buildah", "podman")
def test_config_equals_buildah(lamina_every: Any, buildah_every: Any) -> None:
    theirs = _fields(buildah_every[0])
    theirs["Labels"] = {
        k: v for k, v in (theirs["Labels"] or {}).items() if k != "io.buildah.version"
    }
    assert _fields(lamina_every[0]) == theirs
