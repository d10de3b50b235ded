"""Lexer and parser for lamina's Go text/template subset (see :mod:`lamina.cli.template`).

The template is lexed into tokens, then parsed by recursive descent into the nodes below, the
shapes of Go's ``text/template/parse``. Positions are byte offsets into the template, so errors
read as Go's: ``template: :LINE: ...`` for syntax, ``template: :LINE:COL: executing ...`` when
running.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct, field

from lamina.errors import UsageError

_SPACE = " \t\r\n"
_KEYWORDS = frozenset(
    ["if", "range", "with", "else", "end", "break", "continue", "define", "template", "block"]
)
_CONTROL = ("if", "range", "with")
_NOT_EXECUTABLE = ("bool", "dot", "nil", "number", "string")


class TemplateError(UsageError):
    pass


class Tok(Struct):
    kind: str  # text open close field var ident keyword string number bool nil | ( ) , := = eof
    val: Any = None
    pos: int = 0
    spaced: bool = False  # whitespace before it (`(x).A` chains, `(x) .A` does not)
    fields: list[str] = field(default_factory=list)  # `.A.B`, `$x.A.B`
    chain_pos: int = -1  # where Go reports a chain: its first link after the head


# Operands. `pos` is where Go reports them (for a chain `.A.B`, the `.B`).
class Operand(Struct):
    kind: str  # dot nil bool number string field var ident chain
    pos: int
    src: str
    value: Any = None  # literal value, variable or function name, or the chain's Pipe
    fields: list[str] = field(default_factory=list)


class Command(Struct):
    pos: int
    args: list[Operand]
    src: str = ""


class Pipe(Struct):
    pos: int
    cmds: list[Command]
    src: str = ""
    decl: list[str] = field(default_factory=list)
    assign: bool = False  # `$x = ...` rather than `$x := ...`


class Node(Struct):
    kind: str  # text action if with range break continue
    pos: int = 0
    text: str = ""
    pipe: Pipe | None = None
    body: list[Node] = field(default_factory=list)
    else_body: list[Node] = field(default_factory=list)


def line_of(src: str, pos: int) -> int:
    return src.count("\n", 0, pos) + 1


def _unquote(body: str) -> str:
    """Go's strconv.Unquote for the inside of a double-quoted or character literal."""
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        esc = body[i + 1 : i + 2]
        width = {"x": 2, "u": 4, "U": 8}.get(esc, 0)
        if esc in simple:
            out.append(simple[esc])
        elif esc in "\\\"'" and esc:
            out.append(esc)
        elif width and len(body) >= i + 2 + width:
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += width
        elif esc in "01234567" and esc:
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 2
        else:
            raise ValueError(esc)
        i += 2
    return "".join(out)


def _is_space(ch: str) -> bool:
    return ch != "" and ch in _SPACE


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _number_end(src: str, pos: int) -> int:
    """The end of the number at ``pos``: digits, letters (0x, e), `_`, `.`, an exponent's sign."""
    end = pos + 1
    hexa = src[pos : pos + 2].lower() == "0x"
    while end < len(src):
        ch = src[end]
        if not (_is_word(ch) or ch == "." or (ch in "+-" and src[end - 1] in "eE" and not hexa)):
            break
        end += 1
    return end


def _number(text: str) -> int | float:
    clean = text.replace("_", "")
    try:
        return int(clean, 0)
    except ValueError:
        return float(clean)


