"""``rmi`` as Docker 20.10's does it. Every expectation here was first observed with dockerd
20.10.24 (overlay2) running the same steps:

- ``rmi A nosuch B`` removes A and B, reports nosuch, exits 1;
- an image other images are built on is never deleted: by name it is only untagged, by id the
  delete is refused even with ``-f`` ("cannot be forced"); removing the last child later
  deletes the now untagged, childless parents too, each image followed by the layers it freed;
- a stopped container's image: ``rmi NAME`` and ``rmi ID`` refuse, ``rmi -f`` untags and
  deletes it (the container keeps its layers; ``rm`` of the container then frees them);
- a running container's image: ``rmi -f NAME`` only untags, ``rmi -f ID`` is refused.

Messages are Docker's after its ``Error response from daemon: conflict:`` prefix; lamina adds
the container's name after its short id.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from in_process import Cli as InProcess

pytestmark = [pytest.mark.needs_root]


class Cli(InProcess):
    def chain_ids(self, image: str) -> list[str]:
        return [
            la["ChainID"]
            for la in json.loads(self.ok("layers", "--no-trunc", "--format", "json", image))
        ]


@pytest.fixture
def cli(shm_tmp: Path, busybox_tar: Path, capfd: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    c = Cli(shm_tmp / "root", capfd, driver="vfs")
    c.tar = busybox_tar  # type: ignore[attr-defined]
    yield c
    _, out, _ = c("ps", "-aq")
    if out.split():
        c("rm", "-f", *out.split())


def _import(cli: Cli, name: str, *changes: str) -> str:
    args = [a for ch in changes for a in ("--change", ch)]
    return cli.ok("import", *args, str(cli.tar), name).strip()  # type: ignore[attr-defined]


def test_rmi_tries_every_name(cli: Cli) -> None:
    shared = _import(cli, "t10")
    cli.ok("tag", "t10", "t3b")
    other = _import(cli, "t3b-other", 'CMD ["/bin/sh"]')
    (layer,) = cli.chain_ids("t3b-other")

    code, out, err = cli("rmi", "t10", "nosuch", "t3b")
    assert code == 1
    assert out.splitlines() == [
        "Untagged: t10:latest",
        "Untagged: t3b:latest",
        f"Deleted: {shared}",
    ]
    assert err.splitlines() == ["error: no such image: nosuch"]

    code, out, err = cli("rmi", "nosuch", "t3b-other")
    assert code == 1
    assert out.splitlines() == [
        "Untagged: t3b-other:latest",
        f"Deleted: {other}",
        f"Deleted: {layer}",
    ]
    assert "no such image: nosuch" in err
    assert cli.ok("images", "-aq") == ""
    assert cli("verify")[0] == 0


def test_an_image_with_children_is_only_untagged(cli: Cli, shm_tmp: Path) -> None:
    base = _import(cli, "base")
    ctx = shm_tmp / "ctx"
    ctx.mkdir()
    (ctx / "a").write_text("a\n")
    (ctx / "b").write_text("b\n")
    (ctx / "Dockerfile").write_text("FROM base\nCOPY a /a\nCOPY b /b\n")
    child = cli.ok("build", "-q", "-t", "child", str(ctx)).strip()
    step = cli.ok("inspect", "-f", "{{.Parent}}", "child").strip()
    assert cli.ok("inspect", "-f", "{{.Parent}}", step).strip() == base
    base_layer, a_layer, b_layer = cli.chain_ids("child")

    for args in (("rmi", base), ("rmi", "-f", base), ("rmi", base[7:19])):
        code, out, err = cli(*args)
        assert (code, out) == (1, "")
        assert err.strip() == (
            f"error: unable to delete {base[7:19]} (cannot be forced) - image has dependent "
            "child images"
        )

    assert cli.ok("rmi", "base") == "Untagged: base:latest\n"
    assert cli.ok("images", "-q", "--no-trunc").split() == [child]
    assert sorted(cli.ok("images", "-aq", "--no-trunc").split()) == sorted([child, step, base])
    assert cli.ok("images", "-q", "--filter", "dangling=true") == ""
    assert "Deleted" not in cli.ok("image", "prune", "-f")
    assert sorted(cli.ok("images", "-aq", "--no-trunc").split()) == sorted([child, step, base])
    assert cli("verify")[0] == 0

    # The last child takes the untagged parent chain with it, each image then its layer.
    assert cli.ok("rmi", "child").splitlines() == [
        "Untagged: child:latest",
        f"Deleted: {child}",
        f"Deleted: {b_layer}",
        f"Deleted: {step}",
        f"Deleted: {a_layer}",
        f"Deleted: {base}",
        f"Deleted: {base_layer}",
    ]
    assert cli.ok("images", "-aq") == ""
    assert cli("verify")[0] == 0


def test_rmi_of_a_stopped_containers_image(cli: Cli) -> None:
    image = _import(cli, "t9", 'CMD ["/bin/sh"]')
    cid = cli.ok("create", "--name", "c1", "t9", "true").strip()

    code, out, err = cli("rmi", "t9")
    assert (code, out) == (1, "")
    assert err.strip() == (
        f'error: unable to remove repository reference "t9" (must force) - container '
        f"{cid[:12]} (c1) is using its referenced image {image[7:19]}"
    )
    for ref in (image, image[7:19]):
        code, out, err = cli("rmi", ref)
        assert (code, out) == (1, "")
        assert err.strip() == (
            f"error: unable to delete {image[7:19]} (must be forced) - image is being used by "
            f"stopped container {cid[:12]} (c1)"
        )

    assert cli.ok("rmi", "-f", "t9").splitlines() == ["Untagged: t9:latest", f"Deleted: {image}"]
    assert cli.ok("images", "-aq") == ""
    assert cli.ok("ps", "-a", "--format", "{{.Names}} {{.Image}}") == f"c1 {image[7:19]}\n"
    assert cli.ok("ps", "-a", "--no-trunc", "--format", "{{.Image}}") == f"{image}\n"
    assert cli.ok("inspect", "-f", "{{.Image}} {{.Config.Image}}", "c1") == f"{image} t9\n"
    assert cli("verify")[0] == 0
    assert json.loads(cli.ok("info", "--format", "json"))["Layers"] == 1  # kept for c1
    if shutil.which("runc"):
        assert cli.ok("start", "-a", "c1") == ""  # it still runs on its layers

    # Removing the container frees the layers nobody else holds now, as Docker's rm does.
    cli.ok("rm", "c1")
    assert json.loads(cli.ok("info", "--format", "json"))["Layers"] == 0
    assert list((cli.root / "blobs" / "sha256").iterdir()) == []
    assert [p.name for p in (cli.root / "vfs").iterdir() if len(p.name) == 64] == []
    assert cli("verify")[0] == 0


def test_rmi_by_id_of_an_image_with_two_names_and_a_stopped_container(cli: Cli) -> None:
    image = _import(cli, "t8")
    cli.ok("tag", "t8", "t8b")
    cid = cli.ok("create", "--name", "c2", "t8", "true").strip()
    assert cli.ok("rmi", "t8") == "Untagged: t8:latest\n"
    code, _, err = cli("rmi", image)
    assert code == 1
    assert err.strip() == (
        f"error: unable to delete {image[7:19]} (must be forced) - image is being used by "
        f"stopped container {cid[:12]} (c2)"
    )
    assert cli.ok("rmi", "-f", image).splitlines() == ["Untagged: t8b:latest", f"Deleted: {image}"]
    cli.ok("rm", "c2")
    assert cli("verify")[0] == 0


@pytest.mark.needs_peer("runc")
def test_rmi_force_of_a_running_containers_image_only_untags(cli: Cli) -> None:
    image = _import(cli, "t9r")
    cid = cli.ok("run", "-d", "--name", "r1", "t9r", "sleep", "300").strip()
    code, _, err = cli("rmi", "-f", image)
    assert code == 1
    assert err.strip() == (
        f"error: unable to delete {image[7:19]} (cannot be forced) - image is being used by "
        f"running container {cid[:12]} (r1)"
    )
    assert cli.ok("rmi", "-f", "t9r") == "Untagged: t9r:latest\n"
    assert cli.ok("images", "-aq", "--no-trunc").split() == [image]
    assert cli.ok("ps", "--format", "{{.Names}} {{.Image}}") == f"r1 {image[7:19]}\n"
    cli.ok("rm", "-f", "r1")
    assert cli.ok("images", "-aq", "--no-trunc").split() == [image]


def test_a_committed_image_is_a_child_of_the_containers_image(cli: Cli) -> None:
    # docker 20.10: commit records the container's image as Parent; rmi of that image then
    # only untags it, and rmi of the committed image takes the untagged parent along.
    base = _import(cli, "base3")
    cid = cli.ok("create", "base3", "true").strip()
    committed = cli.ok("commit", cid, "cimg3").strip()
    assert cli.ok("inspect", "-f", "{{.Parent}}", "cimg3").strip() == base
    cli.ok("rm", cid)
    assert cli.ok("rmi", "base3") == "Untagged: base3:latest\n"
    assert base in cli.ok("images", "-aq", "--no-trunc").split()
    out = cli.ok("rmi", "cimg3").splitlines()
    assert out[:2] == ["Untagged: cimg3:latest", f"Deleted: {committed}"]
    assert f"Deleted: {base}" in out
    assert cli.ok("images", "-aq") == ""
    assert cli("verify")[0] == 0


def test_rmi_no_prune_keeps_the_untagged_parents(cli: Cli, shm_tmp: Path) -> None:
    """``rmi --no-prune``: the image and the layer it alone held go, its untagged parents
    stay (the nearest now dangling), as docker 20.10's::

        Untagged: np:latest
        Deleted: sha256:<image>
        Deleted: sha256:<its top layer>
    """
    _import(cli, "base")
    ctx = shm_tmp / "ctx"
    ctx.mkdir()
    (ctx / "a").write_text("a\n")
    (ctx / "b").write_text("b\n")
    (ctx / "Dockerfile").write_text("FROM base\nCOPY a /a\nCOPY b /b\n")
    child = cli.ok("build", "-q", "-t", "np", str(ctx)).strip()
    step = cli.ok("inspect", "-f", "{{.Parent}}", "np").strip()
    top = cli.chain_ids("np")[-1]
    assert cli.ok("rmi", "--no-prune", "np").splitlines() == [
        "Untagged: np:latest",
        f"Deleted: {child}",
        f"Deleted: {top}",
    ]
    assert cli.ok("images", "-q", "--no-trunc", "--filter", "dangling=true").split() == [step]
    assert cli("verify")[0] == 0
