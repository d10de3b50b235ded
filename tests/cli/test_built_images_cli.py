"""Images a build leaves behind behave as Docker's: intermediate steps are hidden from
``images`` (shown with ``-a``), ``history`` names each step's image, ``inspect`` gives the
Parent, and ``rmi`` of the result removes the untagged steps it was built from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lamina.cli.main import main

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_peer("runc")]


def run(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(root), "--storage-driver", "vfs", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_build_steps_as_docker_shows_them(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path
) -> None:
    root = shm_tmp / "root"
    tar = shm_tmp / "bb.tar"
    subprocess.run([str(REPO / "scripts" / "make-busybox-rootfs"), str(tar)], check=True)
    assert run(capsys, root, "import", str(tar), "busybox")[0] == 0
    ctx = shm_tmp / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo a > /a\nRUN echo b > /b\nENV X=1\n")
    code, out, err = run(capsys, root, "build", "-q", "-t", "app", str(ctx))
    assert code == 0, err
    app = out.strip()

    _, out, _ = run(capsys, root, "images", "--format", "{{.Repository}}")
    assert sorted(out.split()) == ["app", "busybox"]
    _, out, _ = run(capsys, root, "images", "-a", "--format", "{{.Repository}}")
    assert sorted(out.split()) == ["<none>", "<none>", "app", "busybox"]

    _, out, _ = run(capsys, root, "history", "--no-trunc", "--format", "json", "app")
    ids = [json.loads(line)["ID"] for line in out.splitlines()]
    _, busybox, _ = run(capsys, root, "images", "-q", "--no-trunc", "busybox")
    assert ids[0] == app and ids[-1] == busybox.strip()
    assert "<missing>" not in ids
    _, parent, _ = run(capsys, root, "inspect", "-f", "{{.Parent}}", "app")
    assert parent.strip() == ids[1]

    _, out, _ = run(capsys, root, "layers", "--no-trunc", "--format", "json", "app")
    _, a_layer, b_layer = [la["ChainID"] for la in json.loads(out)]
    code, out, _ = run(capsys, root, "rmi", "app")
    assert code == 0
    # As dockerd 20.10 prints it: each image, then the layer it alone held (ENV made none).
    deleted = [line.split()[1] for line in out.splitlines() if line.startswith("Deleted:")]
    assert deleted == [ids[0], ids[1], b_layer, ids[2], a_layer]
    _, out, _ = run(capsys, root, "images", "-a", "--format", "{{.Repository}}")
    assert out.split() == ["busybox"]
    assert run(capsys, root, "verify")[0] == 0
