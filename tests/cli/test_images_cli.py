"""The foundation's verbs as a user types them, run in-process through ``main([...])``."""

from __future__ import annotations

import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from lamina.cli.main import main

pytestmark = [pytest.mark.needs_root]


def run(
    capsys: pytest.CaptureFixture[str], root: Path, *args: str, driver: str | None = None
) -> tuple[int, str, str]:
    argv = ["--root", str(root)]
    if driver:
        argv += ["--storage-driver", driver]
    code = main([*argv, *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(params=["overlay2", "vfs"])
def driver(request: pytest.FixtureRequest) -> str:
    if request.param == "overlay2":
        request.applymarker(pytest.mark.needs_overlay)
    return str(request.param)


def test_import_images_layers_inspect_mount(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path, busybox_tar: Path, driver: str
) -> None:
    root = shm_tmp / "root"
    code, out, err = run(
        capsys,
        root,
        "import",
        "--change",
        'CMD ["/bin/sh"]',
        str(busybox_tar),
        "busybox",
        driver=driver,
    )
    assert code == 0, err
    image_id = out.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71

    code, out, _ = run(capsys, root, "images")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert row.split()[:3] == ["busybox", "latest", image_id[7:19]]

    code, out, _ = run(capsys, root, "layers", "busybox", "--format", "json")
    (layer,) = json.loads(out)
    assert layer["Entries"] > 250  # busybox + its applet symlinks

    code, out, _ = run(capsys, root, "inspect", "busybox")
    (info,) = json.loads(out)
    assert info["Id"] == image_id
    assert info["RepoTags"] == ["busybox:latest"]
    assert info["Config"]["Cmd"] == ["/bin/sh"]
    assert info["RootFS"]["Layers"] == [layer["DiffID"]]
    assert info["GraphDriver"]["Name"] == driver
    for key, value in info["GraphDriver"]["Data"].items():
        for p in value.split(":"):
            assert Path(p).exists(), (key, p)

    code, out, err = run(capsys, root, "image", "mount", "busybox")
    assert code == 0, err
    merged = Path(out.strip())
    try:
        assert (merged / "bin" / "busybox").is_file()
        assert os.readlink(merged / "bin" / "sh") == "/bin/busybox"
        assert (merged / "etc" / "passwd").read_text().startswith("root:x:0:0")
    finally:
        assert run(capsys, root, "image", "umount", "busybox")[0] == 0

    code, out, _ = run(capsys, root, "inspect", "-f", "{{json .RootFS.Layers}}", "busybox")
    assert json.loads(out) == [layer["DiffID"]]

    code, out, err = run(capsys, root, "verify")
    assert code == 0, out + err

    code, out, _ = run(capsys, root, "rmi", "busybox")
    assert code == 0
    assert out.splitlines() == [
        "Untagged: busybox:latest",
        f"Deleted: {image_id}",
        f"Deleted: {layer['ChainID']}",
    ]
    assert run(capsys, root, "images", "-q")[1] == ""
    # Nothing is left behind: no blob, no layer dir, no record.
    assert list((root / "blobs" / "sha256").iterdir()) == []
    home = root / ("overlay" if driver == "overlay2" else "vfs")
    assert [p.name for p in home.iterdir() if len(p.name) == 64] == []


def test_verify_names_a_flipped_blob(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path, busybox_tar: Path
) -> None:
    root = shm_tmp / "root"
    assert run(capsys, root, "import", str(busybox_tar), "busybox", driver="vfs")[0] == 0
    _, out, _ = run(capsys, root, "layers", "busybox", "--format", "json", "--no-trunc")
    blob = json.loads(out)[0]["Digest"]
    path = root / "blobs" / "sha256" / blob.removeprefix("sha256:")
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    code, out, _ = run(capsys, root, "verify")
    assert code == 1
    assert blob in out
    # Nothing else is affected: the image is still listed and inspectable.
    assert run(capsys, root, "inspect", "busybox")[0] == 0


def _evil_tar(path: Path) -> None:
    with tarfile.open(path, "w") as tf:
        link = tarfile.TarInfo("evil")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc"
        tf.addfile(link)
        f = tarfile.TarInfo("evil/passwd")
        f.size = 4
        import io

        tf.addfile(f, io.BytesIO(b"pwnd"))


def test_refused_import_leaves_nothing_behind(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path
) -> None:
    root = shm_tmp / "root"
    evil = shm_tmp / "evil.tar"
    _evil_tar(evil)
    before = Path("/etc/passwd").read_bytes()
    code, _, err = run(capsys, root, "import", str(evil), "evil", driver="vfs")
    assert code == 1
    assert "evil/passwd" in err
    assert Path("/etc/passwd").read_bytes() == before
    assert list((root / "blobs" / "sha256").iterdir()) == []
    assert [p.name for p in (root / "vfs").iterdir() if p.name not in ("l", "empty")] == []
    assert run(capsys, root, "images", "-q")[1] == ""
    assert run(capsys, root, "verify")[0] == 0


def test_unknown_image_is_a_clear_error(capsys: pytest.CaptureFixture[str], shm_tmp: Path) -> None:
    code, _, err = run(capsys, shm_tmp / "root", "inspect", "nosuchimage", driver="vfs")
    assert code == 1
    assert "error: no such object: nosuchimage" in err  # as docker inspect words it


def test_bad_template_is_usage_error(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path, busybox_tar: Path
) -> None:
    root = shm_tmp / "root"
    run(capsys, root, "import", str(busybox_tar), "bb", driver="vfs")
    code, _, err = run(capsys, root, "inspect", "-f", "{{range .X}}", "bb")
    assert code == 2
    assert "template" in err


def test_inspect_templates_as_docker(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path, busybox_tar: Path
) -> None:
    # The outputs are docker 20.10's `docker inspect -f` for the same import (bar the id).
    root = shm_tmp / "root"
    changes = ["--change", 'CMD ["/bin/sh"]', "--change", "LABEL a=1 b=two"]
    assert run(capsys, root, "import", *changes, str(busybox_tar), "bb", driver="vfs")[0] == 0
    fmt = "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"
    assert run(capsys, root, "inspect", "-f", fmt, "bb")[1] == "a=1;b=two;\n"
    fmt = '{{printf "%.7s|%-6s|%q" .Id .Os (index .Config.Cmd 0)}}'
    assert run(capsys, root, "inspect", "-f", fmt, "bb")[1] == 'sha256:|linux |"/bin/sh"\n'
    fmt = '{{if eq (len .RootFS.Layers) 1}}single{{else}}many{{end}} {{eq .Os "windows" "linux"}}'
    assert run(capsys, root, "inspect", "-f", fmt, "bb")[1] == "single true\n"
    code, _, err = run(capsys, root, "inspect", "-f", "{{eq .Os 1}}", "bb")
    assert code == 2
    assert 'executing "" at <eq .Os 1>: error calling eq: incompatible types' in err


def test_import_config_and_history_as_docker(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path, busybox_tar: Path
) -> None:
    # docker 20.10 `docker import --change 'CMD ["/bin/sh"]' bb.tar` (and podman's import):
    # Config.Env null -- a container gets the default PATH when it runs -- and one history
    # entry with no CreatedBy and the comment "Imported from -" (-m replaces it).
    root = shm_tmp / "root"
    assert run(capsys, root, "import", "-c", 'CMD ["/bin/sh"]', str(busybox_tar), "bb")[0] == 0
    fmt = "{{json .Config.Env}} {{json .Config.Cmd}} {{.Comment}}"
    assert run(capsys, root, "inspect", "-f", fmt, "bb")[1] == 'null ["/bin/sh"] Imported from -\n'
    fmt = "{{.CreatedBy}}|{{.Comment}}"
    assert run(capsys, root, "history", "--format", fmt, "bb")[1] == "|Imported from -\n"
    # docker: ENV PATH=$PATH:/opt/bin expands against an empty config -> ["PATH=:/opt/bin"]
    changes = ["-m", "hello", "-c", "ENV PATH=$PATH:/opt/bin"]
    assert run(capsys, root, "import", *changes, str(busybox_tar), "bb2")[0] == 0
    fmt = "{{json .Config.Env}} {{.Comment}}"
    assert run(capsys, root, "inspect", "-f", fmt, "bb2")[1] == '["PATH=:/opt/bin"] hello\n'
