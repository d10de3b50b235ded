from __future__ import annotations

import datetime as dt
import json
import tarfile
from pathlib import Path
from typing import Any

import oci_schemas
import pytest

from lamina.digest import EMPTY_TAR_DIFF_ID, Digest
from lamina.errors import InvalidContentError, InvalidDigestError, InvalidManifestError
from lamina.oci.config import (
    History,
    ImageConfig,
    encode_json,
    format_time,
    history_for_layers,
    new_config,
)

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures"
BUSYBOX_ID = "sha256:146d341e87110c383739cb68e68dc5e27219bd777624224dd220d800551f4375"


def _docker_save_config() -> bytes:
    with tarfile.open(FIXTURES / "busybox" / "busybox.docker-save.tar") as tf:
        f = tf.extractfile(BUSYBOX_ID[7:] + ".json")
        assert f is not None
        return f.read()


def test_fixture_config_matches_docker_inspect() -> None:
    raw = _docker_save_config()
    cfg = ImageConfig.from_bytes(raw)
    inspect = json.loads((FIXTURES / "busybox" / "busybox.docker-image-inspect.json").read_text())[
        0
    ]
    assert cfg.digest == inspect["Id"]
    assert cfg.raw is raw
    assert cfg.architecture == inspect["Architecture"]
    assert cfg.os == inspect["Os"]
    assert cfg.created == inspect["Created"]
    assert list(cfg.diff_ids) == inspect["RootFS"]["Layers"]
    assert list(cfg.config.env) == inspect["Config"]["Env"]
    assert list(cfg.config.cmd or ()) == inspect["Config"]["Cmd"]
    assert dict(cfg.config.labels) == inspect["Config"]["Labels"]
    assert cfg.config.entrypoint is None
    assert cfg.history[0].created_by == "/bin/sh"
    assert cfg.json()["rootfs"]["type"] == "layers"
    oci_schemas.check("config", json.loads(raw))


def test_go_json_escapes() -> None:
    assert encode_json({"a": "x && y <z>"}) == b'{"a":"x \\u0026\\u0026 y \\u003cz\\u003e"}'
    assert encode_json(["\u2028\u2029"]) == b'["\\u2028\\u2029"]'
    assert encode_json(["\b\f\n\\b"]) == b'["\\u0008\\u000c\\n\\\\b"]'
    assert encode_json({"é": "ü"}) == '{"é":"ü"}'.encode()


def test_format_time() -> None:
    t = dt.datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=dt.UTC)
    assert format_time(t) == "2024-01-02T03:04:05.12Z"
    assert format_time(t.replace(microsecond=0)) == "2024-01-02T03:04:05Z"
    with pytest.raises(ValueError, match="aware"):
        format_time(dt.datetime(2024, 1, 1))


def test_new_config_bytes() -> None:
    diff = Digest("sha256:" + "1" * 64)
    raw = new_config(
        diff_ids=[diff],
        history=[
            History(created="2024-01-01T00:00:00Z", created_by="/bin/sh -c a && b"),
            History(created="2024-01-01T00:00:00Z", created_by="CMD", empty_layer=True),
        ],
        created=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        config={"Cmd": ["/bin/sh"], "Env": ["A=1"], "Labels": {"x": "<y>"}},
    )
    # Expected bytes written out by hand from the Go rules (sorted top level, struct order
    # inside, compact, HTML escapes) rather than produced by lamina.
    expected = (
        '{"architecture":"amd64","config":{"Env":["A=1"],"Cmd":["/bin/sh"],'
        '"Labels":{"x":"\\u003cy\\u003e"}},"created":"2024-01-01T00:00:00Z",'
        '"history":[{"created":"2024-01-01T00:00:00Z",'
        '"created_by":"/bin/sh -c a \\u0026\\u0026 b"},'
        '{"created":"2024-01-01T00:00:00Z","created_by":"CMD","empty_layer":true}],'
        '"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:' + "1" * 64 + '"]}}'
    ).encode()
    assert raw == expected
    cfg = ImageConfig.from_bytes(raw)
    assert cfg.diff_ids == (diff,)
    assert cfg.config.labels == {"x": "<y>"}
    oci_schemas.check("config", json.loads(raw))


def test_new_config_refuses_bad_history() -> None:
    with pytest.raises(InvalidManifestError, match="2 non-empty entries but rootfs has only 1"):
        new_config(diff_ids=[EMPTY_TAR_DIFF_ID], history=[History(), History()],
                   created="2024-01-01T00:00:00Z", config={})  # fmt: skip


def test_a_history_describing_fewer_layers_is_docker_s_and_valid() -> None:
    """Docker's image store refuses only more non-empty entries than layers."""
    for history in ([], [{"empty_layer": True}]):
        assert len(ImageConfig.from_bytes(_cfg(history=history)).diff_ids) == 1
    short = ImageConfig.from_bytes(_cfg(history=[{"empty_layer": True}])).history
    assert history_for_layers(short, 3) == [History(empty_layer=True), History(), History(),
                                            History()]  # fmt: skip


def _cfg(**kw: Any) -> bytes:
    base: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [EMPTY_TAR_DIFF_ID]},
    }
    base.update(kw)
    return json.dumps({k: v for k, v in base.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (_cfg(rootfs={"type": "tarball", "diff_ids": []}), InvalidManifestError),
        (_cfg(rootfs=None), InvalidManifestError),
        (_cfg(rootfs={"diff_ids": []}), InvalidManifestError),
        (_cfg(rootfs={"type": "layers", "diff_ids": ["sha256:xyz"]}), InvalidDigestError),
        (_cfg(rootfs={"type": "layers", "diff_ids": [1]}), InvalidDigestError),
        (_cfg(history=[{"created_by": "a"}, {"created_by": "b"}]), InvalidManifestError),
        (_cfg(history=[{"empty_layer": "yes"}, {}]), InvalidManifestError),
        (_cfg(architecture=None), InvalidManifestError),
        (_cfg(config={"Env": "A=1"}), InvalidManifestError),
        (_cfg(config={"Labels": {"a": 1}}), InvalidManifestError),
        (b"[]", InvalidManifestError),
        # What Go's decoder refuses and Python's kept: exit 70 for the digits, NaN and 1e400
        # stored, then unwritable by encode_json (allow_nan=False) when a commit re-encoded it.
        (_cfg(x="<>").replace(b'"<>"', b"9" * 5000), InvalidManifestError),
        (_cfg(x="<>").replace(b'"<>"', b"NaN"), InvalidManifestError),
        (_cfg(x="<>").replace(b'"<>"', b"-Infinity"), InvalidManifestError),
        (_cfg(config={"StopTimeout": "<>"}).replace(b'"<>"', b"1e400"), InvalidManifestError),
    ],
)
def test_invalid(raw: bytes, error: type[InvalidContentError]) -> None:
    with pytest.raises(error):
        ImageConfig.from_bytes(raw)


def test_nulls_and_unknowns_are_accepted() -> None:
    cfg = ImageConfig.from_bytes(
        _cfg(config={"Cmd": None, "Env": None, "Future": 1}, history=[{"empty_layer": None}],
             author=None, docker_version="20.10", container_config={})
    )  # fmt: skip
    assert cfg.config.cmd is None
    assert cfg.config.env == ()
    assert cfg.history == (History(),)
