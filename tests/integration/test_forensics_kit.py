"""The forensics test image, built by hand with lamina's own image code, plus its facts.

Every layer is a hand-made tar, so every expected number below is computed here from the bytes
put in, not from lamina's output. Other forensics tests import from this module.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.archive.compression import Compression
from lamina.engine.engine import Engine
from lamina.image.layers import BytesLayer
from lamina.image.model import Image
from lamina.image.mutate import MemoryImage, append_layer, with_config
from lamina.image.validate import validate_image
from lamina.oci.config import History, new_config
from lamina.oci.gojson import encode_json
from lamina.transports import local, oci_archive

CREATED = "2024-01-02T03:04:05Z"
DB_PASSWORD = "hunter2-s3cret-pass"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SECRET_ENV = f"DB_PASSWORD={DB_PASSWORD}\naws_secret_access_key = {AWS_SECRET}\n".encode()
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
PRIVATE_KEY = (
    b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
    b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    b"QyNTUxOQAAACD0xG1Hqv8KcYtq2mJ1pX3Zf4kq9s0bN2o7W7a1yQzVtAAAAJgAAAAAAAAA\n"
    b"-----END OPENSSH PRIVATE KEY-----\n"
)
APP_V1 = b"mode=prod\nlevel=1\nname=app\n"
APP_V2 = b"mode=debug\nlevel=2\nname=app\n"
OLD_DATA = b"old data that an opaque dir hides\n" * 10
NEW_DATA = b"new\n"
BIG = os.urandom(300_000)
CAPABILITY = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_bind_service+ep
SHADOW = b"root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


def tar_of(*members: tuple[Any, ...]) -> bytes:
    """A PAX layer tar. Members: ("dir", path, mode), ("file", path, data, mode[, xattrs]),
    ("whiteout", path), ("opaque", dir), ("symlink", path, target), ("hardlink", path, target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            kind, path = m[0], m[1]
            ti = tarfile.TarInfo(path)
            ti.mtime = 1_700_000_000
            data = b""
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, m[2]
            elif kind == "file":
                data, ti.mode = m[2], m[3]
                ti.size = len(data)
                if len(m) > 4:
                    ti.pax_headers = {
                        f"SCHILY.xattr.{k}": v.decode("latin-1") for k, v in m[4].items()
                    }
            elif kind == "whiteout":
                head, _, base = path.rpartition("/")
                ti.name = f"{head}/.wh.{base}" if head else f".wh.{base}"
                ti.mode = 0o644
            elif kind == "opaque":
                ti.name = f"{path}/.wh..wh..opq"
                ti.mode = 0o644
            elif kind == "symlink":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, m[2], 0o777
            elif kind == "hardlink":
                ti.type, ti.linkname, ti.mode = tarfile.LNKTYPE, m[2], 0o644
            tf.addfile(ti, io.BytesIO(data) if data else None)
    return out.getvalue()


def _pax_bytes_fix(raw: bytes) -> bytes:
    return raw


# (instruction, tar) per layer, base first.
STEPS: list[tuple[str, bytes]] = [
    (
        "lamina import",
        tar_of(
            ("dir", "bin", 0o755),
            ("file", "bin/sh", b"#!fake shell\n", 0o755),
            ("dir", "etc", 0o755),
            ("file", "etc/passwd", PASSWD, 0o644),
            ("file", "etc/shadow", SHADOW, 0o640),
            ("dir", "tmp", 0o1777),
            ("dir", "usr", 0o755),
            ("dir", "usr/bin", 0o755),
            ("dir", "root", 0o700),
        ),
    ),
    (
        "COPY app.conf /etc/app.conf # buildkit",
        tar_of(
            ("dir", "etc", 0o755),
            ("file", "etc/app.conf", APP_V1, 0o644),
            ("dir", "opt", 0o755),
            ("dir", "opt/data", 0o755),
            ("file", "opt/data/old.txt", OLD_DATA, 0o644),
        ),
    ),
    (
        f"RUN |1 DB_PASSWORD={DB_PASSWORD} /bin/sh -c ./setup --write-env /root/secret.env",
        tar_of(
            ("dir", "root", 0o700),
            ("file", "root/secret.env", SECRET_ENV, 0o600),
        ),
    ),
    (
        "RUN /bin/sh -c rm /root/secret.env",
        tar_of(("dir", "root", 0o700), ("whiteout", "root/secret.env")),
    ),
    (
        "COPY id_ed25519 /root/.ssh/id_ed25519 # buildkit",
        tar_of(
            ("dir", "root", 0o700),
            ("dir", "root/.ssh", 0o700),
            ("file", "root/.ssh/id_ed25519", PRIVATE_KEY, 0o600),
        ),
    ),
    (
        "COPY app.conf /etc/app.conf # buildkit",
        tar_of(
            ("dir", "etc", 0o755),
            ("file", "etc/app.conf", APP_V2, 0o644),
        ),
    ),
    (
        "RUN /bin/sh -c rm -rf /opt/data && mkdir /opt/data && echo new > /opt/data/new.txt",
        tar_of(
            ("dir", "opt", 0o755),
            ("dir", "opt/data", 0o755),
            ("opaque", "opt/data"),
            ("file", "opt/data/new.txt", NEW_DATA, 0o644),
        ),
    ),
    (
        "RUN /bin/sh -c install -m 4755 suidtool /usr/bin"
        " && setcap cap_net_bind_service+ep captool",
        tar_of(
            ("dir", "usr", 0o755),
            ("dir", "usr/bin", 0o755),
            ("file", "usr/bin/suidtool", b"\x7fELF suid tool\n", 0o4755),
            (
                "file",
                "usr/bin/captool",
                b"\x7fELF cap tool\n",
                0o755,
                {"security.capability": CAPABILITY},
            ),
        ),
    ),
    (
        "COPY big.bin /srv/big.bin # buildkit",
        tar_of(
            ("dir", "srv", 0o755),
            ("file", "srv/big.bin", BIG, 0o644),
        ),
    ),
    (
        "COPY big.bin /srv/big.bin # buildkit",
        tar_of(
            ("dir", "srv", 0o755),
            ("file", "srv/big.bin", BIG, 0o644),
        ),
    ),
]

# Facts computed from the bytes above (never from lamina's output).
LAYER_OF = {
    "secret-added": 2,
    "secret-deleted": 3,
    "key": 4,
    "overwrite": 5,
    "opaque": 6,
    "setuid": 7,
    "big": 8,
    "big-again": 9,
}
WASTE_DELETED = len(SECRET_ENV) + len(OLD_DATA)
WASTE_OVERWRITTEN = len(APP_V1) + len(BIG)
WASTE_IDENTICAL = len(BIG)
TOTAL_FILE_BYTES = (
    len(b"#!fake shell\n")
    + len(PASSWD)
    + len(SHADOW)
    + len(APP_V1)
    + len(OLD_DATA)
    + len(SECRET_ENV)
    + len(PRIVATE_KEY)
    + len(APP_V2)
    + len(NEW_DATA)
    + len(b"\x7fELF suid tool\n")
    + len(b"\x7fELF cap tool\n")
    + 2 * len(BIG)
)


def build_image(*, variant: bytes | None = None) -> Image:
    """The test image. ``variant`` replaces the content of /etc/app.conf's second version (two
    images that differ by exactly one file)."""
    steps = list(STEPS)
    if variant is not None:
        steps[5] = (
            steps[5][0],
            tar_of(("dir", "etc", 0o755), ("file", "etc/app.conf", variant, 0o644)),
        )
    layers = [BytesLayer.from_tar(t, compression=Compression.GZIP) for _, t in steps]
    raw = new_config(
        diff_ids=[layers[0].diff_id],
        history=[History(created=CREATED, created_by=steps[0][0])],
        created=CREATED,
        config={"Env": ["PATH=/usr/bin:/bin"]},
    )
    img: Image = MemoryImage(raw_config=raw, layers=layers[:1])
    for (step, _), layer in zip(steps[1:], layers[1:], strict=True):
        img = append_layer(img, layer, history=History(created=CREATED, created_by=step))
    obj = json.loads(img.raw_config)
    # Steps that make no layer: an ARG before the RUN that used it, an ENV with a token.
    obj["history"].insert(
        2, {"created": CREATED, "created_by": "ARG DB_PASSWORD", "empty_layer": True}
    )
    obj["history"].append(
        {"created": CREATED, "created_by": f"ENV GITHUB_TOKEN={GITHUB_TOKEN}", "empty_layer": True}
    )
    obj["config"]["Env"].append(f"GITHUB_TOKEN={GITHUB_TOKEN}")
    obj["config"]["Labels"] = {"org.example.team": "forensics"}
    img = with_config(img, encode_json(obj))
    validate_image(img)
    return img


@dataclass(frozen=True, slots=True)
class Built:
    engine: Engine
    name: str
    archive: Path  # the same image as an oci-archive (read in place by transport tests)


def store_image(root: Path, *, name: str = "forensics:test", driver: str | None = None) -> Built:
    engine = Engine.open(root, driver=driver)
    img = build_image()
    local.write(engine.store, img, names=[f"docker.io/library/{name}"])
    archive = root.parent / f"{root.name}-image.oci.tar"
    oci_archive.write(archive, img, "test")
    return Built(engine=engine, name=name, archive=archive)


def test_kit_builds_a_valid_image() -> None:
    img = build_image()
    assert len(img.layers()) == len(STEPS)
    history = img.config.history
    assert sum(1 for h in history if not h.empty_layer) == len(STEPS)
