"""``lamina secrets``: credentials by content in every layer (not only the final tree), files a
later layer hid, secrets in the config and history, and risky file metadata.

Content is scanned while each layer's tar is streamed once (a transport's layers during the same
pass that indexes them). Every finding names its layer and that layer's instruction, and says how
to read the evidence (``lamina cat IMAGE PATH --layer N``), which matters most for what a later
layer deleted: the bytes are still in the image, only hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

import msgspec.structs
from msgspec import Struct

from lamina.archive.entry import EntryKind
from lamina.forensics import content
from lamina.forensics.declared import config_findings
from lamina.forensics.finding import Finding, cat_command, fingerprint, redact
from lamina.forensics.replay import Action, Located, all_events
from lamina.forensics.rules import RuleSet, Severity, load_ruleset
from lamina.forensics.stack import ContentVisitor, Stack, scan_contents

__all__ = ["Finding", "SecretsResult", "Severity", "load_ruleset", "scan"]

_CAP_XATTR: Final = "security.capability"


class SecretsResult(Struct, frozen=True, kw_only=True):
    stack: Stack
    findings: tuple[Finding, ...]
    scanned_bytes: int
    scanned_files: int
    config_secrets: frozenset[str] = frozenset()  # raw values found in history/ENV/labels

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def scrub(self, text: str) -> str:
        """``text`` (an instruction) with every secret found in the config redacted."""
        for value in sorted(self.config_secrets, key=len, reverse=True):
            text = text.replace(value, redact(value))
        return text


def scan(
    rules: RuleSet,
    make_stack: Callable[[ContentVisitor | None], Stack],
    *,
    contents: bool = True,
) -> SecretsResult:
    """Run every rule over the stack ``make_stack`` returns (it may feed the scanner while it
    streams the layers; a stored image's blobs are streamed here). ``contents=False`` keeps to
    the index and the config: names, metadata, hidden files, history (no blob is read)."""
    scanner = content.Scanner(rules=rules)
    stack = make_stack(scanner if contents else None)
    if contents and stack.source == "store":
        scan_contents(stack, scanner)
    per_layer, view = all_events(stack)
    # Which later event hid each (layer, path) row: whiteout, opaque dir or overwrite.
    hidden_by: dict[tuple[int, str], str] = {}
    findings: list[Finding] = []
    for events in per_layer:
        for ev in events:
            if ev.before is None or ev.action in (Action.ADDED, Action.READDED, Action.METADATA):
                continue
            b = ev.before
            how = ev.cause if ev.action in (Action.DELETED, Action.HIDDEN) else "overwritten"
            hidden_by[(b.layer, ev.path)] = f"layer {ev.layer}: {how}"
            if b.entry.kind is EntryKind.FILE:
                findings.append(
                    _finding(
                        stack,
                        Severity.INFO,
                        "hidden-file",
                        f"file {ev.action.value} by a later layer",
                        b.layer,
                        ev.path,
                        "",
                        detail=f"{b.entry.size} bytes",
                        hidden=hidden_by[(b.layer, ev.path)],
                    )
                )
    for hit in scanner.hits:
        findings.append(
            _finding(
                stack,
                hit.severity,
                hit.rule.id,
                hit.rule.description,
                hit.layer,
                hit.entry.path,
                hit.secret,
                detail="inside a binary file" if hit.binary else "",
                hidden=hidden_by.get((hit.layer, hit.entry.path), ""),
            )
        )
    for layer in stack.layers:
        for ie in layer.rows:
            e = ie.entry
            if e.kind is not EntryKind.FILE:
                continue
            for prule in rules.paths:
                if prule.matches(e.path):
                    findings.append(
                        _finding(
                            stack,
                            prule.severity,
                            prule.id,
                            prule.description,
                            layer.index,
                            e.path,
                            "",
                            hidden=hidden_by.get((layer.index, e.path), ""),
                        )
                    )
    findings += _metadata(stack, view.items)
    raw: set[str] = set()
    findings += config_findings(stack, rules, raw)
    kept = [
        f
        for f in findings
        if not rules.allow.allows(rule=f.rule, path=f.path, fingerprint=f.fingerprint)
    ]
    result = SecretsResult(
        stack=stack,
        findings=(),
        scanned_bytes=0,
        scanned_files=0,
        config_secrets=frozenset(v for v in raw if len(v) >= 4),
    )
    # Instructions are shown next to findings: never print the secret they are about.
    kept = [msgspec.structs.replace(f, instruction=result.scrub(f.instruction)) for f in kept]
    kept.sort(key=lambda f: (-f.severity, f.layer if f.layer is not None else -1, f.path, f.rule))
    return msgspec.structs.replace(
        result,
        findings=tuple(kept),
        scanned_bytes=scanner.scanned_bytes,
        scanned_files=scanner.scanned_files,
    )


def _finding(
    stack: Stack,
    severity: Severity,
    rule: str,
    title: str,
    layer: int | None,
    path: str,
    secret: bytes | str,
    *,
    detail: str = "",
    hidden: str = "",
) -> Finding:
    recover = cat_command(stack.name, path, layer) if path and layer is not None else ""
    return Finding(
        severity=severity,
        rule=rule,
        title=title,
        layer=layer,
        path=path,
        instruction=stack.step(layer),
        match=redact(secret) if secret else "",
        detail=detail,
        hidden_by=hidden,
        recover=recover,
        fingerprint=fingerprint(rule, path, secret or path),
    )


def _metadata(stack: Stack, items: Mapping[str, Located]) -> list[Finding]:
    out: list[Finding] = []
    for path, loc in items.items():
        e = loc.entry
        if e.kind in (EntryKind.FILE, EntryKind.HARDLINK):
            if e.mode & 0o4000:
                sev = Severity.MEDIUM if e.uid == 0 else Severity.LOW
                out.append(
                    _finding(
                        stack,
                        sev,
                        "setuid",
                        f"setuid file (owner uid {e.uid})",
                        loc.layer,
                        path,
                        "",
                        detail=f"mode {e.mode:04o}",
                    )
                )
            elif e.mode & 0o2000:
                out.append(
                    _finding(
                        stack,
                        Severity.LOW,
                        "setgid",
                        f"setgid file (gid {e.gid})",
                        loc.layer,
                        path,
                        "",
                        detail=f"mode {e.mode:04o}",
                    )
                )
            cap = e.xattrs.get(_CAP_XATTR)
            if cap is not None:
                out.append(
                    _finding(
                        stack,
                        Severity.MEDIUM,
                        "file-capability",
                        "file capabilities (security.capability)",
                        loc.layer,
                        path,
                        "",
                        detail=f"xattr {cap.hex()}",
                    )
                )
        # Symlinks are always 0777; device nodes such as /dev/null are world-writable by design.
        quiet = (EntryKind.SYMLINK, EntryKind.CHAR, EntryKind.BLOCK)
        if e.kind not in quiet and e.mode & 0o002:
            if e.kind is EntryKind.DIR and e.mode & 0o1000:
                continue  # sticky world-writable dirs (/tmp) are by design
            out.append(
                _finding(
                    stack,
                    Severity.MEDIUM,
                    "world-writable",
                    f"world-writable {e.kind.value}",
                    loc.layer,
                    path,
                    "",
                    detail=f"mode {e.mode:04o}",
                )
            )
    return out
