"""The README's demo runs, on a tmpfs root, so it cannot rot."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.needs_root
@pytest.mark.needs_overlay
def test_demo_runs(shm_tmp: Path) -> None:
    env = dict(
        os.environ, LAMINA_ROOT=str(shm_tmp / "root"), LAMINA=str(REPO / ".venv" / "bin" / "lamina")
    )
    r = subprocess.run(
        [str(REPO / "scripts" / "demo.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "busybox" in out
    assert "merged: " in out
    assert "GraphDriver" in out or "MergedDir" in out
    # the merged tree was listed
    for name in ("bin", "etc", "usr"):
        assert f"\n{name}\n" in out
    assert "UpperDir: " in out and "/diff" in out
    # the container walk-through: init layer first, the whiteout, diff, the volume's data
    assert "-init/diff" in out
    assert "whiteout: character special file 0:0" in out
    for line in ("C /bin", "D /bin/vi", "C /etc", "C /etc/passwd", "A /hello.txt"):
        assert f"\n{line}\n" in out
    assert '"Mountpoint": ' in out and "/volumes/demo-data/_data" in out
    assert "\nkept\n" in out
    # and nothing stays mounted
    with open("/proc/self/mountinfo") as f:
        assert str(shm_tmp) not in f.read()
