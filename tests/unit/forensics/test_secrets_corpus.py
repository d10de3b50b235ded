"""A generated corpus of credential formats must be found completely (and clean look-alikes
must not be reported as secrets)."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import string
import tarfile

from lamina.forensics.rules import Severity, builtin, load_ruleset
from lamina.forensics.secrets import scan
from lamina.forensics.stack import Stack, from_image
from lamina.image.layers import BytesLayer
from lamina.image.mutate import MemoryImage
from lamina.oci.config import History, new_config

RNG = random.Random(6)
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64ISH = string.ascii_letters + string.digits + "/+"


def _alnum(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def _pem(label: str, *, headers: str = "") -> bytes:
    body = base64.encodebytes(os.urandom(600)).decode().replace("\n", "")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{headers}{lines}\n-----END {label}-----\n".encode()


def corpus() -> dict[str, tuple[bytes, str]]:
    """path -> (content, the rule that must find it)."""
    pkcs8 = _pem("PRIVATE KEY").decode()
    sa = {
        "type": "service_account",
        "project_id": "demo",
        "private_key_id": _alnum(40, "0123456789abcdef"),
        "private_key": pkcs8,
        "client_email": "svc@demo.iam.gserviceaccount.com",
    }
    return {
        "keys/rsa.pem": (_pem("RSA PRIVATE KEY"), "private-key"),
        "keys/ec.pem": (_pem("EC PRIVATE KEY"), "private-key"),
        "keys/dsa.pem": (_pem("DSA PRIVATE KEY"), "private-key"),
        "keys/pkcs8.pem": (pkcs8.encode(), "private-key"),
        "keys/encrypted.pem": (_pem("ENCRYPTED PRIVATE KEY"), "private-key"),
        "keys/legacy-encrypted.pem": (
            _pem(
                "RSA PRIVATE KEY",
                headers="Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,"
                f"{_alnum(32, '0123456789ABCDEF')}\n\n",
            ),
            "private-key",
        ),
        "home/u/.ssh/deploy_key": (_pem("OPENSSH PRIVATE KEY"), "private-key"),
        "keys/pgp.asc": (
            _pem("PGP PRIVATE KEY BLOCK", headers="Version: GnuPG v2\n\n"),
            "private-key",
        ),
        "home/u/.aws/credentials": (
            f"[default]\naws_access_key_id = AKIA{_alnum(16, UPPER_DIGITS)}\n"
            f"aws_secret_access_key = {_alnum(40, B64ISH)}\n".encode(),
            "aws-secret-access-key",
        ),
        "srv/app/settings.py": (
            f"AWS_KEY = 'ASIA{_alnum(16, string.ascii_uppercase + string.digits)}'\n".encode(),
            "aws-access-key-id",
        ),
        "srv/gcp/sa.json": (json.dumps(sa, indent=2).encode(), "gcp-service-account-key"),
        "srv/web/maps.js": (f'const key = "AIza{_alnum(35)}";\n'.encode(), "gcp-api-key"),
        "srv/ci/github.env": (f"GH=ghp_{_alnum(36)}\n".encode(), "github-token"),
        "srv/ci/github-pat.txt": (
            f"github_pat_{_alnum(22)}_{_alnum(59)}\n".encode(),
            "github-token",
        ),
        "srv/ci/gitlab.txt": (f"token: glpat-{_alnum(20)}\n".encode(), "gitlab-token"),
        "srv/chat/slack.yml": (
            f"bot: xoxb-{_alnum(12, string.digits)}-{_alnum(13, string.digits)}"
            f"-{_alnum(24)}\n".encode(),
            "slack-token",
        ),
        "srv/chat/hook.sh": (
            f"curl -X POST https://hooks.slack.com/services/T{_alnum(8)}/B{_alnum(8)}/{_alnum(24)}\n".encode(),
            "slack-webhook",
        ),
        "srv/pay/stripe.cfg": (f"key=sk_live_{_alnum(24)}\n".encode(), "stripe-key"),
        "root/.npmrc": (
            f"//registry.npmjs.org/:_authToken=npm_{_alnum(36)}\n".encode(),
            "npmrc-auth",
        ),
        "root/.netrc": (
            b"machine ftp.example.com login deploy password Tr0ub4dor&3\n",
            "netrc-password",
        ),
        "root/.git-credentials": (
            f"https://deploy:{_alnum(20)}@git.example.com\n".encode(),
            "git-credentials",
        ),
        "etc/shadow": (
            b"root:$6$rounds=5000$saltsalt$"
            + _alnum(86, string.ascii_letters + "./").encode()
            + b":19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
            "password-hash",
        ),
        "etc/gshadow-": (
            b"adm:$y$j9T$" + _alnum(22).encode() + b"$" + _alnum(43).encode() + b"::\n",
            "password-hash",
        ),
        "srv/app/.env": (
            f"DATABASE_URL=postgres://app:{_alnum(16)}@db.internal:5432/app\n".encode(),
            "url-credentials",
        ),
        "srv/app/config.yaml": (f"api_key: {_alnum(32)}\n".encode(), "generic-secret"),
    }


CLEAN = {
    # Look-alikes that are not secrets.
    "usr/share/doc/app/README": b"Set password: in the config (see below).\nsecret = <changeme>\n",
    "usr/lib/libcrypto-test.so": b"\x7fELF\x00\x00"
    + b"-----BEGIN PRIVATE KEY-----\n"
    + b"\x00" * 64,
    "etc/shadow-empty": b"root:*:19000:0:99999:7:::\n",
    "srv/app/docs.md": b"Use https://user:password@host only in examples.\n",
}


def _image(files: dict[str, bytes]) -> MemoryImage:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, data in files.items():
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mode = 0o600
            tf.addfile(ti, io.BytesIO(data))
    layer = BytesLayer.from_tar(out.getvalue())
    raw = new_config(
        diff_ids=[layer.diff_id],
        history=[History(created_by="COPY corpus /")],
        created="2024-01-01T00:00:00Z",
        config={},
    )
    return MemoryImage(raw_config=raw, layers=[layer])


def _stack_maker(img: MemoryImage):  # type: ignore[no-untyped-def]
    def make(visitor):  # type: ignore[no-untyped-def]
        return from_image(img, name="corpus", source="memory", visitor=visitor)

    return make


def test_every_credential_format_is_found() -> None:
    files = corpus()
    result = scan(builtin(), _stack_maker(_image({p: c for p, (c, _) in files.items()})))
    found = {(f.rule, f.path) for f in result.findings}
    missing = {(rule, path) for path, (_, rule) in files.items()} - found
    assert not missing, f"not found: {sorted(missing)}"
    by_path = {f.path: f for f in result.findings if f.rule == "private-key"}
    assert by_path["keys/rsa.pem"].severity is Severity.CRITICAL
    assert all(f.layer == 0 and f.instruction == "COPY corpus /" for f in result.findings)


def test_look_alikes_are_not_secrets() -> None:
    result = scan(builtin(), _stack_maker(_image(CLEAN)))
    serious = [f for f in result.findings if f.severity >= Severity.MEDIUM]
    assert serious == []
    # A key header compiled into a library without a body is nothing at all.
    assert not [f for f in result.findings if f.rule == "private-key"]


def test_a_key_inside_a_binary_is_low(tmp_path: object) -> None:
    key = _pem("EC PRIVATE KEY")
    blob = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 100 + key + b"\x00" * 100
    result = scan(builtin(), _stack_maker(_image({"usr/lib/libtls.so": blob})))
    keys = [f for f in result.findings if f.rule == "private-key"]
    assert [(k.severity, k.detail) for k in keys] == [(Severity.LOW, "inside a binary file")]


def test_store_and_stream_scans_agree_on_the_rule_set_from_a_file(tmp_path: object) -> None:
    from pathlib import Path

    rules = Path(str(tmp_path)) / "r.toml"
    rules.write_text('[allow]\nfingerprints = []\npaths = ["srv/*"]\n')
    files = corpus()
    ruleset = load_ruleset(rules_file=rules, allow_file=None)
    result = scan(ruleset, _stack_maker(_image({p: c for p, (c, _) in files.items()})))
    assert not [f for f in result.findings if f.path.startswith("srv/")]
    assert isinstance(result.stack, Stack)


def test_identical_copies_are_each_reported() -> None:
    key = _pem("RSA PRIVATE KEY")
    files = {
        "a/id.pem": key,
        "b/id.pem": key,
        "c/.npmrc": b"_auth=abcdef123456\n",
        "d/notrc": b"_auth=abcdef123456\n",
    }
    result = scan(builtin(), _stack_maker(_image(files)))
    got = {(f.rule, f.path) for f in result.findings}
    assert {("private-key", "a/id.pem"), ("private-key", "b/id.pem")} <= got
    # Path-scoped rules still see the path, even for content already scanned elsewhere.
    assert ("npmrc-auth", "c/.npmrc") in got and ("npmrc-auth", "d/notrc") not in got


def test_compressed_files_and_catalogs_are_not_searched() -> None:
    import gzip

    key = _pem("RSA PRIVATE KEY")
    files = {
        "a/key.pem.gz": gzip.compress(key),
        "b/messages.mo": b"\xde\x12\x04\x95" + b"\x00" * 28 + key,
        "c/key.pem": key,
    }
    result = scan(builtin(), _stack_maker(_image(files)))
    assert result.scanned_files == 1
    assert [f.path for f in result.findings if f.rule == "private-key"] == ["c/key.pem"]
