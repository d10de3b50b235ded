"""``-v`` as Docker's Linux parser reads it (moby's volume/mounts/linux_parser.go): up to three
colon-separated fields, an absolute destination that is not "/", Docker's modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lamina.engine.container_config import (
    VolumeArg,
    merge_labels,
    merged_volumes,
    parse_volume,
    read_kv_file,
)
from lamina.errors import UsageError


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("/data", VolumeArg(source=None, destination="/data", mode="")),
        ("vol:/data", VolumeArg(source="vol", destination="/data", mode="")),
        ("/host:/data:ro", VolumeArg(source="/host", destination="/data", mode="ro")),
        ("vol:/data/./x/", VolumeArg(source="vol", destination="/data/x", mode="")),
        ("vol:/d:ro,z", VolumeArg(source="vol", destination="/d", mode="ro,z")),
    ],
)
def test_volume_specs(spec: str, parsed: VolumeArg) -> None:
    assert parse_volume(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("a:b:c:d", "invalid volume specification"),
        ("vol:relative", "absolute path"),
        (":/x", "empty source"),
        ("vol:/x:bogus", "invalid mode 'bogus'"),
        ("vol:/a/../b", "'..' in the destination"),
        ("/:/", "destination can't be '/'"),  # the host's / as the container's rootfs
        ("vol:/.", "destination can't be '/'"),
    ],
)
def test_bad_volume_specs(spec: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        parse_volume(spec)


def _vols(*specs: str) -> list[tuple[str | None, str]]:
    return [(v.source, v.destination) for v in merged_volumes([parse_volume(s) for s in specs])]


def test_volume_args_merge_as_dockers_daemon_registers_them() -> None:
    # docker 20.10: -v /x -v /x runs (one anonymous volume); -v nv:/x -v /x runs with nv;
    # two binds or named volumes at one destination: "Duplicate mount point: /x" (125).
    assert _vols("/x", "/x/") == [(None, "/x")]
    assert _vols("nv:/x", "/x", "/y") == [("nv", "/x"), (None, "/y")]
    assert _vols("/x", "nv:/x") == [("nv", "/x")]
    for dup in (("nv:/x", "nv2:/x"), ("/h:/x", "nv:/x"), ("/h:/x/", "/h:/x")):
        with pytest.raises(UsageError, match="Duplicate mount point: /x"):
            merged_volumes([parse_volume(s) for s in dup])


def test_env_and_label_files_read_as_dockers_cli(tmp_path: Path) -> None:
    f = tmp_path / "env.list"
    f.write_bytes(b"\xef\xbb\xbf# comment\n\n  A=1\r\nB=two words\nHOME\n")
    assert read_kv_file(str(f), what="env file") == ["A=1", "B=two words", "HOME"]
    for bad, words in (
        (b"=x\n", "no variable name"),
        (b"A B=1\n", "contains whitespaces"),
        (b"A=\xff\n", "invalid utf8 bytes at line 1"),
    ):
        f.write_bytes(bad)
        with pytest.raises(UsageError, match=words):
            read_kv_file(str(f), what="env file")
    with pytest.raises(UsageError, match="cannot read the label file"):
        read_kv_file(str(tmp_path / "missing"), what="label file")


def test_labels_override_the_images_by_key() -> None:
    assert merge_labels({"a": "1", "b": "2"}, ["b=3", "c", "d=x=y"]) == {
        "a": "1", "b": "3", "c": "", "d": "x=y"
    }  # fmt: skip
    with pytest.raises(UsageError, match="invalid label '=x'"):
        merge_labels(None, ["=x"])
