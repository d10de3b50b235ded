"""The forensic commands as a user types them, on archives and layouts read in place."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_forensics_kit as kit

from lamina.cli.main import main
from lamina.transports import docker_archive, oci_layout


@pytest.fixture(scope="module")
def media() -> Iterator[dict[str, str]]:
    d = Path(tempfile.mkdtemp(prefix="lamina-forensics-cli-", dir="/dev/shm"))
    img = kit.build_image()
    docker_archive.write(d / "img.docker.tar", img, "docker.io/library/forensics:test")
    oci_layout.write(d / "layout", img, "test")
    yield {
        "root": str(d / "root"),
        "docker": f"docker-archive:{d / 'img.docker.tar'}",
        "oci": f"oci:{d / 'layout'}:test",
    }
    shutil.rmtree(d, ignore_errors=True)


def _run(media: dict[str, str], *args: str) -> int:
    return main(["--root", media["root"], *args])


@pytest.mark.parametrize("which", ["docker", "oci"])
def test_commands_read_transports_in_place(
    media: dict[str, str], which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = media[which]
    assert _run(media, "layers", spec, "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["CreatedBy"] for r in rows] == [s for s, _ in kit.STEPS]
    assert rows[kit.LAYER_OF["secret-deleted"]]["Deleted"] == 1
    assert _run(media, "trace", spec, "/root/secret.env") == 0
    out = capsys.readouterr().out
    assert "layer 2: added" in out and "layer 3: deleted by whiteout of /root/secret.env" in out
    assert _run(media, "tree", spec, "/opt", "--layer", "6") == 0
    out = capsys.readouterr().out
    assert "O " in out and "new.txt" in out
    assert _run(media, "waste", spec, "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["IdenticalBytes"] == kit.WASTE_IDENTICAL
    assert _run(media, "secrets", spec, "--format", "json", "--fail-on", "high") == 1
    rules = {f["Rule"] for f in json.loads(capsys.readouterr().out)}
    assert {"private-key", "aws-secret-access-key", "build-arg-secret", "setuid"} <= rules
    assert _run(media, "image", "diff", spec, "--layer", "5", "--unified") == 0
    out = capsys.readouterr().out
    assert out.startswith("C /etc/app.conf") and "+mode=debug" in out
    assert _run(media, "images", "--format", "json") == 0
    assert capsys.readouterr().out.strip() == ""  # nothing was loaded


def test_cat_and_extract_from_an_archive(
    media: dict[str, str], tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert _run(media, "cat", media["docker"], "/root/secret.env", "--layer", "2") == 0
    assert capsysbinary.readouterr().out == kit.SECRET_ENV
    dest = tmp_path / "out"
    assert _run(media, "extract", media["oci"], "/root", "-o", str(dest), "--layer", "4") == 0
    assert (dest / "root/.ssh/id_ed25519").read_bytes() == kit.PRIVATE_KEY
    assert not (dest / "root/secret.env").exists()  # deleted in layer 3


def test_report_from_an_archive(media: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert _run(media, "report", media["docker"], "-o", str(out)) == 0
    html = out.read_text()
    assert html.count('class="layer-bar"') == len(kit.STEPS)
    assert "source docker-archive" in html


def test_bad_usage_exits_2(media: dict[str, str]) -> None:
    assert _run(media, "secrets", media["docker"], "--fail-on", "severe") == 2
    assert _run(media, "image", "diff", media["docker"]) == 2  # needs B or --layer
    assert _run(media, "tree", media["docker"], "--layer", "99") == 2
