"""``stats`` as docker 20.10's: its columns and units, read from the containers' cgroups
(expected values come from the kernel's own files and the flags given, not from lamina)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_containers import LAMINA, Lamina, _lamina

from lamina.runtime.cgroups import _block_io, _key_values

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_overlay]


@pytest.fixture
def lamina(shm_tmp: Path, busybox_rootfs_tar: Path) -> Iterator[Lamina]:
    with _lamina(shm_tmp / "root", "overlay2", busybox_rootfs_tar) as lam:
        yield lam


def _row(lamina: Lamina, *args: str) -> dict[str, str]:
    row: dict[str, str] = json.loads(lamina.out("stats", "--no-stream", "--format", "json", *args))
    return row


def test_stats_columns_as_docker(lamina: Lamina) -> None:
    lamina.run(
        "run", "-d", "--name", "busy", "-m", "64m", "busybox", "sh", "-c", "while :; do :; done"
    )
    # Two sleeps: the shell's child and the shell itself (busybox sh execs the last command).
    lamina.run("run", "-d", "--name", "idle", "busybox", "sh", "-c", "sleep 1000 & sleep 1000")
    row = _row(lamina, "busy")
    busy_id = lamina.out("inspect", "-f", "{{.Id}}", "busy").strip()
    assert (row["Container"], row["Name"], row["ID"]) == ("busy", "busy", busy_id[:12])
    assert row["MemUsage"].endswith(" / 64MiB")  # docker: the -m limit, binary units
    assert float(row["CPUPerc"].rstrip("%")) > 0  # a shell spinning in a loop
    assert (row["NetIO"], row["PIDs"]) == ("0B / 0B", "1")
    deadline = time.monotonic() + 10
    while _row(lamina, "idle")["PIDs"] != "2" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _row(lamina, "idle")["PIDs"] == "2"
    # No limit: the host's memory, as dockerd caps it (/proc/meminfo's MemTotal).
    total_kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    limit = _row(lamina, "idle")["MemUsage"].split(" / ")[1]
    assert limit == f"{total_kib / 1024 / 1024:.4g}GiB"

    # Without names: the running ones, newest first; -a adds the stopped ones, all zeros.
    lamina.run("create", "--name", "made", "busybox", "true")
    names = lamina.out("stats", "--no-stream", "--format", "{{.Name}}").split()
    assert names == ["idle", "busy"]
    out = lamina.out(
        "stats", "--no-stream", "-a", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}"
    )
    assert out.splitlines()[0] == "made 0.00% 0B / 0B 0"
    header = lamina.out("stats", "--no-stream", "busy").splitlines()[0]
    assert header.split() == (
        [
            "CONTAINER",
            "ID",
            "NAME",
            "CPU",
            "%",
            "MEM",
            "USAGE",
            "/",
            "LIMIT",
            "MEM",
            "%",
            "NET",
            "I/O",
            "BLOCK",
            "I/O",
            "PIDS",
        ]
    )
    # docker: Error response from daemon: No such container: nosuch (exit 1)
    r = lamina.run("stats", "--no-stream", "nosuch", check=False)
    assert (r.returncode, r.stderr.strip()) == (1, "error: no such container: nosuch")


def test_stats_streams_until_interrupted(lamina: Lamina) -> None:
    lamina.run("run", "-d", "--name", "idle", "busybox", "sleep", "1000")
    proc = subprocess.Popen(
        [*LAMINA, "--root", str(lamina.root), "stats", "idle"],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        head = proc.stdout.read(len(b"\x1b[2J\x1b[HCONTAINER ID"))
        assert head == b"\x1b[2J\x1b[HCONTAINER ID"  # a frame: clear, home, the table
        assert proc.poll() is None  # and it goes on
    finally:
        proc.kill()
        proc.wait()


def test_cgroup_counters_parse(tmp_path: Path) -> None:
    # v1: blkio.throttle.io_service_bytes_recursive; v2: io.stat (kernel formats).
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:16 Read 1\n8:16 Write 2\nTotal 12291\n"
    )
    assert _block_io(v1) == (4097, 8194)
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "io.stat").write_text("8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n")
    assert _block_io(v2) == (100, 200)
    (v2 / "memory.stat").write_text("anon 4096\ninactive_file 123\nfile 7\n")
    assert _key_values(v2 / "memory.stat") == {"anon": 4096, "inactive_file": 123, "file": 7}
