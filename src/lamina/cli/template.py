"""The subset of Go's text/template that people type into ``--format``, with docker's functions.

Supported, as Go runs them over decoded JSON (maps): text; ``{{.}}``, ``{{.A.B}}``, a missing
key is ``<no value>``; variables ``$`` (the data), ``{{$x := ...}}``, ``{{$x = ...}}``,
``$x.A``, scoped to the block that declared them; ``{{if}}`` / ``{{with}}`` with ``{{else}}``,
``{{else if}}`` and ``{{else with}}``; ``{{range .X}}``, ``{{range $e := .X}}``,
``{{range $i, $e := .X}}`` over lists and maps (sorted keys), with ``{{else}}``,
``{{break}}`` and ``{{continue}}``; pipelines ``{{.X | printf "%q"}}``; parenthesised
arguments ``{{if eq (len .X) 1}}``; literals: strings ``"a\\n"`` and ```raw```, characters
``'a'``, numbers ``-3 1.5 0x1F 1e3 1_000``, ``true``, ``false``, ``nil``; comments
``{{/* ... */}}`` and the trim markers ``{{-`` / ``-}}``. Functions: Go's ``and or not eq ne
lt le gt ge len index slice print printf println html js urlquery`` (``and``/``or`` return the
deciding value and short-circuit, as Go 1.18+; ``printf`` has Go's verbs ``%v %s %d %q %x %X %o
%b %c %U %t %e %f %g`` with flags, width and precision, and Go's ``%!d(string=x)`` error forms)
and docker's ``json split join title lower upper pad truncate``. Values print as Go's ``fmt``
prints them (maps as ``map[k:v]``, lists as ``[a b]``), so output matches ``docker inspect -f``.
Not supported: ``define``/``template``/``block``, ``call``, range over an integer (Go 1.22+;
docker 20.10 refuses it). Any error is a :class:`TemplateError`, a
:class:`~lamina.errors.UsageError` (exit 2), worded as Go words it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from lamina.cli.template_parse import Command, Node, Operand, Pipe, TemplateError, line_of, parse

__all__ = ["TemplateError", "go_str", "render_template"]


_DIGITS: Final = "0123456789"  # str.isdigit() also takes "²", which int() refuses


class _FuncError(Exception):
    """A function's own failure; reported as Go's ``error calling NAME: ...``."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NO_FINAL = object()  # no value piped into a command


def go_str(value: Any, *, nil: str = "<no value>") -> str:
    """Format a value as Go's fmt %v does for decoded JSON (``nil`` is how null prints)."""
    if value is None:
        return nil
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # a JSON integer may have been decoded as a float
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else _shortest(value)
    if isinstance(value, Mapping):
        items = sorted(value.items())
        return "map[" + " ".join(f"{k}:{go_str(v, nil=nil)}" for k, v in items) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v, nil=nil) for v in value) + "]"
    return str(value)


def _shortest(f: float) -> str:
    """Go's %v for a float: shortest digits, exponent form below 1e-4 or from 1e6."""
    r = repr(f)
    if r in ("inf", "-inf", "nan"):
        return {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}[r]
    digits = r.lstrip("-").split("e")[0].replace(".", "").strip("0") or "0"
    sci = f"{f:.{len(digits) - 1}e}"
    exp = int(sci.split("e")[1])
    return sci if exp < -4 or exp >= 6 else f"{f:.{max(len(digits) - 1 - exp, 0)}f}"


def _go_type(v: Any) -> str:
    names = {bool: "bool", int: "int", float: "float64", str: "string"}
    if type(v) in names:
        return names[type(v)]
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    return "[]interface {}" if isinstance(v, list | tuple) else type(v).__name__


# printf ---------------------------------------------------------------------------------------


# Go's fmt refuses a width or precision past a million (tooLarge): no template can ask for a
# string of gigabytes.
_FMT_MAX = 1_000_000


def _rune(code: int) -> str:
    """Go's rune of ``code``: U+FFFD for what is no Unicode scalar value (a surrogate, out of
    range), as ``%c`` prints it."""
    return chr(code) if 0 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"


