#!/usr/bin/env python3
"""Peak memory and wall time of ``lamina load`` / ``lamina import`` for one layer of many files.

A layer's cost per tar entry is what this measures: a docker-archive whose single layer holds
N empty files (``--files``, 300,000 by default) or N small files of ``--size`` bytes each, and
the same rootfs as a plain tar for ``import``. Everything lives on tmpfs (/dev/shm). Peak RSS is
GNU time's (``/usr/bin/time``: Debian's ``time`` package).

    PYTHONPATH=$PWD/src .venv/bin/python bench/manyfiles.py --files 300000
    PYTHONPATH=$PWD/src .venv/bin/python bench/manyfiles.py --files 100000 --size 100
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
LAMINA = str(HERE.parent / ".venv" / "bin" / "lamina")
SHM = Path("/dev/shm")
FILES_PER_DIR = 1000


def rootfs_tar(path: Path, *, files: int, size: int) -> None:
    """A rootfs tar of ``files`` regular files of ``size`` bytes, 1,000 to a directory."""
    content = b"x" * size
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(files):
            d, f = divmod(i, FILES_PER_DIR)
            if f == 0:
                ti = tarfile.TarInfo(f"d{d:05d}")
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(ti)
            ti = tarfile.TarInfo(f"d{d:05d}/f{f:04d}")
            ti.size, ti.mode = size, 0o644
            tar.addfile(ti, io.BytesIO(content) if size else None)


def docker_archive(path: Path, layer: Path) -> None:
    """A ``docker save``-style archive of one image (``bench/manyfiles:latest``) whose one layer
    is ``layer`` (uncompressed)."""
    h = hashlib.sha256()
    with layer.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    diff_id = "sha256:" + h.hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "bench/manyfiles.py"}],
        },
        separators=(",", ":"),
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = h.hexdigest() + "/layer.tar"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": ["bench/manyfiles:latest"], "Layers": [layer_name]}]
    ).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((config_name, config), ("manifest.json", manifest)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tar.addfile(ti, io.BytesIO(data))
        tar.add(str(layer), layer_name)


def measure(args: list[str], *, env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one command, which must succeed. GNU time reports
    the peak: a child forked from this process would count the RSS it inherited before exec
    (``ru_maxrss`` keeps the larger), and generating the tar leaves this process large."""
    with tempfile.NamedTemporaryFile(dir=SHM, prefix="bench-time-") as out:
        proc = subprocess.run(
            ["/usr/bin/time", "-o", out.name, "-f", "%e %M", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
        if proc.returncode:
            raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.decode()[-2000:]}")
        wall, peak_kb = Path(out.name).read_text().split()[-2:]
    return float(wall), int(peak_kb) * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=300_000)
    ap.add_argument("--size", type=int, default=0, help="bytes of each file (default: empty)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--src",
        action="append",
        help="a lamina source tree to run (PYTHONPATH); repeat to compare trees, runs alternate "
        "(default: $PYTHONPATH, else this checkout's src)",
    )
    ap.add_argument("cases", nargs="*", default=["load", "import"])
    a = ap.parse_args()
    srcs = a.src or [os.environ.get("PYTHONPATH") or str(HERE.parent / "src")]
    work = Path(tempfile.mkdtemp(prefix="bench-manyfiles-", dir=SHM))
    try:
        layer, archive = work / "rootfs.tar", work / "image.tar"
        rootfs_tar(layer, files=a.files, size=a.size)
        docker_archive(archive, layer)
        mb = layer.stat().st_size / 1e6
        print(f"one layer of {a.files:,} files of {a.size} bytes ({mb:.0f} MB tar)")
        root = work / "root"
        commands = {
            "load": ["load", "-q", "-i", str(archive)],
            "import": ["import", str(layer), "bench/manyfiles"],
        }
        for case in a.cases:
            walls: dict[str, list[float]] = {src: [] for src in srcs}
            peaks: dict[str, list[int]] = {src: [] for src in srcs}
            for _ in range(a.runs):
                for src in srcs:
                    shutil.rmtree(root, ignore_errors=True)
                    env = {**os.environ, "PYTHONPATH": src}
                    wall, peak = measure([LAMINA, "--root", str(root), *commands[case]], env=env)
                    walls[src].append(wall)
                    peaks[src].append(peak)
            for src in srcs:
                print(
                    f"  lamina {case:<7} median {statistics.median(walls[src]):6.2f} s"
                    f"  (runs {', '.join(f'{w:.2f}' for w in walls[src])})"
                    f"   peak RSS {statistics.median(peaks[src]) / 2**20:6.1f} MiB   {src}"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
