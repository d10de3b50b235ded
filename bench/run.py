#!/usr/bin/env python3
"""lamina vs its peers, side by side in one run: median times and ratios.

Run with ``make bench`` (or ``.venv/bin/python bench/run.py [CASE...]``). Datasets are prepared
here: a Debian minbase rootfs made with debootstrap (cached in bench/.data) and the busybox
rootfs. Every store -- lamina's and the peers' -- lives on tmpfs (/dev/shm): the root ext4 here
has no journal and slows file creation after deletions for every tool alike. Runs alternate
between the tools so drift hits both. A case whose peer is missing fails instead of printing
lamina-only numbers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / ".data"
LAMINA = str(REPO / ".venv" / "bin" / "lamina")
SHM = Path("/dev/shm")

sys.path.insert(0, str(REPO / "src"))
from lamina.testing.datasets import debian_minbase_tar_gz  # noqa: E402
from lamina.testing.peers import DockerDaemon, PodmanEnv  # noqa: E402


def sh(cmd: str) -> None:
    subprocess.run(["sh", "-c", cmd], check=True, capture_output=True)


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise SystemExit(
            f"bench: peer tool(s) missing: {', '.join(missing)} (run make setup-peers)"
        )


def debian_rootfs_tar_gz() -> Path:
    """A Debian bookworm minbase rootfs (~6.7k entries) as tar.gz, made once (debootstrap)."""
    need("debootstrap")
    return debian_minbase_tar_gz(DATA)


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compare(
    name: str,
    contenders: dict[str, tuple[Callable[[], None], Callable[[], None]]],
    *,
    runs: int,
) -> dict[str, float]:
    """contenders: label -> (setup, action); setup runs untimed before each action."""
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(runs):
        for label, (setup, action) in contenders.items():
            setup()
            times[label].append(timed(action))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{name}  (median of {runs})")
    base = medians["lamina"]
    for label, m in medians.items():
        ratio = base / m if label != "lamina" else 1.0
        rel = "" if label == "lamina" else f"   lamina/{label} = {ratio:.2f}x"
        print(f"  {label:<24} {m * 1000:9.1f} ms{rel}")
    return medians


def case_import(runs: int) -> None:
    need("podman", "igzip", "tar")
    tgz = debian_rootfs_tar_gz()
    work = Path(tempfile.mkdtemp(prefix="bench-import-", dir=SHM))
    lroot = work / "lamina"
    floor_dir = work / "floor"
    penv = PodmanEnv.create(work / "podman")
    try:

        def lamina_setup() -> None:
            _rm_lamina_root(lroot)

        def lamina_import() -> None:
            subprocess.run(
                [LAMINA, "--root", str(lroot), "import", str(tgz), "bench/debian"],
                check=True,
                capture_output=True,
            )

        def podman_setup() -> None:
            penv.reset()

        def podman_import() -> None:
            penv.run("podman", "import", str(tgz), "bench/debian")

        def floor_setup() -> None:
            shutil.rmtree(floor_dir, ignore_errors=True)
            floor_dir.mkdir()

        def floor() -> None:
            sh(f"igzip -dc {tgz} | tar -x -C {floor_dir}")

        compare(
            f"import Debian minbase rootfs ({tgz.stat().st_size / 1e6:.1f} MB tar.gz)",
            {
                "lamina": (lamina_setup, lamina_import),
                "podman import": (podman_setup, podman_import),
                "igzip -dc | tar -x": (floor_setup, floor),
            },
            runs=runs,
        )
        print("  targets: lamina <= 0.5x podman import, <= 2x the igzip|tar floor")
    finally:
        _rm_lamina_root(lroot)
        penv.reset()
        shutil.rmtree(work, ignore_errors=True)


def _rm_lamina_root(root: Path) -> None:
    if root.exists():
        subprocess.run(
            ["sh", "-c", f"grep -o ' {root}/[^ ]*' /proc/self/mountinfo | xargs -r -n1 umount -l"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def case_version(runs: int) -> None:
    compare(
        "lamina --version (CLI start-up)",
        {
            "lamina": (lambda: None, lambda: sh(f"{LAMINA} --version")),
            "podman --version": (lambda: None, lambda: sh("podman --version")),
        },
        runs=runs,
    )


def _debian_image(work: Path) -> tuple[PodmanEnv, Path, Path]:
    """The Debian minbase image as podman sees it (``podman import``), its docker-archive
    (``podman save``) and an OCI layout of it (``skopeo copy``, gzip layer), all on tmpfs."""
    tgz = debian_rootfs_tar_gz()
    penv = PodmanEnv.create(work / "podman")
    penv.run("podman", "import", str(tgz), "bench/debian:latest")
    archive = work / "debian.docker-archive.tar"
    penv.run("podman", "save", "-o", str(archive), "bench/debian:latest")
    layout = work / "debian.oci"
    penv.run(
        "skopeo", *penv.policy_args(), "copy", f"docker-archive:{archive}", f"oci:{layout}:debian"
    )
    return penv, archive, layout


def _lamina(root: Path, *args: str) -> None:
    subprocess.run([LAMINA, "--root", str(root), *args], check=True, capture_output=True)


def case_load(runs: int) -> None:
    need("podman", "skopeo")
    work = Path(tempfile.mkdtemp(prefix="bench-load-", dir=SHM))
    lroot = work / "lamina"
    penv = None
    try:
        penv, archive, _ = _debian_image(work)
        penv.reset()
        p = penv

        compare(
            f"load Debian minbase docker-archive ({archive.stat().st_size / 1e6:.1f} MB)",
            {
                "lamina": (
                    lambda: _rm_lamina_root(lroot),
                    lambda: _lamina(lroot, "load", "-q", "-i", str(archive)),
                ),
                "podman load": (p.reset, lambda: p.run("podman", "load", "-q", "-i", str(archive))),
            },
            runs=runs,
        )
        print("  target: lamina <= 0.33x podman load")
    finally:
        _rm_lamina_root(lroot)
        if penv is not None:
            penv.reset()
        shutil.rmtree(work, ignore_errors=True)


def case_save(runs: int) -> None:
    need("podman", "skopeo")
    work = Path(tempfile.mkdtemp(prefix="bench-save-", dir=SHM))
    lroot = work / "lamina"
    out = work / "out.tar"
    penv = None
    try:
        penv, archive, _ = _debian_image(work)
        _lamina(lroot, "load", "-q", "-i", str(archive))
        p = penv

        def clean() -> None:
            out.unlink(missing_ok=True)

        compare(
            "save Debian minbase to a docker-archive",
            {
                "lamina": (clean, lambda: _lamina(lroot, "save", "-o", str(out), "bench/debian")),
                "podman save": (
                    clean,
                    lambda: p.run("podman", "save", "-o", str(out), "bench/debian:latest"),
                ),
            },
            runs=runs,
        )
        print("  target: lamina <= 0.5x podman save")
    finally:
        _rm_lamina_root(lroot)
        if penv is not None:
            penv.reset()
        shutil.rmtree(work, ignore_errors=True)


def case_copy(runs: int) -> None:
    need("podman", "skopeo")
    work = Path(tempfile.mkdtemp(prefix="bench-copy-", dir=SHM))
    lroot = work / "lamina"
    out = work / "out.tar"
    penv = None
    try:
        penv, _, layout = _debian_image(work)
        penv.reset()  # skopeo copy reads the layout only; no store involved
        p = penv
        _lamina(lroot, "images")  # create the store (lamina copy stages in its tmp dir)
        src, dst = f"oci:{layout}:debian", f"docker-archive:{out}:bench/debian:latest"

        def clean() -> None:
            out.unlink(missing_ok=True)

        compare(
            "copy Debian minbase oci: -> docker-archive:",
            {
                "lamina": (clean, lambda: _lamina(lroot, "copy", "-q", src, dst)),
                "skopeo copy": (
                    clean,
                    lambda: p.run("skopeo", *p.policy_args(), "copy", "-q", src, dst),
                ),
            },
            runs=runs,
        )
        print("  target: lamina <= 0.7x skopeo copy")
    finally:
        _rm_lamina_root(lroot)
        if penv is not None:
            penv.reset()
        shutil.rmtree(work, ignore_errors=True)


def case_forensics(runs: int) -> None:
    """layers/tree/waste/secrets/verify --deep on the Debian minbase image (issue 6 targets:
    index-only commands < 0.5 s warm, secrets content scan >= 100 MB/s, verify --deep >=
    0.5 GB/s), against a ``tar -t`` pass over the layer blob (dive is not installable here)."""
    need("tar")
    tgz = debian_rootfs_tar_gz()
    work = Path(tempfile.mkdtemp(prefix="bench-forensics-", dir=SHM))
    lroot = work / "lamina"
    try:
        _lamina(lroot, "import", str(tgz), "bench/debian")
        content = json.loads(
            subprocess.run(
                [LAMINA, "--root", str(lroot), "layers", "bench/debian", "--format", "json"],
                check=True,
                capture_output=True,
            ).stdout
        )[0]["Size"]
        blob = max((lroot / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
        floor = (lambda: None, lambda: sh(f"tar -tzf {blob} > /dev/null"))
        for args in (("layers",), ("tree",), ("waste",), ("secrets",), ("verify", "--deep")):
            label = " ".join(args)
            medians = compare(
                f"lamina {label} bench/debian (Debian minbase, {content / 1e6:.0f} MB of files)",
                {
                    "lamina": (lambda: None, lambda a=args: _lamina(lroot, *a, "bench/debian")),
                    "tar -t over the blob": floor,
                },
                runs=runs,
            )
            if args[0] in ("secrets", "verify"):
                print(
                    f"  {content / 1e6 / medians['lamina']:.0f} MB/s of layer content "
                    "(CLI start-up included)"
                )
    finally:
        _rm_lamina_root(lroot)
        shutil.rmtree(work, ignore_errors=True)


def _build_contexts(work: Path) -> dict[str, Path]:
    """(i) COPY of 2,000 small files (~50 MB, random bytes) and (ii) 10 RUN steps writing
    10 MiB each, both FROM the Debian minbase image (named bench/debian in every store)."""
    import os

    copy_ctx = work / "ctx-copy"
    files = copy_ctx / "files"
    for i in range(2000):
        sub = files / f"d{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:04d}.bin").write_bytes(os.urandom(25_000))
    (copy_ctx / "Dockerfile").write_text("FROM bench/debian\nCOPY files /files/\n")
    run_ctx = work / "ctx-run"
    run_ctx.mkdir()
    steps = "".join(f"RUN head -c 10485760 /dev/urandom > /blob{i}\n" for i in range(10))
    (run_ctx / "Dockerfile").write_text("FROM bench/debian\n" + steps)
    return {"copy": copy_ctx, "run": run_ctx}


def case_build(runs: int) -> None:
    """lamina build vs buildah bud --layers and docker 20.10's classic builder: (i) COPY 2,000
    files, (ii) 10 RUN x 10 MiB (both --no-cache), (iii) the all-cache rebuild of (ii)."""
    need("podman", "skopeo", "buildah", "dockerd")
    # Byte-compile lamina once, as an installed package is: with PYTHONDONTWRITEBYTECODE set
    # every lamina process would otherwise recompile ~150 modules (~150 ms of (iii)).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src")], check=True)
    work = Path(tempfile.mkdtemp(prefix="bench-build-", dir=SHM))
    lroot = work / "lamina"
    penv = None
    docker = None
    try:
        penv, archive, _ = _debian_image(work)
        docker = DockerDaemon(work / "docker").start()
        docker.run("load", "-i", str(archive))
        # podman saved it as localhost/bench/debian; docker only finds that full name.
        docker.run("tag", "localhost/bench/debian:latest", "bench/debian:latest")
        _lamina(lroot, "load", "-q", "-i", str(archive))
        ctx = _build_contexts(work)
        p, d = penv, docker

        def contenders(
            name: str, *flags: str
        ) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
            c = str(ctx[name])
            return {
                "lamina": (
                    lambda: None,
                    lambda: _lamina(lroot, "build", "-q", *flags, "-t", f"b-{name}", c),
                ),
                "buildah bud --layers": (
                    lambda: None,
                    lambda: p.run(
                        "buildah",
                        "bud",
                        "--layers",
                        "-q",
                        *flags,
                        "--network",
                        "none",
                        "-t",
                        f"b-{name}",
                        c,
                    ),
                ),
                "docker 20.10 classic": (
                    lambda: None,
                    lambda: d.run("build", "-q", *flags, "--network", "none", "-t", f"b-{name}", c),
                ),
            }

        compare("build (i): COPY 2,000 files / 50 MB FROM Debian minbase (--no-cache)",
                contenders("copy", "--no-cache"), runs=runs)  # fmt: skip
        compare("build (ii): 10 RUN steps x 10 MiB FROM Debian minbase (--no-cache)",
                contenders("run", "--no-cache"), runs=runs)  # fmt: skip
        compare("build (iii): full-cache rebuild of (ii)", contenders("run"), runs=runs)
        print("  targets: (i) <= 0.7x buildah, (ii) <= 0.8x buildah, (iii) <= 1.0x docker")
    finally:
        _rm_lamina_root(lroot)
        if docker is not None:
            docker.stop()
        if penv is not None:
            penv.reset()
        shutil.rmtree(work, ignore_errors=True)


def case_containers(runs: int) -> None:
    """Issue 4's container targets on the busybox fixture imported into both: ``create`` +
    ``mount`` (two CLI starts for each tool), ``run --rm busybox true``, and CLI start-up."""
    need("podman", "runc")
    work = Path(tempfile.mkdtemp(prefix="bench-containers-", dir=SHM))
    lroot = work / "lamina"
    bb = work / "busybox-rootfs.tar"
    penv = PodmanEnv.create(work / "podman")
    try:
        subprocess.run([str(REPO / "scripts" / "make-busybox-rootfs"), str(bb)], check=True)
        _lamina(lroot, "import", "--change", 'CMD ["/bin/sh"]', str(bb), "busybox")
        penv.run("podman", "import", "--change", 'CMD ["/bin/sh"]', str(bb), "busybox")
        lam = [LAMINA, "--root", str(lroot)]

        def lamina_create_mount() -> None:
            cid = subprocess.run(
                [*lam, "create", "busybox", "true"], check=True, capture_output=True, text=True
            ).stdout.strip()
            subprocess.run([*lam, "mount", cid], check=True, capture_output=True)

        def podman_create_mount() -> None:
            cid = penv.run("podman", "create", "busybox", "true").stdout.decode().strip()
            penv.run("podman", "mount", cid)

        compare(
            "create + mount (busybox)",
            {
                "lamina": (lambda: None, lamina_create_mount),
                "podman create + mount": (lambda: None, podman_create_mount),
            },
            runs=runs,
        )
        print("  target: lamina <= 1.0x podman (stretch 0.7x)")
        compare(
            "run --rm busybox true",
            {
                "lamina": (
                    lambda: None,
                    lambda: _lamina(lroot, "run", "--rm", "busybox", "true"),
                ),
                "podman run --rm": (
                    lambda: None,
                    lambda: penv.run("podman", "run", "--rm", "busybox", "true"),
                ),
            },
            runs=runs,
        )
        print("  target: lamina <= 1.0x podman")
        case_version(runs)
    finally:
        _rm_lamina_root(lroot)
        penv.run("podman", "rm", "-af", check=False)
        penv.reset()
        shutil.rmtree(work, ignore_errors=True)


CASES: dict[str, Callable[[int], None]] = {
    "import": case_import,
    "version": case_version,
    "load": case_load,
    "save": case_save,
    "copy": case_copy,
    "forensics": case_forensics,
    "build": case_build,
    "containers": case_containers,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("cases", nargs="*", default=list(CASES), help=", ".join(CASES))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")
    for c in args.cases:
        CASES[c](args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
