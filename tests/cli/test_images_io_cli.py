"""Issue 3 verbs as a user types them: load every fixture the peers wrote, history, images
filters and templates, save/load round trips, image export → import, prune, system df."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from lamina.cli.main import main

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
BUSYBOX = FIXTURES / "busybox"
# The image id every tool computed for the busybox fixture (docker/podman inspect JSON there).
BUSYBOX_ID = json.loads((BUSYBOX / "busybox.docker-image-inspect.json").read_text())[0]["Id"]
BUSYBOX_SIZE = json.loads((BUSYBOX / "busybox.docker-image-inspect.json").read_text())[0]["Size"]

pytestmark = [pytest.mark.needs_root]


def run(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--root", str(root), "--storage-driver", "vfs", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("fixture", "loaded"),
    [
        ("busybox.docker-save.tar", "Loaded image: localhost/busybox:latest"),
        ("busybox.docker-archive.skopeo.tar", "Loaded image: localhost/busybox:latest"),
        ("busybox.docker-archive.podman.tar", "Loaded image: localhost/busybox:latest"),
        ("busybox.oci-archive.podman.tar", "Loaded image: localhost/busybox:latest"),
        ("busybox.oci-layout.tar", f"Loaded image ID: {BUSYBOX_ID}"),
        ("busybox.oci-layout-zstd.tar", f"Loaded image ID: {BUSYBOX_ID}"),
    ],
)
def test_load_fixture_gives_the_peers_image_id(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path, fixture: str, loaded: str
) -> None:
    root = shm_tmp / "root"
    code, out, err = run(capsys, root, "load", "-q", "-i", str(BUSYBOX / fixture))
    assert code == 0, err
    assert out.strip() == loaded
    code, out, _ = run(capsys, root, "images", "-q", "--no-trunc")
    assert out.split() == [BUSYBOX_ID]
    code, out, _ = run(capsys, root, "inspect", "-f", "{{.Size}}", BUSYBOX_ID)
    assert int(out) == BUSYBOX_SIZE  # Docker's size (content bytes + symlink targets)


def test_load_from_stdin_and_umoci_layout(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = shm_tmp / "root"
    # umoci writes layers without the tar end-of-archive blocks: still a complete layer.
    code, out, err = run(
        capsys, root, "load", "-q", "-i", str(BUSYBOX / "busybox.oci-layout.umoci.tar")
    )
    assert code == 0, err
    assert out.startswith("Loaded image ID: sha256:")
    import io
    import sys

    data = (BUSYBOX / "busybox.docker-save.tar").read_bytes()
    fake = io.TextIOWrapper(io.BytesIO(data))
    monkeypatch.setattr(sys, "stdin", fake)
    code, out, err = run(capsys, root, "load", "-q")
    assert code == 0, err
    assert out.strip() == "Loaded image: localhost/busybox:latest"


def _gzipped_member_bomb(size: int) -> bytes:
    """A gzipped tar of one ``size``-byte member of zeros: ~1,000 times smaller than it inflates."""
    head = tarfile.TarInfo("zeros")
    head.size = size
    return gzip.compress(head.tobuf() + bytes(size) + bytes(1024), compresslevel=1)


def test_load_bounds_an_inflated_archive(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Docker 20.10 has no bound: `docker load -i` of a 4.7 MB gzip whose member is 1 GiB of
    # zeros filled its tmp dir with 997 MB, then printed "open /var/lib/docker/tmp/
    # docker-import-.../repositories: no such file or directory" (exit 1). lamina inflates a
    # compressed archive no further than every other stream it inflates.
    root = shm_tmp / "root"
    bomb = shm_tmp / "bomb.tar.gz"
    bomb.write_bytes(_gzipped_member_bomb(64 << 20))
    monkeypatch.setenv("LAMINA_MAX_LAYER_BYTES", str(8 << 20))
    code, _, err = run(capsys, root, "load", "-i", str(bomb))
    assert code == 1, err
    assert "error: the gzip-compressed archive, inflated, exceeds the max_uncompressed_bytes" in err
    assert "hint: LAMINA_MAX_LAYER_BYTES sets the limit" in err
    assert os.listdir(root / "tmp") == []


def test_a_refused_load_names_the_user_s_input(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compressed archive or stdin is read from lamina's copy in <root>/tmp; its errors
    named that copy ("/var/lib/lamina/tmp/load-1200-8eb1...: not a tar archive")."""
    import gzip
    import io

    root = shm_tmp / "root"
    bad = shm_tmp / "bad.tar.gz"
    bad.write_bytes(gzip.compress(b"garbage\n"))
    code, _, err = run(capsys, root, "load", "-i", str(bad))
    assert (code, err) == (1, f"error: {bad}: not a tar archive (truncated header)\n")
    stdin = io.TextIOWrapper(io.BytesIO(b"garbage\n"))
    monkeypatch.setattr("sys.stdin", stdin)
    code, _, err = run(capsys, root, "load")
    assert (code, err) == (1, "error: the archive on stdin: not a tar archive (truncated header)\n")


