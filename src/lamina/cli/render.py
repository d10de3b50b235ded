"""Output the way Docker prints it: tab-aligned tables, SI sizes, "N hours ago", JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from lamina.engine.humanize import human_duration
from lamina.errors import LaminaError, UsageError

if TYPE_CHECKING:
    from lamina.cli.context import Context


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, minwidth: int = 10) -> None:
    """Columns as docker's CLI pads them: Go tabwriter(minwidth, tabwidth=1, padding=3), with
    minwidth 10 (``docker top``'s is 20)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    out = sys.stdout

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(max(minwidth, widths[i] + 3)) for i, c in enumerate(cells[:-1])]
        parts.append(cells[-1])
        return "".join(parts).rstrip()

    out.write(line(headers) + "\n")
    for row in rows:
        out.write(line(row) + "\n")


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", '"': '\\"', "\\": "\\\\"}  # fmt: skip


def printable(text: str) -> str:
    """``text`` as it is when it prints on one line as itself, else Go-quoted (``"a\\nb"``,
    ``"caf\\xe9"``). An image's paths and strings may hold newlines (a fake line in a table),
    terminal escape sequences, direction overrides, or bytes that are not UTF-8; printed raw
    they could pass for other output. A quoted form starts with ``"``, so a name that does is
    quoted too."""
    if text.isprintable() and not text.startswith('"'):
        return text
    out = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif "\udc80" <= ch <= "\udcff":  # a byte that was not UTF-8
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def print_deleted(title: str, lines: Sequence[str]) -> None:
    """A prune's ``Deleted Containers:`` (``Images``, ``Volumes``, ...) block: the lines, then
    Docker's blank line; nothing when nothing went."""
    if lines:
        print(f"Deleted {title}:")
        for line in lines:
            print(line)
        print()


_SI_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _custom_size(n: int | float, base: float, units: Sequence[str], digits: int) -> str:
    """go-units' CustomSize: ``n`` in the largest unit it reaches, ``digits`` significant."""
    size = float(n)
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{digits}g}{units[i]}"


def human_size(n: int | float, *, digits: int = 3) -> str:
    """go-units' HumanSizeWithPrecision: SI (base 1000), ``digits`` significant, no space:
    8.46MB. Docker's listings use 3 (``images``, ``ps -s``); its ``units.HumanSize`` is 4
    (``system df``'s totals: 1.986MB)."""
    return _custom_size(n, 1000, _SI_UNITS, digits)


def bytes_size(n: int | float) -> str:
    """Docker's units.BytesSize: binary units (base 1024), 4 significant digits: 1.312MiB."""
    return _custom_size(n, 1024, _BINARY_UNITS, 4)


def since(created: str | None, *, now: float | None = None) -> str:
    """ "3 hours ago" from an RFC 3339 timestamp; N/A for missing or pre-2000 dates as docker."""
    ts = parse_time(created)
    if ts is None or ts <= 946684800:
        return "N/A"
    return human_duration((now if now is not None else time.time()) - ts) + " ago"


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    # Python 3.11's fromisoformat wants at most 6 fractional digits.
    if "." in v:
        head, _, rest = v.partition(".")
        frac = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(frac) :]
        v = f"{head}.{frac[:6]}{tz}"
    try:
        return datetime.fromisoformat(v).timestamp()
    except ValueError:
        return None


def json_out(value: Any, *, indent: int | None = 4) -> None:
    """Docker-style JSON: 4-space indent for inspect, compact for --format json lines."""
    if indent is None:
        print(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    else:
        print(json.dumps(value, indent=indent, ensure_ascii=False))


def print_rows(
    fmt: str | None,
    rows: Sequence[dict[str, Any]],
    *,
    default_columns: Sequence[str],
    headers: dict[str, str],
) -> None:
    """Render list rows as Docker's ``--format`` does.

    ``None``/``table`` → the default table; ``json`` → one compact JSON object per line with
    sorted keys (what ``{{json .}}`` prints); ``table TEMPLATE`` → a table whose columns are the
    template's tab-separated cells, headed by the fields' names; any other template → one
    rendered line per row.
    """
    from lamina.cli.template import Record, render_template

    if fmt is None or fmt == "table":
        table(
            [headers[c] for c in default_columns],
            [[str(r[c]) for c in default_columns] for r in rows],
        )
        return
    if fmt == "json":
        for r in rows:
            print(json.dumps(dict(sorted(r.items())), separators=(",", ":"), ensure_ascii=False))
        return
    if fmt.startswith("table"):
        body = fmt[len("table") :].strip().replace("\\t", "\t")
        cells = body.split("\t")
        names: dict[str, Any] = (
            {k: headers.get(k, k.upper()) for k in rows[0]} if rows else dict(headers)
        )
        if rows and isinstance(rows[0], Record):
            names = Record(names, rows[0].header_methods)
        head = [render_template(c, names) for c in cells]
        out = [[render_template(c, r) for c in cells] for r in rows]
        table(head, out)
        return
    for r in rows:
        print(render_template(fmt, r))


def truncate(text: str, width: int) -> str:
    """Docker's stringutils.Ellipsis: at most ``width`` columns, the last one an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


def created_at(value: str | None) -> str:
    """``time.Unix(created).Format(RFC3339)`` in local time, as ``docker history -H=false``."""
    ts = parse_time(value)
    if ts is None:
        return ""
    text = datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def write_tar(output: str | os.PathLike[str] | None, write: Callable[[IO[bytes]], None]) -> None:
    """Hand ``write`` the file ``output`` (replaced atomically: a failed export leaves no partial
    file) or stdout; a tar is never written to a terminal."""
    if output is None:
        if sys.stdout.isatty():
            raise UsageError("refusing to write a tar to a terminal: use -o FILE or a pipe")
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    from pathlib import Path

    from lamina.atomic import atomic_writer

    with atomic_writer(Path(output)) as f:
        write(f)


def inspect_each(
    ctx: Context, fmt: str | None, names: Sequence[str], lookup: Callable[[str], Any]
) -> None:
    """``docker inspect NAME...``: the objects found, printed together (:func:`inspect_out`:
    one JSON array, or the template once each), and an error on stderr for each name that
    finds none (:meth:`Context.each`: status 1). Nothing found still prints ``[]``."""
    results: list[Any] = []
    try:
        ctx.each(names, lambda name: results.append(lookup(name)))
    except LaminaError:  # a single name's error, raised as it is: the output comes first
        inspect_out(fmt, results)
        raise
    inspect_out(fmt, results)


def inspect_out(fmt: str | None, results: Sequence[Any]) -> None:
    """``docker inspect`` output: a 4-space-indented JSON array, ``json`` compact, or a Go
    template rendered once per object."""
    if fmt is None:
        json_out(list(results))
    elif fmt == "json":
        json_out(list(results), indent=None)
    else:
        from lamina.cli.template import render_template

        for r in results:
            print(render_template(fmt, r))
