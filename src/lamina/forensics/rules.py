"""The secret rules: built-in ones, users' own from a TOML file, and an allow-list.

A content rule is a regex over file bytes, guarded by keywords that must occur in the file
before the regex runs at all — the trick that keeps gitleaks fast, and the reason a rule
without keywords is refused. Keywords match case-insensitively in text files and exactly as
written in binary files (token formats have a fixed case; a case-blind search costs twice as
much there, where most of an image's bytes are). A path rule names credential files by glob.
Rules files look
like::

    [[rules]]
    id = "acme-token"
    description = "ACME deploy token"
    severity = "high"              # critical, high, medium, low, info
    regex = 'acme_[0-9a-f]{32}'
    keywords = ["acme_"]
    paths = ["srv/*"]              # optional: only files matching these globs
    entropy = 3.0                  # optional: minimum Shannon entropy of the secret
    text_only = false              # optional: skip binary files (NUL in the first 8 kB)

    [allow]
    paths = ["usr/share/doc/*"]    # findings at these paths are dropped
    rules = ["generic-secret"]     # rules switched off
    fingerprints = ["generic-secret:etc/app.conf:9f2c0e1d3b4a5c6d"]

Globs are :func:`fnmatch.fnmatchcase` patterns over the path without its leading ``/`` (``*``
also matches ``/``).
"""

from __future__ import annotations

import enum
import fnmatch
import math
import re
import tomllib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from msgspec import Struct, field

