"""The Python API as an embedding programmer uses it (README's example)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

import lamina


def _rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in {"etc/hostname": b"api\n", "bin/tool": b"#!/bin/sh\n"}.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o755
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.needs_root
def test_engine_open_import_inspect_remove(shm_tmp: Path) -> None:
    with lamina.Engine.open(shm_tmp / "store", driver="vfs") as engine:
        rec = engine.images.import_rootfs(io.BytesIO(_rootfs_tar()), reference_="demo:1")
        info = engine.images.inspect("demo:1")
        assert info["Id"] == rec.id
        assert info["RepoTags"] == ["demo:1"]
        assert [r.repository for r in engine.images.list()] == ["demo"]
        (layer,) = engine.forensics.layers("demo:1")
        assert layer.entries == 2
        merged = engine.images.mount("demo:1")
        try:
            assert (merged / "etc" / "hostname").read_bytes() == b"api\n"
        finally:
            engine.images.unmount("demo:1")
        assert engine.system.verify() == []
        assert [verb for verb, _ in engine.images.remove("demo:1")] == [
            "Untagged",
            "Deleted",
            "Deleted",
        ]


def test_errors_are_lamina_errors(shm_tmp: Path) -> None:
    with lamina.Engine.open(shm_tmp / "store", driver="vfs") as engine:
        with pytest.raises(lamina.LaminaError) as info:
            engine.images.inspect("missing")
        assert info.value.exit_status == 1