def test_load_names_a_full_disk(capsys: pytest.CaptureFixture[str], shm_tmp: Path) -> None:
    # The store's filesystem fills up before the limit: an error naming the dir (exit 1), not
    # an internal error (exit 70).
    root = shm_tmp / "root"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(root)], check=True)
    bomb = shm_tmp / "bomb.tar.gz"
    bomb.write_bytes(_gzipped_member_bomb(64 << 20))
    code, _, err = run(capsys, root, "load", "-i", str(bomb))
    assert code == 1, err
    assert f"error: cannot copy the archive into {root}/tmp: No space left on device" in err
    assert os.listdir(root / "tmp") == []


def test_history_matches_docker_and_podman(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path
) -> None:
    root = shm_tmp / "root"
    assert (
        run(
            capsys,
            root,
            "load",
            "-q",
            "-i",
            str(FIXTURES / "multistage" / "multistage.oci-layout.tar"),
        )[0]
        == 0
    )
    _, out, _ = run(capsys, root, "images", "-q", "--no-trunc")
    image_id = out.strip()
    code, out, _ = run(capsys, root, "history", "--no-trunc", "--format", "json", image_id)
    rows = [json.loads(line) for line in out.splitlines()]
    podman = json.loads((FIXTURES / "multistage" / "multistage.podman-history.json").read_text())
    assert [r["CreatedBy"] for r in rows] == [p["CreatedBy"] for p in podman]
    # Docker counts layer sizes as content bytes (podman's "size" is tar bytes): 0B for the
    # metadata steps, and the COPY layer's content below.
    assert [r["Size"] for r in rows][:2] == ["0B", "0B"]
    assert rows[0]["ID"] == image_id
    assert [r["ID"] for r in rows[1:]] == ["<missing>", "<missing>"]
    _, out, _ = run(capsys, root, "history", image_id)
    lines = out.splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert lines[1].startswith(image_id[7:19])
    assert "…" in lines[3]  # the COPY line is cut to 45 columns as docker does
    _code, out, _ = run(capsys, root, "history", "-q", image_id)
    assert out.split() == [image_id[7:19], "<missing>", "<missing>"]