from lamina.errors import UsageError


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise UsageError(f"unknown severity {text!r} (use {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class ContentRule(Struct, frozen=True, kw_only=True):
    id: str
    description: str
    severity: Severity
    regex: re.Pattern[bytes]
    keywords: tuple[bytes, ...]  # as written; one must occur near a match (see module doc)
    paths: tuple[str, ...] = ()  # globs; empty means every file
    entropy: float = 0.0  # minimum Shannon entropy (bits/char) of the secret group
    text_only: bool = False  # skip binary files (NUL in the first 8 kB): generic patterns
    # Severity when found inside a binary file (None: unchanged). Libraries compile in
    # test-vector keys (GnuTLS's FIPS self-tests in every Debian image): evidence, not a leak.
    binary_severity: Severity | None = None

    def applies(self, path: str) -> bool:
        return not self.paths or any(fnmatch.fnmatchcase(path, g) for g in self.paths)


class PathRule(Struct, frozen=True, kw_only=True):
    id: str
    description: str
    severity: Severity
    globs: tuple[str, ...]  # matched against the path and against its basename
    exclude: tuple[str, ...] = ()

    def matches(self, path: str) -> bool:
        base = path.rpartition("/")[2]
        hit = any(fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(base, g) for g in self.globs)
        return hit and not any(fnmatch.fnmatchcase(base, g) for g in self.exclude)


class Allow(Struct, frozen=True, kw_only=True):
    paths: tuple[str, ...] = ()
    rules: frozenset[str] = frozenset()
    fingerprints: frozenset[str] = frozenset()

    def allows(self, *, rule: str, path: str, fingerprint: str) -> bool:
        return (
            rule in self.rules
            or fingerprint in self.fingerprints
            or (bool(path) and any(fnmatch.fnmatchcase(path, g) for g in self.paths))
        )


class RuleSet(Struct, frozen=True, kw_only=True):
    content: tuple[ContentRule, ...]
    paths: tuple[PathRule, ...]
    allow: Allow = field(default_factory=Allow)


# Values that are documentation, not secrets; checked for rules with an entropy floor (the
# generic ones), never for formats like AKIA... where a match is a credential by itself.
_PLACEHOLDERS = (
    b"password",
    b"passwd",
    b"changeme",
    b"example",
    b"xxxx",
    b"your",
    b"dummy",
    b"redacted",
    b"<",
    b"${",
    b"{{",
    b"***",
    b"placeholder",
)


def plausible(rule: ContentRule, secret: bytes) -> bool:
    """True when ``secret`` passes ``rule``'s entropy floor and is not a placeholder."""
    if not rule.entropy:
        return True
    low = secret.lower()
    return entropy(secret) >= rule.entropy and not any(p in low for p in _PLACEHOLDERS)


def entropy(value: bytes) -> float:
    """Shannon entropy in bits per byte."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def _c(
    id_: str,
    description: str,
    severity: Severity,
    regex: bytes,
    keywords: Sequence[str],
    *,
    paths: Sequence[str] = (),
    entropy_: float = 0.0,
    text_only: bool = False,
    binary_severity: Severity | None = None,
) -> ContentRule:
    return ContentRule(
        id=id_,
        description=description,
        severity=severity,
        regex=re.compile(regex),
        keywords=tuple(k.encode() for k in keywords),
        paths=tuple(paths),
        entropy=entropy_,
        text_only=text_only,
        binary_severity=binary_severity,
    )


C, H, M, L = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW

BUILTIN_CONTENT: tuple[ContentRule, ...] = (
    _c(
        "private-key",
        "private key (PEM/OpenSSH/PGP)",
        C,
        # A header alone is not a key: libraries carry "-----BEGIN PRIVATE KEY-----" as a
        # constant. Require base64 body after optional "Proc-Type:"-style header lines.
        rb"-----BEGIN ((?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----"
        rb"\r?\n(?:[A-Za-z-]+: [^\n]*\r?\n)*\s*[A-Za-z0-9+/=]{40,}",
        ["PRIVATE KEY"],
        binary_severity=Severity.LOW,
    ),
    _c(
        "aws-access-key-id",
        "AWS access key id",
        H,
        rb"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b",
        ["AKIA", "ASIA"],
    ),
    _c(
        "aws-secret-access-key",
        "AWS secret access key",
        C,
        rb"(?i)aws_?secret_?access_?key\W{0,4}[=:]\s*[\"']?([A-Za-z0-9/+=]{40})",
        ["secret_access_key", "SECRET_ACCESS_KEY", "SecretAccessKey"],
    ),
    _c(
        "gcp-service-account-key",
        "GCP service account key (JSON)",
        C,
        rb"\"private_key\"\s*:\s*\"(-----BEGIN PRIVATE KEY-----[^\"]{20,})",
        ['"private_key"'],
    ),
    _c(
        "gcp-api-key",
        "Google API key",
        H,
        rb"\b(AIza[0-9A-Za-z_\-]{35})(?![0-9A-Za-z_\-])",
        ["AIza"],
    ),
    _c(
        "github-token",
        "GitHub token",
        C,
        rb"\b(gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
    ),
    _c(
        "gitlab-token",
        "GitLab personal access token",
        H,
        rb"\b(glpat-[0-9A-Za-z_\-]{20,})",
        ["glpat-"],
    ),
    _c("slack-token", "Slack token", H, rb"\b(xox[abposr]-[0-9A-Za-z-]{10,})", ["xox"]),
    _c(
        "slack-webhook",
        "Slack incoming webhook",
        H,
        rb"(https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,})",
        ["hooks.slack.com"],
    ),
    _c(
        "stripe-key",
        "Stripe live secret key",
        H,
        rb"\b((?:sk|rk)_live_[0-9a-zA-Z]{24,})",
        ["sk_live_", "rk_live_"],
    ),
    _c("npm-token", "npm access token", H, rb"\b(npm_[A-Za-z0-9]{36})\b", ["npm_"]),
    _c(
        "npmrc-auth",
        "registry credentials in .npmrc",
        H,
        rb"(?m)(?:_authToken|_auth|_password)\s*=\s*[\"']?([^\s\"']{6,})",
        ["_authtoken", "_auth", "_password"],
        paths=["*.npmrc", "*npmrc"],
        text_only=True,
    ),
    _c(
        "netrc-password",
        "password in a .netrc",
        H,
        rb"\bpassword\s+(\S+)",
        ["password"],
        paths=["*.netrc", "*_netrc"],
        text_only=True,
    ),
    _c(
        "git-credentials",
        "credentials in .git-credentials",
        H,
        rb"[a-z][a-z0-9+.-]*://[^:/\s@]+:([^@\s]+)@",
        ["://"],
        paths=["*.git-credentials"],
        text_only=True,
    ),
    _c(
        "url-credentials",
        "password in a URL",
        M,
        rb"\b(?:https?|ftp|postgres(?:ql)?|mysql|mongodb(?:\+srv)?|redis|amqp)://"
        rb"[^:/\s@\"']+:([^@/\s\"']{6,})@[A-Za-z0-9.-]+",
        ["://"],
        entropy_=2.5,
        text_only=True,
    ),
    _c(
        "password-hash",
        "password hash in a shadow file",
        H,
        rb"(?m)^([^:\n]+:(?:\$(?:1|2[abxy]?|5|6|7|y|gy|sha1|md5)\$[^:\n]{8,}|[./0-9A-Za-z]{13})):",
        [":"],
        paths=["*shadow", "*shadow-", "*.shadow"],
        text_only=True,
    ),
    _c(
        "generic-secret",
        "secret-looking value assigned to a secret-looking name",
        M,
        rb"(?i)(?:passw(?:or)?d|secret|api_?key|access_?token|auth_?token)"
        rb"[a-z0-9_.-]*[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9+/_\-.~!@#%^&*]{12,})",
        ["passw", "secret", "api_key", "apikey", "token"],
        entropy_=3.5,
        text_only=True,
    ),
)

BUILTIN_PATHS: tuple[PathRule, ...] = (
    PathRule(
        id="ssh-private-key-file",
        description="SSH private key file",
        severity=H,
        globs=("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"),
        exclude=("*.pub",),
    ),
    PathRule(
        id="credential-file",
        description="credential file",
        severity=M,
        globs=(
            ".netrc",
            "_netrc",
            ".git-credentials",
            ".npmrc",
            ".pypirc",
            ".pgpass",
            "*/.aws/credentials",
            "*/.docker/config.json",
            "*/.kube/config",
            ".htpasswd",
            "credentials.json",
        ),
    ),
    PathRule(
        id="dotenv-file",
        description="dotenv file",
        severity=M,
        globs=(".env", ".env.*"),
        exclude=(".env.example", ".env.sample", ".env.template"),
    ),
    PathRule(
        id="keystore-file",
        description="key store",
        severity=M,
        globs=("*.p12", "*.pfx", "*.jks", "*.keystore"),
    ),
)


def builtin() -> RuleSet:
    return RuleSet(content=BUILTIN_CONTENT, paths=BUILTIN_PATHS)


def _strings(obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: {key} must be a list of strings")
    return tuple(v.lstrip("/") if key == "paths" else v for v in value)


def _rule(obj: Any, where: str) -> ContentRule:
    if not isinstance(obj, dict):
        raise UsageError(f"{where}: a rule must be a table")
    for key in ("id", "regex"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise UsageError(f"{where}: rule needs a string {key!r}")
    keywords = _strings(obj, "keywords", where)
    if not keywords:
        raise UsageError(f"{where}: rule {obj['id']!r} needs keywords (they keep scanning fast)")
    try:
        regex = re.compile(str(obj["regex"]).encode())
    except re.error as exc:
        raise UsageError(f"{where}: rule {obj['id']!r}: bad regex: {exc}") from exc
    return ContentRule(
        id=str(obj["id"]),
        description=str(obj.get("description", obj["id"])),
        severity=Severity.parse(str(obj.get("severity", "high"))),
        regex=regex,
        keywords=tuple(k.encode() for k in keywords),
        paths=_strings(obj, "paths", where),
        entropy=float(obj.get("entropy", 0.0)),
        text_only=bool(obj.get("text_only", False)),
    )


def _load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: {exc}") from exc


def _allow(obj: Any, where: str) -> Allow:
    if not isinstance(obj, dict):
        raise UsageError(f"{where}: [allow] must be a table")
    return Allow(
        paths=_strings(obj, "paths", where),
        rules=frozenset(_strings(obj, "rules", where)),
        fingerprints=frozenset(_strings(obj, "fingerprints", where)),
    )


def _merge(a: Allow, b: Allow) -> Allow:
    return Allow(
        paths=a.paths + b.paths,
        rules=a.rules | b.rules,
        fingerprints=a.fingerprints | b.fingerprints,
    )


def load_ruleset(*, rules_file: Path | None, allow_file: Path | None) -> RuleSet:
    """The built-in rules plus a rules file's, with the allow-lists of both files."""
    rules = builtin()
    content = list(rules.content)
    allow = Allow()
    if rules_file is not None:
        data = _load(rules_file)
        raw = data.get("rules", [])
        if not isinstance(raw, list):
            raise UsageError(f"{rules_file}: rules must be an array of tables")
        added = [_rule(r, f"{rules_file}") for r in raw]
        ids = {r.id for r in added}
        content = [r for r in content if r.id not in ids] + added  # same id replaces a built-in
        allow = _merge(allow, _allow(data.get("allow", {}), str(rules_file)))
    if allow_file is not None:
        data = _load(allow_file)
        allow = _merge(allow, _allow(data.get("allow", data), str(allow_file)))
    return RuleSet(content=tuple(content), paths=rules.paths, allow=allow)