class _Lexer:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks: list[Tok] = []

    def fail(self, pos: int, msg: str) -> TemplateError:
        return TemplateError(f"template: :{line_of(self.src, pos)}: {msg}")

    def run(self) -> list[Tok]:
        src, pos, trim_next = self.src, 0, False
        while pos < len(src):
            start = src.find("{{", pos)
            end = len(src) if start < 0 else start
            text = src[pos:end]
            if trim_next:
                text = text.lstrip(_SPACE)
            left_trim = start >= 0 and src[start + 2 : start + 3] == "-"
            left_trim = left_trim and _is_space(src[start + 3 : start + 4])
            if left_trim:
                text = text.rstrip(_SPACE)
            if text:
                self.toks.append(Tok("text", text, pos))
            if start < 0:
                break
            pos = start + (4 if left_trim else 2)
            if src.startswith("/*", pos):
                pos, trim_next = self.comment(pos)
            else:
                pos, trim_next = self.action(pos)
        self.toks.append(Tok("eof", None, len(src)))
        return self.toks

    def comment(self, pos: int) -> tuple[int, bool]:
        close = self.src.find("*/", pos + 2)
        if close < 0:
            raise self.fail(pos, "unclosed comment")
        after = self.src[close + 2 :]
        if after.startswith("}}"):
            return close + 4, False
        if _is_space(after[:1]) and after[1:].startswith("-}}"):
            return close + 6, True
        raise self.fail(pos, "comment ends before closing delimiter")

    def action(self, pos: int) -> tuple[int, bool]:
        src, toks, depth = self.src, self.toks, 0
        toks.append(Tok("open", None, pos))
        while True:
            spaced_from = pos
            while pos < len(src) and src[pos] in _SPACE:
                pos += 1
            spaced = pos > spaced_from
            rest = src[pos : pos + 3]
            if rest.startswith("}}") or (spaced and rest == "-}}"):
                if depth:
                    raise self.fail(pos, "unclosed left paren")
                toks.append(Tok("close", None, pos))
                return pos + len("}}") + (rest == "-}}"), rest == "-}}"
            if pos >= len(src):
                raise self.fail(pos, "unclosed action")
            ch, start = src[pos], pos
            nxt = src[pos + 1 : pos + 2]
            tok = Tok(ch, ch)
            if ch in "\"'":
                end = pos + 1
                while end < len(src) and src[end] not in (ch, "\n"):
                    end += 2 if src[end] == "\\" else 1
                if end >= len(src) or src[end] != ch:
                    what = "quoted string" if ch == '"' else "character constant"
                    raise self.fail(pos, f"unterminated {what}")
                try:
                    text = _unquote(src[pos + 1 : end])
                except ValueError as exc:
                    raise self.fail(pos, f"invalid syntax: {src[pos : end + 1]}") from exc
                if ch == "'" and len(text) != 1:
                    raise self.fail(pos, f"malformed character constant: {src[pos : end + 1]}")
                tok = Tok("string", text) if ch == '"' else Tok("number", ord(text))
                pos = end + 1
            elif ch == "`":
                end = src.find("`", pos + 1)
                if end < 0:
                    raise self.fail(pos, "unterminated raw quoted string")
                tok, pos = Tok("string", src[pos + 1 : end]), end + 1
            elif ch.isdigit() or (ch in "+-." and nxt.isdigit()):
                end = _number_end(src, pos)
                try:
                    tok = Tok("number", _number(src[pos:end]))
                except ValueError as exc:
                    raise self.fail(pos, f'bad number syntax: "{src[pos:end]}"') from exc
                pos = end
            elif ch in ".$" or _is_word(ch):
                end = pos + 1
                while _is_word(src[end : end + 1]):
                    end += 1
                word = src[pos:end]
                if word in ("true", "false"):
                    tok = Tok("bool", word == "true")
                elif word == "nil":
                    tok = Tok("nil")
                elif ch == "$":
                    tok = Tok("var", word)
                elif ch == ".":
                    tok = Tok("dot") if word == "." else Tok("field", None, fields=[word[1:]])
                else:
                    tok = Tok("keyword" if word in _KEYWORDS else "ident", word)
                pos = end
            elif ch == ":" and nxt == "=":
                tok, pos = Tok(":="), pos + 2
            elif ch in "|,=()":
                depth += {"(": 1, ")": -1}.get(ch, 0)
                if depth < 0:
                    raise self.fail(pos, "unexpected right paren")
                pos += 1
            else:
                raise self.fail(pos, f"unexpected {_quote(ch)} in command")
            tok.pos, tok.spaced = start, spaced
            toks.append(tok)
            if tok.kind in ("field", "var", ")"):
                pos = self.fields(tok, pos)

    def fields(self, tok: Tok, pos: int) -> int:
        """Absorb `.A.B` written right after a field, variable or `)`."""
        src = self.src
        while src[pos : pos + 1] == "." and _is_word(src[pos + 1 : pos + 2]):
            if len(tok.fields) == (tok.kind == "field"):
                tok.chain_pos = pos
            end = pos + 1
            while _is_word(src[end : end + 1]):
                end += 1
            tok.fields.append(src[pos + 1 : end])
            pos = end
        return pos


