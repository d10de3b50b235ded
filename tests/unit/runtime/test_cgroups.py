"""The OCI ``linux.resources`` lamina writes, the limits a cgroup holds (to put back after a
refused update), and reading the OOM-kill counters."""

from __future__ import annotations

from pathlib import Path

from lamina.runtime.cgroups import Resources, limits_in, linux_resources, oom_kills


def test_only_what_is_set_reaches_the_spec() -> None:
    assert linux_resources(Resources()) == {}
    full = Resources(
        memory=64 << 20,
        memory_swap=128 << 20,
        memory_reservation=32 << 20,
        cpu_shares=512,
        cpu_quota=150000,
        cpu_period=100000,
        pids_limit=100,
    )
    assert linux_resources(full) == {
        "memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20},
        "cpu": {"shares": 512, "quota": 150000, "period": 100000},
        "pids": {"limit": 100},
    }
    assert linux_resources(Resources(pids_limit=5)) == {"pids": {"limit": 5}}


def test_oom_kills_reads_v1_and_v2_counters(tmp_path: Path) -> None:
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert (oom_kills(v1), oom_kills(v2), oom_kills(tmp_path / "gone")) == (2, 1, 0)


def test_limits_in_v1_files_as_runc_update_takes_them_back(tmp_path: Path) -> None:
    # A container's v1 cgroup files (memory and memory+swap unlimited, cpu.shares 1024, no
    # quota, pids "max"): runc update writes -1 as "none", where 0 would leave a file alone.
    memory, cpu, pids = (tmp_path / n for n in ("memory", "cpu", "pids"))
    for d in (memory, cpu, pids):
        d.mkdir()
    (memory / "memory.limit_in_bytes").write_text("67108864\n")
    (memory / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    (memory / "memory.soft_limit_in_bytes").write_text("9223372036854771712\n")
    (cpu / "cpu.shares").write_text("1024\n")
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    (pids / "pids.max").write_text("max\n")
    assert limits_in(memory=memory, cpu=cpu, pids=pids) == {
        "memory": {"limit": 67108864, "swap": -1, "reservation": -1},
        "cpu": {"shares": 1024, "quota": -1, "period": 100000},
        "pids": {"limit": -1},
    }
    (memory / "memory.memsw.limit_in_bytes").unlink()  # no swap accounting
    assert limits_in(memory=memory, cpu=None, pids=None) == {
        "memory": {"limit": 67108864, "reservation": -1}
    }
    assert limits_in(memory=None, cpu=None, pids=None) == {}


def test_limits_in_v2_files_are_put_back_as_they_read(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    files = {
        "memory.max": "67108864",
        "memory.swap.max": "max",
        "memory.low": "0",
        "cpu.max": "150000 100000",
        "cpu.weight": "100",
        "pids.max": "50",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n")
    assert limits_in(memory=tmp_path, cpu=tmp_path, pids=tmp_path) == {"unified": files}


def test_limits_in_take_the_cpusets_back(tmp_path: Path) -> None:
    # What an update of --cpuset-cpus replaces: cpuset.cpus and cpuset.mems, as runc's
    # cpu.cpus and cpu.mems (v1), or the v2 files as they read.
    cpuset = tmp_path / "cpuset"
    cpuset.mkdir()
    (cpuset / "cpuset.cpus").write_text("0-1\n")
    (cpuset / "cpuset.mems").write_text("0\n")
    assert limits_in(memory=None, cpu=None, pids=None, cpuset=cpuset) == {
        "cpu": {"cpus": "0-1", "mems": "0"}
    }
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpuset\n")
    (v2 / "cpuset.cpus").write_text("1\n")
    (v2 / "cpuset.mems").write_text("\n")
    assert limits_in(memory=None, cpu=None, pids=None, cpuset=v2) == {
        "unified": {"cpuset.cpus": "1", "cpuset.mems": ""}
    }
    assert linux_resources(Resources(cpuset_cpus="0-1", cpuset_mems="0")) == {
        "cpu": {"cpus": "0-1", "mems": "0"}
    }