def _fmt_one(flags: str, width: str, prec: str, verb: str, arg: Any) -> str:
    spec = "%" + flags + width + ("." + prec if prec != "" else "")
    if arg is None:
        return "<nil>" if verb == "v" else f"%!{verb}(<nil>)"
    if isinstance(arg, Mapping):
        pairs = sorted(arg.items())
        return "map[" + " ".join(
            _fmt_one(flags, width, prec, verb, k) + ":" + _fmt_one(flags, width, prec, verb, v)
            for k, v in pairs
        ) + "]"  # fmt: skip
    if isinstance(arg, list | tuple):
        return "[" + " ".join(_fmt_one(flags, width, prec, verb, v) for v in arg) + "]"
    pad = "%" + flags.replace("0", "") + width + "s"
    if isinstance(arg, bool):
        if verb in "vt":
            return pad % ("true" if arg else "false")
    elif isinstance(arg, int):
        if verb in "vd":
            return (spec + "d") % arg
        if verb in "xXo":
            return (spec + verb) % arg
        if verb == "b":
            return pad % format(arg, "b")
        if verb == "c":
            return pad % _rune(arg)
        if verb == "q":
            return pad % ("'" + json.dumps(_rune(arg), ensure_ascii=False)[1:-1] + "'")
        if verb == "U":
            return pad % f"U+{arg:04X}"
    elif isinstance(arg, float):
        if verb in "eEfFgG" and (prec != "" or verb not in "gG"):
            return (spec + verb) % arg
        if verb in "vgG":
            return pad % _shortest(arg)
    elif isinstance(arg, str):
        if verb in "vs":
            return (spec + "s") % arg
        if verb == "q":
            return pad % json.dumps(arg, ensure_ascii=False)
        if verb in "xX":
            text = arg[: int(prec)] if prec else arg
            hexed = text.encode().hex()
            return pad % (hexed.upper() if verb == "X" else hexed)
    return f"%!{verb}({_go_type(arg)}={go_str(arg, nil='<nil>')})"


