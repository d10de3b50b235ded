"""``lamina report``: one self-contained HTML page a person can look at.

Inline CSS and SVG only: no script, no font, no network fetch, so the page renders the same
offline, in a browser with JavaScript off, and as an attachment. Sections: the layer stack as
a bar chart (one bar per layer, its size and instruction), per-layer changes, findings by
severity, and waste. Every value is HTML-escaped; image content never becomes markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Final

from lamina.forensics.rules import Severity
from lamina.forensics.secrets import Finding
from lamina.forensics.stack import Stack
from lamina.forensics.story import LayerStory
from lamina.forensics.waste import WasteResult

_COLOURS: Final = {
    Severity.CRITICAL: "#7f1d1d",
    Severity.HIGH: "#dc2626",
    Severity.MEDIUM: "#ea580c",
    Severity.LOW: "#ca8a04",
    Severity.INFO: "#64748b",
}
_MAX_PATHS: Final = 200  # per layer; a base layer lists thousands
_CSS: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#0f172a;background:#f8fafc}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #cbd5e1}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{border:1px solid #e2e8f0;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#e2e8f0}code{font:12px ui-monospace,monospace;word-break:break-all}
.sev{color:#fff;border-radius:3px;padding:0 5px;font-weight:600}
.num{text-align:right;font-variant-numeric:tabular-nums}
.chart text{font:11px ui-monospace,monospace;fill:#0f172a}
.summary span{display:inline-block;margin-right:18px}
summary{cursor:pointer;color:#1d4ed8}
"""


def _e(value: object) -> str:
    """``value`` as HTML text. A path that is not UTF-8 (its bytes kept as surrogate escapes)
    shows those bytes as ``\\xNN``: written as they are, the page could not be encoded."""
    text = str(value)
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(text, quote=True)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}PB"


def _chart(stories: Sequence[LayerStory]) -> str:
    bar_h, gap, label_w, bar_w = 22, 6, 60, 520
    height = len(stories) * (bar_h + gap) + gap
    biggest = max((s.size for s in stories), default=0) or 1
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 420}" '
        f'height="{height}" role="img" aria-label="layer sizes">'
    ]
    for i, s in enumerate(stories):
        y = gap + i * (bar_h + gap)
        w = max(2, round(bar_w * s.size / biggest))
        step = s.created_by if len(s.created_by) <= 60 else s.created_by[:59] + "…"
        parts.append(
            f'<g class="layer-bar" data-layer="{s.index}"><title>{_e(s.created_by)}</title>'
            f'<text x="0" y="{y + 15}">#{s.index}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="#2563eb" rx="2"/>'
            f'<text x="{label_w + w + 6}" y="{y + 15}">{_e(_size(s.size))}  {_e(step)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _paths(paths: Sequence[tuple[str, str]]) -> str:
    if not paths:
        return ""
    shown = "<br>".join(f"{_e(m)} /{_e(p)}" for m, p in paths[:_MAX_PATHS])
    more = f"<br>… and {len(paths) - _MAX_PATHS} more" if len(paths) > _MAX_PATHS else ""
    noun = "path" if len(paths) == 1 else "paths"
    return f"<details><summary>{len(paths)} {noun}</summary><code>{shown}{more}</code></details>"


def _changes(stories: Sequence[LayerStory], paths: Sequence[Sequence[tuple[str, str]]]) -> str:
    rows = "".join(
        f"<tr><td>{s.index}</td><td><code>{_e(s.created_by)}</code></td>"
        f'<td class="num">{_e(_size(s.size))}</td><td class="num">{s.added}</td>'
        f'<td class="num">{s.modified}</td><td class="num">{s.metadata}</td>'
        f'<td class="num">{s.readded}</td>'
        f'<td class="num">{s.deleted}</td><td class="num">{s.hidden}</td>'
        f"<td>{_paths(p)}</td></tr>"
        for s, p in zip(stories, paths, strict=True)
    )
    return (
        "<table><tr><th>#</th><th>instruction</th><th>size</th><th>added</th><th>modified</th>"
        "<th>chmod/chown</th><th>re-added</th><th>deleted</th><th>hidden</th><th>what</th></tr>"
        f"{rows}</table>"
    )


def _findings(findings: Sequence[Finding]) -> str:
    if not findings:
        return "<p>No findings.</p>"
    rows = []
    for f in findings:
        colour = _COLOURS[f.severity]
        where = f"/{f.path}" if f.path else "(config)"
        layer = "" if f.layer is None else str(f.layer)
        extra = f"<br>hidden by {_e(f.hidden_by)}" if f.hidden_by else ""
        rows.append(
            f'<tr class="finding" data-severity="{f.severity.label}">'
            f'<td><span class="sev" style="background:{colour}">{f.severity.label}</span></td>'
            f"<td>{_e(f.rule)}</td><td>{_e(f.title)}{extra}</td><td>{layer}</td>"
            f"<td><code>{_e(where)}</code></td><td><code>{_e(f.match)}</code></td>"
            f"<td><code>{_e(f.recover)}</code></td></tr>"
        )
    return (
        "<table><tr><th>severity</th><th>rule</th><th>what</th><th>layer</th><th>path</th>"
        f"<th>match</th><th>inspect</th></tr>{''.join(rows)}</table>"
    )


def _waste(w: WasteResult) -> str:
    head = (
        f'<p class="summary"><span>efficiency <b>{w.efficiency:.1%}</b></span>'
        f"<span>reclaimable <b>{_e(_size(w.reclaimable_bytes))}</b></span>"
        f"<span>deleted {_e(_size(w.deleted_bytes))}</span>"
        f"<span>overwritten {_e(_size(w.overwritten_bytes))}</span>"
        f"<span>identical re-adds {_e(_size(w.identical_bytes))}</span></p>"
    )
    rows = "".join(
        f"<tr><td><code>/{_e(p.path)}</code></td><td class='num'>{len(p.copies)}</td>"
        f"<td class='num'>{_e(_size(p.reclaimable))}</td><td>"
        + ", ".join(f"layer {c.layer}: {c.fate}" for c in p.copies)
        + "</td></tr>"
        for p in w.paths[:50]
    )
    return head + (
        "<table><tr><th>path</th><th>copies</th><th>reclaimable</th><th>copies' fate</th></tr>"
        f"{rows}</table>"
        if rows
        else "<p>Nothing reclaimable.</p>"
    )


def render(
    *,
    stack: Stack,
    stories: Sequence[LayerStory],
    paths: Sequence[Sequence[tuple[str, str]]],
    findings: Sequence[Finding],
    waste: WasteResult,
) -> str:
    """The page; ``paths`` is :func:`lamina.forensics.story.layer_paths` of the stack."""
    counts = {s: sum(1 for f in findings if f.severity is s) for s in Severity}
    summary = " ".join(
        f'<span class="sev" style="background:{_COLOURS[s]}">{counts[s]} {s.label}</span>'
        for s in sorted(Severity, reverse=True)
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>lamina report: {_e(stack.name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>lamina report: <code>{_e(stack.name)}</code></h1>"
        f"<p>image <code>{_e(stack.image_id)}</code> · {len(stack.layers)} layers · "
        f"source {_e(stack.source)}</p><p>{summary}</p>"
        f'<h2>Layers</h2><div id="layers">{_chart(stories)}</div>'
        f'<h2>Changes per layer</h2><div id="changes">{_changes(stories, paths)}</div>'
        f'<h2>Findings</h2><div id="findings">{_findings(findings)}</div>'
        f'<h2>Waste</h2><div id="waste">{_waste(waste)}</div>'
        "</body></html>\n"
    )
