"""One finding of ``lamina secrets``: what, where, which step, and how to see the evidence."""

from __future__ import annotations

import hashlib
import re
import shlex
from typing import Final

from msgspec import Struct

from lamina.forensics.rules import Severity

_C_ESCAPES: Final = {"\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f",
                     "\r": "r", "\x1b": "e", "'": "'", "\\": "\\"}  # fmt: skip
_SAFE_WORD: Final = re.compile(r"[\w@%+=:,./-]+", re.ASCII)


def shell_word(text: str) -> str:
    """``text`` as one word a POSIX shell (bash, for ``$'...'``) reads back as the same bytes,
    printable on one line: an image path may hold spaces, quotes, newlines or escape sequences,
    and bytes that are not UTF-8 (kept as surrogate escapes)."""
    if _SAFE_WORD.fullmatch(text):
        return text
    if text.isprintable():
        return shlex.quote(text)
    out = []
    for ch in text:
        if ch in _C_ESCAPES:
            out.append("\\" + _C_ESCAPES[ch])
        elif "\udc80" <= ch <= "\udcff":  # a byte that was not UTF-8
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.extend(f"\\x{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
    return "$'" + "".join(out) + "'"


def cat_command(image: str, path: str, layer: int) -> str:
    """The ``lamina cat`` line that prints ``path`` (relative) as ``layer`` saw it."""
    return f"lamina cat {shell_word(image)} {shell_word('/' + path)} --layer {layer}"


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