def _printf(fmt: str, *args: Any) -> str:
    """Go's fmt.Sprintf for the verbs and flags scripts use."""
    out: list[str] = []
    i, n, used = 0, 0, 0
    while i < len(fmt):
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        flags = width = prec = ""
        while i < len(fmt) and fmt[i] in "-+# 0":
            flags += fmt[i]
            i += 1
        while i < len(fmt) and (fmt[i] in _DIGITS or (fmt[i] == "*" and not width)):
            if fmt[i] == "*" and n < len(args) and isinstance(args[n], int):
                if abs(args[n]) > _FMT_MAX:
                    out.append("%!(BADWIDTH)")  # Go's intFromArg: tooLarge
                else:
                    width = str(args[n])
                n += 1
                if width.startswith("-"):
                    flags, width = flags + "-", width[1:]
            else:
                if width and int(width) > _FMT_MAX:
                    i = len(fmt)  # Go's parsenum: "crazy long number", the rest is eaten
                    break
                width += fmt[i]
            i += 1
        if fmt[i : i + 1] == ".":
            i += 1
            while i < len(fmt) and fmt[i] in _DIGITS:
                if prec and int(prec) > _FMT_MAX:
                    i = len(fmt)
                    break
                prec += fmt[i]
                i += 1
            prec = prec or "0"
        if i >= len(fmt):
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif n >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_fmt_one(flags, width, prec, verb, args[n]))
            n += 1
        used = n
    if used < len(args):
        extra = ", ".join(f"{_go_type(a)}={go_str(a, nil='<nil>')}" for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _sprint(*args: Any) -> str:
    """Go's fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(a if isinstance(a, str) else go_str(a, nil="<nil>"))
    return "".join(out)


# functions ------------------------------------------------------------------------------------


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float | str):
        return {int: "int", float: "float", str: "string"}[type(v)]
    return "other"  # nil, lists and maps: Go's invalidKind


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise _FuncError("missing argument for comparison")
    for b in others:
        if _kind(a) != _kind(b):
            if a is not None and b is not None:
                raise _FuncError("incompatible types for comparison")
        elif _kind(a) == "other":
            if a is not None and b is not None:
                raise _FuncError(f"non-comparable type {go_str(b)}: {_go_type(b)}")
            if a is None and b is None:
                return True
        elif a == b:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    if "bool" in (_kind(a), _kind(b)) or "other" in (_kind(a), _kind(b)):
        raise _FuncError("invalid type for comparison")
    if _kind(a) != _kind(b):
        raise _FuncError("incompatible types for comparison")
    return bool(a < b)


def _index(item: Any, *keys: Any) -> Any:
    cur = item
    for k in keys:
        if cur is None:
            raise _FuncError("index of untyped nil")
        if isinstance(cur, Mapping):
            if not isinstance(k, str):
                raise _FuncError(f"value has type {_go_type(k)}; should be string")
            cur = cur.get(k)
        elif isinstance(cur, list | tuple | str):
            if not isinstance(k, int) or isinstance(k, bool):
                raise _FuncError(f"cannot index slice/array with type {_go_type(k)}")
            if not 0 <= k < len(cur):
                raise _FuncError(f"index out of range: {k}")
            cur = ord(cur[k]) if isinstance(cur, str) else cur[k]
        else:
            raise _FuncError(f"can't index item of type {_go_type(cur)}")
    return cur


def _slice(item: Any, *idx: Any) -> Any:
    if not isinstance(item, list | tuple | str):
        raise _FuncError(f"can't slice item of type {_go_type(item)}")
    if len(idx) > 2 + (not isinstance(item, str)):
        raise _FuncError(f"too many slice indexes: {len(idx)}")
    bounds = [i if isinstance(i, int) else -1 for i in idx]
    for i in bounds:
        if not 0 <= i <= len(item):
            raise _FuncError(f"index out of range: {i}")
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if lo > hi:
        raise _FuncError(f"invalid slice index: {lo} > {hi}")
    return item[lo:hi]


def _len(v: Any) -> int:
    if v is None:
        return 0
    if isinstance(v, str | list | tuple | Mapping):
        return len(v)
    raise _FuncError(f"len of type {_go_type(v)}")


def _title(s: Any) -> str:
    """Go's strings.Title: upper-case the first letter of each word, leave the rest."""
    out, prev = [], " "
    for ch in go_str(s):
        out.append(ch.upper() if not (prev.isalnum() or prev == "_") else ch)
        prev = ch
    return "".join(out)


def _js(*args: Any) -> str:
    esc = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E"}
    esc |= {"&": "\\u0026", "=": "\\u003D"}
    return "".join(esc.get(c, c if c.isprintable() else f"\\u{ord(c):04X}") for c in _sprint(*args))


def _html(*args: Any) -> str:
    esc = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;", "\0": "\ufffd"}
    return "".join(esc.get(c, c) for c in _sprint(*args))


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_sprint(*args), safe="")


def _wrong_type(value: Any, want: str) -> _FuncError:
    return _FuncError(f"wrong type for value; expected {want}; got {_go_type(value)}")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong_type(value, "string")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _wrong_type(value, "int")
    return value


def _pad(s: Any, prefix: Any, suffix: Any) -> str:
    text = _str(s)
    if not text:
        return text
    before, after = _int(prefix), _int(suffix)
    if max(before, after) > _FMT_MAX:
        # Go would try to allocate it; a CLI template is refused instead of eating the memory
        raise _FuncError(f"padding of {max(before, after)} is more than {_FMT_MAX}")
    return " " * before + text + " " * after


def _split(s: Any, sep: Any) -> list[str]:
    text = go_str(s)
    return list(text) if sep == "" else text.split(go_str(sep))


# name -> (function, fixed args, variadic). `and` / `or` are evaluated lazily in _call.
_FUNCS: dict[str, tuple[Callable[..., Any], int, bool]] = {
    "and": (lambda *a: a, 1, True),
    "or": (lambda *a: a, 1, True),
    "not": (lambda v: not v, 1, False),
    "eq": (_eq, 1, True),
    "ne": (lambda a, b: not _eq(a, b), 2, False),
    "lt": (_lt, 2, False),
    "le": (lambda a, b: _lt(a, b) or _eq(a, b), 2, False),
    "gt": (lambda a, b: not (_lt(a, b) or _eq(a, b)), 2, False),
    "ge": (lambda a, b: not _lt(a, b), 2, False),
    "len": (_len, 1, False),
    "index": (_index, 1, True),
    "slice": (_slice, 1, True),
    "print": (_sprint, 0, True),
    "printf": (lambda f, *a: _printf(_str(f), *a), 1, True),
    "println": (lambda *a: " ".join(go_str(x, nil="<nil>") for x in a) + "\n", 0, True),
    "html": (_html, 0, True),
    "js": (_js, 0, True),
    "urlquery": (_urlquery, 0, True),
    # docker/cli templates.basicFunctions
    "json": (lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False), 1, False),
    "split": (_split, 2, False),
    "join": (lambda v, sep: sep.join(go_str(x) for x in (v or [])), 2, False),
    "title": (_title, 1, False),
    "lower": (lambda v: go_str(v).lower(), 1, False),
    "upper": (lambda v: go_str(v).upper(), 1, False),
    "pad": (_pad, 3, False),
    "truncate": (lambda s, n: _str(s)[: _int(n)], 2, False),
}
_FUNC_NAMES = frozenset(_FUNCS)


