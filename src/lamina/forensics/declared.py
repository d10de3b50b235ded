"""Secrets the image *declares*: build args recorded in history, ENV values and labels, and the
content rules run over every history line, ENV entry and label.

BuildKit records the build args a ``RUN`` saw as ``RUN |2 A=1 B=2 /bin/sh -c ...``; the classic
builder writes ``ARG NAME=value`` steps (``/bin/sh -c #(nop)  ARG NAME=value``). Both end up in
every copy of the image.
"""

from __future__ import annotations

import re
from typing import Final

from lamina.forensics.finding import Finding, fingerprint, redact
from lamina.forensics.rules import RuleSet, Severity, plausible
from lamina.forensics.stack import Stack

_SECRET_NAME: Final = re.compile(
    r"(?i)(passw(or)?d|passphrase|secret|token|api_?key|private_?key|credential|auth)"
)
_NOT_SECRET_NAME: Final = re.compile(r"(?i)(_FILE|_PATH|_DIR|_URL_?PATH)$")
_BUILD_ARGS: Final = re.compile(r"^\s*RUN \|(\d+) (.*)$", re.S)
_ARG_STEP: Final = re.compile(r"(?:^|#\(nop\)\s+)ARG\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)")


def _secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and not _NOT_SECRET_NAME.search(name)


def _text_rules(
    rules: RuleSet, text: str, raw: set[str], *, where: str, layer: int | None, instruction: str
) -> list[Finding]:
    out: list[Finding] = []
    data = text.encode()
    low = data.lower()
    for rule in rules.content:
        if rule.paths or not any(k.lower() in low for k in rule.keywords):
            continue
        m = rule.regex.search(data)
        if m is None:
            continue
        secret = m.group(1) if m.groups() else m.group(0)
        if not plausible(rule, secret):
            continue
        raw.add(secret.decode("utf-8", "replace"))
        out.append(
            Finding(
                severity=rule.severity,
                rule=rule.id,
                title=f"{rule.description} in {where}",
                layer=layer,
                path="",
                instruction=instruction,
                match=redact(secret),
                fingerprint=fingerprint(rule.id, where, secret),
            )
        )
    return out


def config_findings(stack: Stack, rules: RuleSet, raw: set[str]) -> list[Finding]:
    """Findings in history, ENV and labels; the raw secret values go into ``raw``."""
    out: list[Finding] = []
    cfg = stack.config
    layer = -1
    for h in cfg.history:
        if not h.empty_layer:
            layer += 1
        where_layer = None if h.empty_layer else layer
        step = h.created_by or ""
        pairs: list[tuple[str, str]] = []
        m = _BUILD_ARGS.match(step)
        if m:
            pairs += [
                tuple(t.split("=", 1)) for t in m.group(2).split()[: int(m.group(1))] if "=" in t
            ]
        pairs += [(a.group(1), a.group(2)) for a in _ARG_STEP.finditer(step)]
        for name, value in pairs:
            if value and _secret_name(name):
                raw.add(value)
                out.append(
                    Finding(
                        severity=Severity.HIGH,
                        rule="build-arg-secret",
                        title=f"build arg {name} recorded in the image history",
                        layer=where_layer,
                        path="",
                        instruction=step,
                        match=redact(value),
                        detail=f"{name}=…",
                        fingerprint=fingerprint("build-arg-secret", name, value),
                    )
                )
        out += _text_rules(rules, step, raw, where="history", layer=where_layer, instruction=step)
    for item in cfg.config.env:
        name, _, value = item.partition("=")
        if value and _secret_name(name):
            raw.add(value)
            out.append(
                Finding(
                    severity=Severity.HIGH,
                    rule="env-secret",
                    title=f"ENV {name} holds a secret-looking value",
                    layer=None,
                    path="",
                    instruction=f"ENV {name}",
                    match=redact(value),
                    fingerprint=fingerprint("env-secret", name, value),
                )
            )
        out += _text_rules(
            rules, item, raw, where=f"ENV {name}", layer=None, instruction=f"ENV {name}"
        )
    for key, value in cfg.config.labels.items():
        if value and _secret_name(key):
            raw.add(value)
            out.append(
                Finding(
                    severity=Severity.MEDIUM,
                    rule="label-secret",
                    title=f"LABEL {key} holds a secret-looking value",
                    layer=None,
                    path="",
                    instruction=f"LABEL {key}",
                    match=redact(value),
                    fingerprint=fingerprint("label-secret", key, value),
                )
            )
        out += _text_rules(
            rules,
            f"{key}={value}",
            raw,
            where=f"LABEL {key}",
            layer=None,
            instruction=f"LABEL {key}",
        )
    return out
