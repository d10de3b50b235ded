"""The subset of Go's text/template that people type into ``--format``.

Supported: text, ``{{.A.B}}``, ``{{.}}``, ``{{json .X}}``, ``{{index .M "k"}}`` (and list
indexes), ``{{range .X}}...{{end}}`` (``.`` is the element), ``{{if .X}}...{{else}}...{{end}}``,
``{{join .X ", "}}``, ``{{upper .X}}``, ``{{lower .X}}``, ``{{len .X}}``, ``{{println ...}}``,
pipelines ``{{.X | json}}``, and the trim markers ``{{-`` / ``-}}``. Values print the way Go's
``fmt`` prints them (maps as ``map[k:v]``, lists as ``[a b]``, nil as ``<no value>``), so
output matches ``docker inspect -f``. Any error is a :class:`~lamina.errors.UsageError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from msgspec import Struct, field

from lamina.errors import UsageError

_ACTION = re.compile(r"\{\{(-\s*)?(.*?)(\s*-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(`[^`]*`)|(\|)|(-?\d+)|([^\s|]+))')


class TemplateError(UsageError):
    pass


class _Node(Struct):
    kind: str  # text | expr | range | if
    text: str = ""
    args: list[list[str]] = field(default_factory=list)  # pipeline: commands of tokens
    body: list[_Node] = field(default_factory=list)
    else_body: list[_Node] = field(default_factory=list)


def _tokenize(src: str) -> list[list[str]]:
    commands: list[list[str]] = [[]]
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None or m.end() == pos:
            if src[pos:].strip() == "":
                break
            raise TemplateError(f"template: bad syntax near {src[pos:]!r}")
        pos = m.end()
        if m.group(3):
            commands.append([])
        else:
            tok = next(g for g in m.groups() if g is not None)
            commands[-1].append(tok)
    if any(not c for c in commands):
        raise TemplateError(f"template: missing command in {src!r}")
    return commands


def _parse(template: str) -> list[_Node]:
    root: list[_Node] = []
    # Each open block: (the node, the list we return to at its {{end}}, whether in {{else}}).
    stack: list[tuple[_Node, list[_Node], bool]] = []
    current = root
    pos = 0
    pending_trim = False
    for m in _ACTION.finditer(template):
        text = template[pos : m.start()]
        if pending_trim:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        if text:
            current.append(_Node("text", text=text))
        pending_trim = bool(m.group(3))
        pos = m.end()
        body = m.group(2).strip()
        if body.startswith("/*"):
            continue
        word = body.split(None, 1)[0] if body else ""
        if word in ("range", "if"):
            node = _Node(word, args=_tokenize(body[len(word) :]))
            current.append(node)
            stack.append((node, current, False))
            current = node.body
        elif word == "else":
            if not stack or stack[-1][2]:
                raise TemplateError("template: unexpected {{else}}")
            node, parent, _ = stack[-1]
            stack[-1] = (node, parent, True)
            current = node.else_body
        elif word == "end":
            if not stack:
                raise TemplateError("template: unexpected {{end}}")
            _, current, _ = stack.pop()
        else:
            if not body:
                raise TemplateError("template: missing value for command")
            current.append(_Node("expr", args=_tokenize(body)))
    if stack:
        raise TemplateError(
            f"template: unexpected EOF: {{{{{stack[-1][0].kind}}}}} has no {{{{end}}}}"
        )
    tail = template[pos:]
    if pending_trim:
        tail = tail.lstrip()
    if tail:
        current.append(_Node("text", text=tail))
    return root


def go_str(value: Any) -> str:
    """Format a value as Go's fmt %v does for decoded JSON."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_str(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    return str(value)


def _field(value: Any, path: str) -> Any:
    cur = value
    for part in path.split(".")[1:]:
        if part == "":
            continue
        if isinstance(cur, Mapping):
            if part not in cur:
                return None
            cur = cur[part]
        elif cur is None:
            return None
        else:
            raise TemplateError(
                f"template: can't evaluate field {part} in type {type(cur).__name__}"
            )
    return cur


def _index(value: Any, *keys: Any) -> Any:
    cur = value
    for k in keys:
        if isinstance(cur, Mapping):
            cur = cur.get(k)
        elif isinstance(cur, list):
            try:
                cur = cur[int(k)]
            except (ValueError, IndexError) as exc:
                raise TemplateError(f"template: index out of range: {k}") from exc
        else:
            raise TemplateError(f"template: can't index item of type {type(cur).__name__}")
    return cur


def _json(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


_FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "index": _index,
    "join": lambda v, sep: sep.join(go_str(x) for x in (v or [])),
    "upper": lambda v: go_str(v).upper(),
    "lower": lambda v: go_str(v).lower(),
    "len": lambda v: len(v or []),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "print": lambda *a: "".join(go_str(x) for x in a),
    "title": lambda v: go_str(v).title(),
    "split": lambda v, sep: go_str(v).split(sep),
}


def _arg(tok: str, dot: Any) -> Any:
    if tok.startswith('"'):
        return json.loads(tok)
    if tok.startswith("`"):
        return tok[1:-1]
    if tok.startswith("."):
        return dot if tok == "." else _field(dot, tok)
    if re.fullmatch(r"-?\d+", tok):
        return int(tok)
    if tok in ("true", "false"):
        return tok == "true"
    raise TemplateError(f'template: function "{tok}" not defined')


def _eval(commands: list[list[str]], dot: Any) -> Any:
    result: Any = None
    for i, cmd in enumerate(commands):
        head, *rest = cmd
        if head in _FUNCS:
            args = [_arg(t, dot) for t in rest]
            if i > 0:
                args.append(result)
            try:
                result = _FUNCS[head](*args)
            except TypeError as exc:
                raise TemplateError(f"template: wrong number of args for {head}") from exc
        else:
            if rest:
                raise TemplateError(f"template: can't give argument to non-function {head}")
            result = _arg(head, dot)
    return result


def _truthy(v: Any) -> bool:
    return bool(v)


def _render(nodes: list[_Node], dot: Any, out: list[str]) -> None:
    for n in nodes:
        if n.kind == "text":
            out.append(n.text)
        elif n.kind == "expr":
            v = _eval(n.args, dot)
            out.append(v if isinstance(v, str) else go_str(v))
        elif n.kind == "if":
            _render(n.body if _truthy(_eval(n.args, dot)) else n.else_body, dot, out)
        elif n.kind == "range":
            seq = _eval(n.args, dot)
            items = list(seq.values()) if isinstance(seq, Mapping) else list(seq or [])
            if not items:
                _render(n.else_body, dot, out)
            for item in items:
                _render(n.body, item, out)


def render_template(template: str, data: Any) -> str:
    """Render ``template`` against ``data`` (decoded JSON)."""
    nodes = _parse(template.replace("\\n", "\n").replace("\\t", "\t"))
    out: list[str] = []
    _render(nodes, data, out)
    return "".join(out)