# evaluation -----------------------------------------------------------------------------------


class _Var:
    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Any) -> None:
        self.name = name
        self.value = value


class _State:
    def __init__(self, src: str, data: Any) -> None:
        self.src = src
        self.vars = [_Var("$", data)]  # innermost last
        self.out: list[str] = []

    def fail(self, pos: int, at: str, msg: str) -> TemplateError:
        col = pos - (self.src.rfind("\n", 0, pos) + 1)
        where = f"{line_of(self.src, pos)}:{col}"
        return TemplateError(f'template: :{where}: executing "" at <{at}>: {msg}')

    def var(self, name: str) -> _Var:
        for slot in reversed(self.vars):
            if slot.name == name:
                return slot
        raise TemplateError(f"template: undefined variable: {name}")

    def walk(self, nodes: list[Node], dot: Any) -> None:
        for n in nodes:
            if n.kind == "text":
                self.out.append(n.text)
            elif n.kind == "action":
                assert n.pipe is not None
                v = self.pipe(n.pipe, dot)
                if not n.pipe.decl:
                    self.out.append(v if isinstance(v, str) else go_str(v))
            elif n.kind in ("if", "with"):
                mark = len(self.vars)
                assert n.pipe is not None
                v = self.pipe(n.pipe, dot)
                if v:
                    self.walk(n.body, v if n.kind == "with" else dot)
                else:
                    self.walk(n.else_body, dot)
                del self.vars[mark:]
            elif n.kind == "range":
                self.range(n, dot)
            else:
                raise _Break() if n.kind == "break" else _Continue()

    def range(self, n: Node, dot: Any) -> None:
        assert n.pipe is not None
        mark = len(self.vars)
        seq = self.pipe(n.pipe, dot)
        items: Iterator[tuple[Any, Any]]
        if isinstance(seq, Mapping):
            items = ((k, seq[k]) for k in sorted(seq))
        elif isinstance(seq, list | tuple):
            items = enumerate(seq)
        elif seq is None:
            items = iter(())
        else:
            raise self.fail(n.pipe.pos, n.pipe.src, f"range can't iterate over {go_str(seq)}")
        # `$e :=` is the element; `$i, $e :=` the index (or key) and the element.
        slots = [self.var(name) for name in n.pipe.decl]
        inner = len(self.vars)
        empty = True
        for key, elem in items:
            empty = False
            if slots:
                slots[-1].value = elem
                slots[0].value = key if len(slots) > 1 else elem
            try:
                self.walk(n.body, elem)
            except _Break:
                break
            except _Continue:
                pass
            finally:
                del self.vars[inner:]
        if empty:
            self.walk(n.else_body, dot)
        del self.vars[mark:]

    def pipe(self, p: Pipe, dot: Any) -> Any:
        value: Any = _NO_FINAL
        for cmd in p.cmds:
            value = self.command(cmd, dot, value)
        for name in p.decl:
            if p.assign:
                last = p.cmds[-1]
                try:
                    self.var(name).value = value
                except TemplateError:
                    raise self.fail(last.pos, last.src, f"undefined variable: {name}") from None
            else:
                self.vars.append(_Var(name, value))
        return value

    def command(self, cmd: Command, dot: Any, final: Any) -> Any:
        head, args = cmd.args[0], cmd.args[1:]
        if head.kind == "ident":
            return self.call(cmd, head.value, args, dot, final)
        has_args = bool(args) or final is not _NO_FINAL
        if head.kind in ("field", "var", "chain") and head.fields:
            method = self.method(head, dot) if has_args else None
            if method is not None:
                values = [self.operand(a, dot) for a in args]
                if final is not _NO_FINAL:
                    values.append(final)
                try:
                    return method(*values)
                except TypeError:
                    msg = f"wrong number of args for {head.fields[-1]}: got {len(values)}"
                    raise self.fail(head.pos, head.src, msg) from None
            return self.fields(head, dot, has_args)
        if has_args:
            raise self.fail(head.pos, head.src, f"can't give argument to non-function {head.src}")
        if head.kind == "nil":
            raise self.fail(head.pos, head.src, "nil is not a command")
        return self.operand(head, dot)

    def operand(self, arg: Operand, dot: Any) -> Any:
        if arg.kind == "dot":
            return dot
        if arg.kind in ("field", "var", "chain"):
            return self.fields(arg, dot, False)
        if arg.kind == "ident":
            return self.call(Command(arg.pos, [arg], arg.src), arg.value, [], dot, _NO_FINAL)
        return arg.value  # a literal or nil

    def fields(self, arg: Operand, dot: Any, has_args: bool) -> Any:
        if arg.kind == "var":
            cur = self.var(arg.value).value
        elif arg.kind == "chain":
            cur = self.pipe(arg.value, dot)
        else:
            cur = dot
        for i, name in enumerate(arg.fields):
            if isinstance(cur, Mapping):
                if has_args and i == len(arg.fields) - 1:
                    raise self.fail(arg.pos, arg.src, f"{name} is not a method but has arguments")
                cur = cur.get(name)
            elif cur is not None:
                msg = f"can't evaluate field {name} in type interface {{}}"
                raise self.fail(arg.pos, arg.src, msg)
        return cur

    def method(self, arg: Operand, dot: Any) -> Callable[..., Any] | None:
        """The Go method ``arg`` names on a :class:`Record` (``.Label "k"``), if it does."""
        receiver = self.fields(
            Operand(arg.kind, arg.pos, arg.src, arg.value, arg.fields[:-1]), dot, False
        )
        methods = getattr(receiver, "methods", None)
        return methods.get(arg.fields[-1]) if isinstance(methods, Mapping) else None

    def call(self, cmd: Command, name: str, args: list[Operand], dot: Any, final: Any) -> Any:
        fn, fixed, variadic = _FUNCS[name]
        count = len(args) + (final is not _NO_FINAL)
        if count < fixed or (count > fixed and not variadic):
            want = f"at least {fixed}" if variadic else str(fixed)
            msg = f"wrong number of args for {name}: want {want} got {count}"
            raise self.fail(cmd.args[0].pos, name, msg)
        values: list[Any] = []
        for a in args:
            values.append(self.operand(a, dot))
            if name in ("and", "or") and bool(values[-1]) == (name == "or"):
                return values[-1]  # short-circuit, as Go 1.18+
        if final is not _NO_FINAL:
            values.append(final)
        if name in ("and", "or"):
            return values[-1]
        try:
            return fn(*values)
        except _FuncError as exc:
            raise self.fail(cmd.pos, cmd.src, f"error calling {name}: {exc}") from None


class Record(dict[str, Any]):
    """Template data with Go methods besides its fields, as docker's formatters have them
    (ps: ``{{.Label "com.example.k"}}``); ``{{json .}}`` and the fields see the dict alone."""

    def __init__(
        self,
        fields: Mapping[str, Any],
        methods: Mapping[str, Callable[..., Any]],
        header_methods: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        super().__init__(fields)
        self.methods = dict(methods)
        # What the methods print in a ``table`` format's header row.
        self.header_methods = dict(header_methods or {})


def render_template(template: str, data: Any) -> str:
    """Render ``template`` against ``data`` (decoded JSON)."""
    src = template.replace("\\n", "\n").replace("\\t", "\t")
    state = _State(src, data)
    try:
        state.walk(parse(src, _FUNC_NAMES), data)
    except RecursionError:  # Go's parser stops at a nesting depth of 10000
        raise TemplateError("template: max expression depth exceeded") from None
    return "".join(state.out)