class _Parser:
    def __init__(self, src: str, funcs: frozenset[str]) -> None:
        self.src = src
        self.funcs = funcs
        self.toks = _Lexer(src).run()
        self.i = 0
        self.vars = ["$"]  # declared variables in scope, as Go checks them while parsing
        self.range_depth = 0

    def fail(self, tok: Tok, msg: str) -> TemplateError:
        return TemplateError(f"template: :{line_of(self.src, tok.pos)}: {msg}")

    def peek(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def expect_close(self, what: str) -> None:
        tok = self.next()
        if tok.kind != "close":
            raise self.fail(tok, f"unexpected {_describe(tok)} in {what}")

    def parse_list(self) -> tuple[list[Node], Tok]:
        """Nodes up to an `{{else` or `{{end` (returned with the keyword token) or the end."""
        nodes: list[Node] = []
        while True:
            tok = self.next()
            if tok.kind == "text":
                nodes.append(Node("text", tok.pos, text=tok.val))
                continue
            if tok.kind == "eof":
                return nodes, tok
            word = self.peek()
            if word.kind != "keyword":
                nodes.append(Node("action", word.pos, pipe=self.pipeline("command", "close")))
                continue
            self.next()
            if word.val in ("else", "end"):
                return nodes, word
            if word.val in _CONTROL:
                nodes.append(self.control(word))
            elif word.val in ("break", "continue"):
                if not self.range_depth:
                    raise self.fail(word, f"{{{{{word.val}}}}} outside {{{{range}}}}")
                self.expect_close(word.val)
                nodes.append(Node(word.val, word.pos))
            else:
                raise self.fail(word, f"{{{{{word.val}}}}} is not supported in --format")

    def control(self, word: Tok) -> Node:
        kind, mark = word.val, len(self.vars)
        node = Node(kind, word.pos, pipe=self.pipeline(kind, "close"))
        self.range_depth += kind == "range"
        node.body, term = self.parse_list()
        self.range_depth -= kind == "range"
        if term.kind == "eof":
            raise self.fail(term, "unexpected EOF")
        if term.val == "else":
            nested = self.peek()
            if nested.kind == "keyword" and nested.val == kind and kind in ("if", "with"):
                # `{{else if x}}` is `{{else}}{{if x}}...{{end}}`, sharing the outer `{{end}}`.
                node.else_body = [self.control(self.next())]
                del self.vars[mark:]
                return node
            self.expect_close("input")
            node.else_body, term = self.parse_list()
            if term.kind == "eof" or term.val != "end":
                raise self.fail(term, f"expected end; found {_describe(term)}")
        self.expect_close("end")
        del self.vars[mark:]
        return node

    def pipeline(self, context: str, end: str) -> Pipe:
        pipe = Pipe(self.peek().pos, [])
        while self.peek().kind == "var" and not self.peek().fields:
            after = self.toks[self.i + 1]
            if after.kind not in (":=", "=", ","):
                break
            pipe.decl.append(self.next().val)
            self.vars.append(pipe.decl[-1])  # an assigned `$x = ` is checked when run, as Go
            self.next()
            pipe.assign = after.kind == "="
            if after.kind != ",":
                break
            if context != "range" or len(pipe.decl) > 1:
                raise self.fail(after, f"too many declarations in {context}")
        pipe.pos = self.peek().pos
        while True:
            pipe.src = self.src[pipe.pos : self.peek().pos].rstrip(_SPACE)
            tok = self.peek()
            if tok.kind == end:
                self.next()
                break
            if tok.kind == "|":
                if not pipe.cmds:
                    raise self.fail(tok, 'unexpected "|" in command')
                self.next()
                if self.peek().kind == end:
                    continue  # Go accepts a trailing `|`
            pipe.cmds.append(self.command(end))
        if not pipe.cmds:
            raise self.fail(tok, f"missing value for {context}")
        for n, cmd in enumerate(pipe.cmds[1:], start=2):
            if cmd.args[0].kind in _NOT_EXECUTABLE:
                raise self.fail(tok, f"non executable command in pipeline stage {n}")
        return pipe

    def command(self, end: str) -> Command:
        cmd = Command(self.peek().pos, [])
        while self.peek().kind not in (end, "|"):
            tok = self.peek()
            if cmd.args and not tok.spaced and tok.kind != "(":
                raise self.fail(tok, "missing space?")
            cmd.args.append(self.operand())
        if not cmd.args:
            raise self.fail(self.peek(), "missing command")
        cmd.src = self.src[cmd.pos : self.peek().pos].rstrip(_SPACE)
        return cmd

    def operand(self) -> Operand:
        tok = self.next()
        kind, value, head = tok.kind, tok.val, tok
        if kind == "ident":
            if value not in self.funcs:
                raise self.fail(tok, f'function "{value}" not defined')
        elif kind == "var":
            if value not in self.vars:
                raise self.fail(tok, f'undefined variable "{value}"')
        elif kind == "(":
            value, kind = self.pipeline("parenthesized pipeline", ")"), "chain"
            tok = self.toks[self.i - 1]  # the `)`, which carries any `.A.B` after it
        elif kind not in ("dot", "nil", "bool", "number", "string", "field"):
            raise self.fail(tok, f"unexpected {_describe(tok)} in operand")
        text = self.src[head.pos : self.peek().pos].rstrip(_SPACE)
        pos = tok.chain_pos if tok.chain_pos >= 0 else head.pos
        return Operand(kind, pos, text, value, list(tok.fields))


def _quote(ch: str) -> str:
    return '"' + ch.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _describe(tok: Tok) -> str:
    if tok.kind == "close":
        return '"}}"'
    if tok.kind == "eof":
        return "EOF"
    if tok.kind == "keyword":
        return f"{{{{{tok.val}}}}}" if tok.val in ("else", "end") else f"<{tok.val}>"
    return f"<{tok.val}>" if tok.val is not None else tok.kind


def parse(src: str, funcs: frozenset[str]) -> list[Node]:
    """Parse ``src`` into nodes; ``funcs`` names the functions a template may call."""
    p = _Parser(src, funcs)
    nodes, term = p.parse_list()
    if term.kind != "eof":
        raise p.fail(term, f"unexpected {_describe(term)}")
    return nodes