def test_images_filters_and_templates(capsys: pytest.CaptureFixture[str], shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    run(capsys, root, "load", "-q", "-i", str(BUSYBOX / "busybox.docker-save.tar"))
    run(
        capsys, root, "load", "-q", "-i", str(FIXTURES / "multistage" / "multistage.oci-layout.tar")
    )
    _, out, _ = run(
        capsys, root, "images", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}}"
    )
    assert out.split() == ["<none>:<none>"]
    _, out, _ = run(
        capsys, root, "images", "--filter", "reference=localhost/*", "--format", "{{.Repository}}"
    )
    assert out.split() == ["localhost/busybox"]
    _, out, _ = run(capsys, root, "images", "busybox", "--format", "{{.ID}}")
    assert out.split() == [BUSYBOX_ID[7:19]]
    _, out, _ = run(capsys, root, "images", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["Repository"] for r in rows} == {"localhost/busybox", "<none>"}
    assert list(rows[0]) == sorted(rows[0])
    _, out, _ = run(capsys, root, "images", "--format", "table {{.Repository}}\t{{.Size}}")
    assert out.splitlines()[0].split() == ["REPOSITORY", "SIZE"]
    # docker 20.10: "Invalid filter 'bogus'" / "Invalid filter 'dangling=[maybe]'", exit 1
    code, _, err = run(capsys, root, "images", "--filter", "bogus=1")
    assert code == 1 and "error: Invalid filter 'bogus'" in err
    code, _, err = run(capsys, root, "images", "--filter", "dangling=maybe")
    assert code == 1 and "error: Invalid filter 'dangling=[maybe]'" in err
    code, _, err = run(capsys, root, "volume", "ls", "--filter", "bogus=1")
    assert code == 1 and "error: Invalid filter 'bogus'" in err


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive", "oci"])
def test_save_load_round_trip_keeps_digests(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path, fmt: str
) -> None:
    root, other = shm_tmp / "a", shm_tmp / "b"
    run(capsys, root, "load", "-q", "-i", str(BUSYBOX / "busybox.oci-archive.podman.tar"))
    _, before, _ = run(capsys, root, "inspect", "-f", "{{.Id}} {{json .RootFS.Layers}}", "busybox")
    out_path = shm_tmp / ("saved" if fmt == "oci" else "saved.tar")
    code, _, err = run(capsys, root, "save", "--format", fmt, "-o", str(out_path), "busybox")
    assert code == 0, err
    code, out, err = run(capsys, other, "load", "-q", "-i", str(out_path))
    assert code == 0, err
    assert "localhost/busybox:latest" in out
    _, after, _ = run(capsys, other, "inspect", "-f", "{{.Id}} {{json .RootFS.Layers}}", "busybox")
    assert after == before
    assert run(capsys, other, "verify")[0] == 0


