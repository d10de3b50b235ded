"""Shell-word processing for Dockerfiles: variable expansion, quote removal, word splitting.

The rules are the Dockerfile reference's "Environment replacement" section as BuildKit's
``shell`` lexer implements them: ``$v``, ``${v}``, ``${v:-w}``, ``${v-w}``, ``${v:+w}``,
``${v+w}``, ``${v:?w}``/``${v?w}``, ``${v#p}``, ``${v##p}``, ``${v%p}``, ``${v%%p}``,
``${v/p/r}``, ``${v//p/r}``; single quotes suppress expansion; inside double quotes the escape
character escapes only ``"``, ``$`` and itself; outside quotes it escapes any character. An
undeclared variable expands to "".

Which instructions expand is the builder's business: ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL
USER VOLUME WORKDIR (and ONBUILD triggers when they run); never RUN/CMD/ENTRYPOINT, whose shell
does it. Within one instruction every reference sees the values from *before* it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from msgspec import Struct, field

from lamina.errors import BuildError, DockerfileSyntaxError

__all__ = [
    "expand_heredoc",
    "expand_key_values",
    "expand_word",
    "expand_words",
    "lex_raw_words",
    "split_key_values",
    "split_words",
    "unquote_word",
]

# POSIX special parameters: ``$@``, ``$#``... are one-character names (never set in a build).
_SPECIAL = frozenset("@*#?-$!0")


class _Words(Struct, kw_only=True):
    """Accumulates shell words; characters from a ``$`` expansion split on whitespace."""

    words: list[str] = field(default_factory=list)
    word: str = ""
    in_word: bool = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.word:
                self.words.append(self.word)
                self.word = ""
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        self.word += text
        self.in_word = True

    def add_expansion(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def finish(self) -> list[str]:
        if self.word:
            self.words.append(self.word)
            self.word = ""
            self.in_word = False
        return self.words


class _Lexer:
    def __init__(
        self,
        text: str,
        *,
        env: Mapping[str, str],
        escape: str,
        raw_quotes: bool,
        raw_escapes: bool,
        line: int,
        lenient: bool = False,
    ) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.line = line
        self.lenient = lenient

    def _error(self, message: str) -> DockerfileSyntaxError:
        return DockerfileSyntaxError(f"{message} in {self.text!r}", line=self.line, column=1)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += len(ch)
        return ch

    def process(self, stop: str = "", *, raw_escapes: bool | None = None) -> tuple[str, list[str]]:
        """Process up to ``stop`` (consumed) or the end; return the text and its words."""
        raw = self.raw_escapes if raw_escapes is None else raw_escapes
        result: list[str] = []
        words = _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.finish()
            if ch == "'":
                piece = self._single_quote()
                words.add_raw(piece)
            elif ch == '"':
                piece = self._double_quote()
                words.add_raw(piece)
            elif ch == "$":
                piece = self._dollar()
                words.add_expansion(piece)
            else:
                self.next()
                if ch == self.escape:
                    piece = ch if raw else ""
                    nxt = self.next()
                    if not nxt:
                        # A lone escape at the end of the word is dropped.
                        if raw:
                            words.add_raw(piece)
                            result.append(piece)
                        break
                    piece += nxt
                    words.add_raw(piece)
                else:
                    piece = ch
                    words.add_char(ch)
            result.append(piece)
        if stop:
            raise self._error(f"missing {stop!r}")
        return "".join(result), words.finish()

    def _single_quote(self) -> str:
        start = self.pos
        self.next()
        end = self.text.find("'", self.pos)
        if end < 0:
            if self.lenient:
                # Heredoc bodies (raw quotes) are free text: "don't" must not fail the build.
                self.pos = start + 1
                return "'"
            raise self._error("unexpected end of statement while looking for matching single-quote")
        self.pos = end + 1
        body = self.text[start + 1 : end]
        return f"'{body}'" if self.raw_quotes else body

    def _double_quote(self) -> str:
        start = self.pos
        self.next()
        out: list[str] = ['"'] if self.raw_quotes else []
        while True:
            ch = self.peek()
            if not ch:
                if self.lenient:
                    self.pos = start + 1
                    return '"'
                raise self._error(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                if self.raw_quotes:
                    out.append('"')
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            self.next()
            if ch == self.escape:
                nxt = self.peek()
                if not nxt:
                    continue
                if nxt in ('"', "$", self.escape):
                    if self.raw_escapes:
                        out.append(ch)
                    ch = self.next()
            out.append(ch)

    def _name(self) -> str:
        ch = self.peek()
        if ch.isdigit():
            start = self.pos
            while self.peek().isdigit():
                self.next()
            return self.text[start : self.pos]
        if ch and ch in _SPECIAL:
            return self.next()
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() == "_"):
            self.next()
        return self.text[start : self.pos]

    def _dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self._name()
            return self.env.get(name, "") if name else "$"
        self.next()
        if not self.peek():
            raise self._error("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise self._error("syntax error: bad substitution")
        name = self._name()
        op = self.next()
        if op == "}":
            return self.env.get(name, "")
        if not op:
            raise self._error("syntax error: missing '}'")
        null_is_unset = False
        if op == ":":
            null_is_unset = True
            op = self.next()
            if op in ("#", "%"):
                raise self._error(f"unsupported modifier (:{op}) in substitution")
        if op in ("-", "+", "?", "#", "%"):
            word, _ = self.process("}", raw_escapes=op in ("#", "%"))
            value = self.env.get(name)
            unset = value is None or (null_is_unset and value == "")
            if op == "-":
                return word if unset else (value or "")
            if op == "+":
                return "" if unset else word
            if op == "?":
                if unset:
                    why = (
                        "is not allowed to be unset"
                        if value is None
                        else "is not allowed to be empty"
                    )
                    raise BuildError(f"{name}: {word or why}")
                return value or ""
            return _trim(value or "", word, suffix=op == "%")
        if op == "/" and not null_is_unset:
            replace_all = self.peek() == "/"
            if replace_all:
                self.next()
            pattern, _ = self.process("/", raw_escapes=True)
            replacement, _ = self.process("}", raw_escapes=True)
            regex = _pattern_regex(pattern)
            value = self.env.get(name, "")
            return regex.sub(lambda _m: replacement, value, count=0 if replace_all else 1)
        raise self._error(
            f"unsupported modifier ({':' if null_is_unset else ''}{op}) in substitution"
        )


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A shell glob (``*``, ``?``, ``[...]``, ``\\x``) as a regex (BuildKit's conversion)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _trim(value: str, word: str, *, suffix: bool) -> str:
    # ``##``/``%%`` (the operator doubled) remove the longest match, the single form the shortest.
    op = "%" if suffix else "#"
    greedy = word.startswith(op)
    if greedy:
        word = word[1:]
    regex = _pattern_regex(word)
    cuts = range(len(value), -1, -1) if greedy else range(len(value) + 1)
    for n in cuts:
        part = value[len(value) - n :] if suffix else value[:n]
        if regex.fullmatch(part):
            return value[: len(value) - n] if suffix else value[n:]
    return value


def expand_word(word: str, *, env: Mapping[str, str], escape: str = "\\", line: int) -> str:
    """Expand variables and remove quotes and escapes in one word (BuildKit ``ProcessWord``).

    ``line`` is the Dockerfile line the word came from, for the error a bad substitution raises.
    """
    lexer = _Lexer(word, env=env, escape=escape, raw_quotes=False, raw_escapes=False, line=line)
    text, _ = lexer.process()
    return text


def expand_words(text: str, *, env: Mapping[str, str], escape: str = "\\", line: int) -> list[str]:
    """Expand ``text`` and split it into shell words (BuildKit ``ProcessWords``, used by EXPOSE).

    Whitespace produced by an unquoted expansion separates words; quoted whitespace does not.
    """
    lexer = _Lexer(text, env=env, escape=escape, raw_quotes=False, raw_escapes=False, line=line)
    _, words = lexer.process()
    return words


def expand_heredoc(body: str, *, env: Mapping[str, str], escape: str = "\\", line: int) -> str:
    """Expand the body of an unquoted COPY/ADD heredoc.

    As BuildKit: variables expand and escapes are processed, but quotes are kept as written
    (moby/buildkit#2442). A quote without its partner stays literal instead of failing.
    """
    lexer = _Lexer(
        body, env=env, escape=escape, raw_quotes=True, raw_escapes=False, line=line, lenient=True
    )
    text, _ = lexer.process()
    return text


def lex_raw_words(text: str) -> list[str]:
    """Split ``text`` into shell words keeping quotes and escapes (heredoc detection).

    Returns [] when the text does not lex (an unmatched quote), as BuildKit ignores it then.
    """
    lexer = _Lexer(text, env={}, escape="\\", raw_quotes=True, raw_escapes=True, line=0)
    try:
        _, words = lexer.process()
    except DockerfileSyntaxError:
        return []
    return words


def unquote_word(text: str) -> list[str]:
    """Quote removal without expansion (heredoc delimiter words)."""
    lexer = _Lexer(text, env={}, escape="\\", raw_quotes=False, raw_escapes=False, line=0)
    _, words = lexer.process()
    return words


def split_words(text: str, *, escape: str = "\\") -> list[str]:
    """Split an ENV/LABEL/ARG argument string into words; quotes and escapes are kept.

    Quotes group whitespace into one word; an escape char keeps the next character in the
    word (BuildKit ``parseWords``). Quote removal happens later, in :func:`expand_word`.
    """
    words: list[str] = []
    word = ""
    blank_ok = False
    quote = ""
    in_word = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if not in_word:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if not quote:
            if ch.isspace():
                if blank_ok or word:
                    words.append(word)
                word, blank_ok, in_word = "", False, False
                i += 1
                continue
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if i + 1 == n:
                    break
                word += ch
                i += 1
                ch = text[i]
            word += ch
        else:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    break
                word += ch
                i += 1
                ch = text[i]
            word += ch
        i += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words


def split_key_values(text: str, *, escape: str = "\\", line: int) -> list[tuple[str, str]]:
    """Split ``ENV``/``LABEL`` arguments into raw ``(key, value)`` pairs; quotes are kept.

    ``k=v k2="v 2"`` gives one pair per word, split at the first ``=``. The legacy form
    ``k some value`` (no ``=`` in the first word) gives one pair whose value is the rest of
    the line. Keys and values still carry their quotes: :func:`expand_key_values` removes
    them. A ``k=v`` list with a word lacking ``=`` raises :class:`DockerfileSyntaxError`.
    """
    words = split_words(text, escape=escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = re.split(r"[\t\v\f\r ]+", text.strip(), maxsplit=1)
        if len(parts) < 2:
            raise DockerfileSyntaxError(
                f"{parts[0]!r} has no value: use name=value", line=line, column=1
            )
        return [(parts[0], parts[1])]
    pairs: list[tuple[str, str]] = []
    for word in words:
        if "=" not in word:
            raise DockerfileSyntaxError(
                f"can't find = in {word!r}; must be of the form name=value", line=line, column=1
            )
        key, _, value = word.partition("=")
        pairs.append((key, value))
    return pairs


def expand_key_values(
    text: str, *, env: Mapping[str, str], escape: str = "\\", line: int
) -> list[tuple[str, str]]:
    """Split ``ENV``/``LABEL`` arguments and expand them: quotes removed, escapes processed.

    Every reference uses ``env`` as it was before the instruction
    (``ENV abc=bye def=$abc`` with abc=hello gives def=hello).
    """
    return [
        (
            expand_word(key, env=env, escape=escape, line=line),
            expand_word(value, env=env, escape=escape, line=line),
        )
        for key, value in split_key_values(text, escape=escape, line=line)
    ]
