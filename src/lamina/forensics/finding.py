"""One finding of ``lamina secrets``: what, where, which step, and how to see the evidence."""

from __future__ import annotations

import hashlib

from msgspec import Struct

from lamina.forensics.rules import Severity


class Finding(Struct, frozen=True, kw_only=True):
    severity: Severity
    rule: str
    title: str
    layer: int | None  # None: the config as a whole (ENV, labels)
    path: str  # "" for config findings
    instruction: str
    match: str  # redacted
    detail: str = ""
    hidden_by: str = ""  # "layer 3: whiteout of /root/.aws" when a later layer hid it
    recover: str = ""
    fingerprint: str = ""

    def json(self) -> dict[str, object]:
        return {
            "Severity": self.severity.label,
            "Rule": self.rule,
            "Title": self.title,
            "Layer": self.layer,
            "Path": "/" + self.path if self.path else "",
            "Instruction": self.instruction,
            "Match": self.match,
            "Detail": self.detail,
            "HiddenBy": self.hidden_by,
            "Recover": self.recover,
            "Fingerprint": self.fingerprint,
        }


def redact(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    text = text.replace("\n", " ")
    if len(text) <= 8:
        return text[:2] + "…"
    return text[:4] + "…" + f"({len(text)} chars)"


def fingerprint(rule: str, path: str, secret: bytes | str) -> str:
    raw = secret.encode() if isinstance(secret, str) else secret
    return f"{rule}:{path}:{hashlib.sha256(raw).hexdigest()[:16]}"