def test_copy_between_transports(capsys: pytest.CaptureFixture[str], shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    layout = shm_tmp / "layout"
    src = f"docker-archive:{BUSYBOX / 'busybox.docker-save.tar'}"
    code, _, err = run(capsys, root, "copy", "-q", src, f"oci:{layout}:v1")
    assert code == 0, err
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    code, out, err = run(capsys, root, "copy", f"oci:{layout}:v1", "lamina:copied:1")
    assert code == 0, err
    assert out.strip() == BUSYBOX_ID
    _, out, _ = run(capsys, root, "images", "--format", "{{.Repository}}:{{.Tag}}")
    assert out.split() == ["copied:1"]
    code, _, err = run(capsys, root, "copy", "nonsense", "lamina:x")
    assert code == 2 and "not a transport" in err


def test_image_export_import_round_trip(capsys: pytest.CaptureFixture[str], shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    run(capsys, root, "load", "-q", "-i", str(BUSYBOX / "busybox.docker-save.tar"))
    exported = shm_tmp / "rootfs.tar"
    code, _, err = run(capsys, root, "image", "export", "busybox", "-o", str(exported))
    assert code == 0, err
    with tarfile.open(BUSYBOX / "busybox.docker-save.tar") as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = outer.extractfile(manifest[0]["Layers"][0])
        assert layer is not None
        with tarfile.open(fileobj=layer) as tf:
            original = {m.name.strip("./").rstrip("/") for m in tf.getmembers()} - {""}
    with tarfile.open(exported) as tf:
        names = {m.name.rstrip("/") for m in tf.getmembers()}
    assert names == original
    code, out, err = run(capsys, root, "import", str(exported), "again")
    assert code == 0, err
    _, out, _ = run(capsys, root, "images", "--format", "{{.Repository}} {{.Size}}")
    sizes = dict(line.split() for line in out.splitlines())
    assert sizes["again"] == sizes["localhost/busybox"]


def test_prune_and_df(capsys: pytest.CaptureFixture[str], shm_tmp: Path) -> None:
    root = shm_tmp / "root"
    run(capsys, root, "load", "-q", "-i", str(BUSYBOX / "busybox.docker-save.tar"))
    run(
        capsys, root, "load", "-q", "-i", str(FIXTURES / "multistage" / "multistage.oci-layout.tar")
    )
    code, out, _ = run(capsys, root, "system", "df")
    assert out.splitlines()[1].split()[:3] == ["Images", "2", "0"]
    code, out, _ = run(capsys, root, "image", "prune", "-f")
    assert code == 0
    assert "Deleted Images:" in out and "Total reclaimed space" in out
    _, out, _ = run(capsys, root, "images", "-q")
    assert out.split() == [BUSYBOX_ID[7:19]]
    assert run(capsys, root, "verify")[0] == 0


def test_system_df_shows_docker_s_four_rows_and_sections(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path
) -> None:
    """``system df`` printed the Images row alone, and ``-v`` the summary then images only.
    Docker 20.10 (dockerd on this host, a busybox container that wrote 6 bytes to a volume
    and 300 kB to its rw layer) prints four rows, sizes by units.HumanSize (4 digits)::

        TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE
        Images          1         1         1.986MB   0B (0%)
        Containers      1         0         307.2kB   307.2kB (100%)
        Local Volumes   2         1         6B        0B (0%)
        Build Cache     0         0         0B        0B

    and with -v only the sections: images (first tag), containers (their rw size, 3 digits),
    volumes (name, links, size), the build cache's total."""
    root = shm_tmp / "root"
    run(capsys, root, "load", "-q", "-i", str(BUSYBOX / "busybox.docker-save.tar"))
    code, out, err = run(capsys, root, "create", "-v", "myvol:/data", "--name", "c1", "busybox")
    assert code == 0, err
    run(capsys, root, "volume", "create", "emptyvol")
    code, out, _ = run(capsys, root, "volume", "inspect", "-f", "{{.Mountpoint}}", "myvol")
    Path(out.strip(), "f").write_bytes(b"hello\n")
    (shm_tmp / "big").write_bytes(bytes(300 * 1024))
    assert run(capsys, root, "cp", str(shm_tmp / "big"), "c1:/big")[0] == 0
    code, out, _ = run(capsys, root, "system", "df")
    assert code == 0
    assert [line.split(None, 1)[1] if line.startswith("Images") else line for line in
            out.splitlines()][2:] == [
        "Containers      1         0         307.2kB   307.2kB (100%)",
        "Local Volumes   2         1         6B        0B (0%)",
        "Build Cache     0         0         0B        0B",
    ]  # fmt: skip
    assert out.splitlines()[1].split()[:3] == ["Images", "1", "1"]
    assert out.splitlines()[1].endswith("0B (0%)")
    code, out, _ = run(capsys, root, "system", "df", "--format", "{{json .}}")
    rows = [json.loads(line) for line in out.splitlines()]
    assert list(rows[1]) == ["Active", "Reclaimable", "Size", "TotalCount", "Type"]
    assert rows[2] == {"Active": "1", "Reclaimable": "0B (0%)", "Size": "6B", "TotalCount": "2",
                       "Type": "Local Volumes"}  # fmt: skip
    code, out, _ = run(capsys, root, "system", "df", "-v")
    lines = out.splitlines()
    assert lines[0] == "Images space usage:"
    assert lines[3].split()[:2] == ["localhost/busybox", "latest"] and lines[3].endswith(" 1")
    at = lines.index("Containers space usage:")
    assert lines[at + 2].split()[:3] == ["CONTAINER", "ID", "IMAGE"]
    assert " 307kB " in lines[at + 3] and lines[at + 3].endswith(" c1")
    at = lines.index("Local Volumes space usage:")
    assert [line.split() for line in lines[at + 2 : at + 5]] == [
        ["VOLUME", "NAME", "LINKS", "SIZE"],
        ["emptyvol", "0", "0B"],
        ["myvol", "1", "6B"],
    ]
    assert lines[-1] == "Build cache usage: 0B"
    assert run(capsys, root, "rm", "c1")[0] == 0


def test_history_and_inspect_read_archives_in_place(
    capsys: pytest.CaptureFixture[str], shm_tmp: Path
) -> None:
    root = shm_tmp / "root"
    archive = f"docker-archive:{BUSYBOX / 'busybox.docker-save.tar'}"
    code, out, err = run(capsys, root, "history", "--format", "json", "--no-trunc", archive)
    assert code == 0, err
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["ID"] == BUSYBOX_ID
    assert row["Size"] == "1.99MB"  # Docker's count, as for the loaded image
    code, out, err = run(capsys, root, "inspect", "-f", "{{.Id}} {{.Size}}", archive)
    assert code == 0, err
    assert out.split() == [BUSYBOX_ID, str(BUSYBOX_SIZE)]
    # Nothing was loaded.
    assert run(capsys, root, "images", "-q")[1] == ""
