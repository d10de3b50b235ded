"""One build stage's state and the instructions that only edit the image config.

:class:`StageState` is what the classic builder calls the dispatch state: the image config
being built (the whole document, so fields lamina does not model survive), its layer chain,
the image id of the last committed step (the cache's parent), the ARGs declared in the stage
and whether CMD was set in it. :func:`apply_metadata` performs ENV LABEL EXPOSE VOLUME USER CMD
ENTRYPOINT HEALTHCHECK STOPSIGNAL SHELL ONBUILD MAINTAINER and returns the text history records,
formatted as Docker's classic builder writes ``created_by`` (formats.md §3.6).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from typing import Any, Final

from msgspec import Struct, field

from lamina.build.expand import expand_word, expand_words
from lamina.build.instructions import (
    Cmd,
    Entrypoint,
    Env,
    Expose,
    Form,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Shell,
    Stopsignal,
    User,
    Volume,
)
from lamina.digest import Digest
from lamina.errors import BuildError, UsageError
from lamina.oci.config import History
from lamina.runtime.signals import signal_number
from lamina.store.layers import LayerRecord

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_SHELL",
    "PROXY_ARGS",
    "StageState",
    "apply_metadata",
    "go_quote_list",
    "healthcheck_note",
]

DEFAULT_SHELL: Final = ("/bin/sh", "-c")
_PORT: Final = re.compile(r"[0-9]+")
DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Predefined args: usable without ARG, kept out of history and cache unless declared.
PROXY_ARGS: Final = frozenset(
    {
        "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
        "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
    }
)  # fmt: skip


class StageState(Struct, kw_only=True):
    index: int
    name: str | None
    doc: dict[str, Any]  # the image config document being built
    layers: list[LayerRecord]
    image_id: Digest | None  # last committed image (the base's id right after FROM)
    history: list[History] = field(default_factory=list)
    args: dict[str, str | None] = field(default_factory=dict)  # declared in this stage
    cmd_set: bool = False

    @property
    def config(self) -> dict[str, Any]:
        cfg = self.doc.get("config")
        if not isinstance(cfg, dict):
            cfg = self.doc["config"] = {}
        return cfg

    @property
    def top_layer(self) -> Digest | None:
        return self.layers[-1].chain_id if self.layers else None

    def env_list(self) -> list[str]:
        return [str(e) for e in self.config.get("Env") or []]

    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.env_list():
            key, _, value = item.partition("=")
            out[key] = value
        return out

    def arg_values(self) -> dict[str, str]:
        """Declared args that have a value (ARG default or --build-arg)."""
        return {k: v for k, v in self.args.items() if v is not None}

    def expansion_env(self) -> dict[str, str]:
        """What ``$VAR`` sees: args with values, overridden by ENV (ENV wins over ARG)."""
        return {**self.arg_values(), **self.env_map()}

    def shell(self) -> list[str]:
        value = self.config.get("Shell")
        return [str(s) for s in value] if value else list(DEFAULT_SHELL)

    def nop(self, text: str) -> str:
        """``created_by`` of a config-only step: shell + ``#(nop) `` + text (two spaces)."""
        return " ".join([*self.shell(), "#(nop) ", text])

    def nop_string(self, text: str) -> str:
        """The older one-argument form used by COPY, ADD and WORKDIR (one space)."""
        return " ".join([*self.shell(), "#(nop) " + text])

    def set_env(self, key: str, value: str) -> None:
        env = self.env_list()
        item = f"{key}={value}"
        for i, old in enumerate(env):
            if old.partition("=")[0] == key:
                env[i] = item  # replaced in place: same position in Env, as Docker
                break
        else:
            env.append(item)
        self.config["Env"] = env

    def clone(self, *, index: int, name: str | None) -> StageState:
        """A new stage starting from this one (``FROM <earlier stage>``); ARGs do not carry."""
        return StageState(
            index=index,
            name=name,
            doc=copy.deepcopy(self.doc),
            layers=list(self.layers),
            image_id=self.image_id,
            history=list(self.history),
        )


def _go_quote(s: str) -> str:
    # Go's strconv.Quote for the printable text Dockerfiles hold: JSON escaping without \u for
    # non-ASCII is the same, except "<>&" which JSON leaves alone too.
    return json.dumps(s, ensure_ascii=False)


def go_quote_list(items: list[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(_go_quote(s) for s in items) + "]"


def _command(state: StageState, form: Form, args: tuple[str, ...]) -> list[str]:
    if form is Form.EXEC:
        return list(args)
    return [*state.shell(), args[0]] if args else []


def _ports(words: list[str]) -> list[str]:
    """go-connections' nat.ParsePortSpecs for EXPOSE, as docker 20.10 runs it: ``80``,
    ``80/udp``, ``8000-8002`` (one per port), and the ``[ip:][hostPort:]containerPort``
    forms ``docker run -p`` takes, of which only the container port is exposed. The errors
    are docker's ("Invalid containerPort: 70000")."""
    out: list[str] = []
    for word in words:
        parts = word.split(":")
        container = parts[-1]
        host = parts[-2] if len(parts) > 1 else ""
        ip = ":".join(parts[:-2])
        if container.startswith("/") or not container:
            raise BuildError(f"No port specified: {word}<empty>")
        port, _, proto = container.partition("/")
        proto = proto.partition("/")[0] or "tcp"
        bare = ip[1:-1] if ip.startswith("[") and ip.endswith("]") else ip
        if bare:
            try:
                ipaddress.ip_address(bare)
            except ValueError:
                raise BuildError(f"Invalid ip address: {bare}") from None
        lo, hi = _port_range(port, f"Invalid containerPort: {port}")
        if host:
            host_lo, host_hi = _port_range(host, f"Invalid hostPort: {host}")
            if hi - lo != host_hi - host_lo and hi != lo:
                raise BuildError(
                    f"Invalid ranges specified for container and host Ports: {port} and {host}"
                )
        if proto.lower() not in ("tcp", "udp", "sctp"):
            raise BuildError(f"Invalid proto: {proto}")
        out.extend(f"{p}/{proto.lower()}" for p in range(lo, hi + 1))
    return out


def _port_range(text: str, error: str) -> tuple[int, int]:
    """nat.ParsePortRange: ``N`` or ``N-M`` (M >= N), decimal digits only, each <= 65535."""
    start, dash, end = text.partition("-")
    if dash:
        end = end.partition("-")[0]
    bounds = (start, end) if dash else (start, start)
    if not all(_PORT.fullmatch(b) and int(b) <= 65535 for b in bounds):
        raise BuildError(error)
    lo, hi = int(bounds[0]), int(bounds[1])
    if hi < lo:
        raise BuildError(error)
    return lo, hi


def _healthcheck(ins: Healthcheck) -> tuple[dict[str, Any], str]:
    hc: dict[str, Any] = {"Test": list(ins.test)}
    for key, value in (
        ("Interval", ins.interval_ns),
        ("Timeout", ins.timeout_ns),
        ("StartPeriod", ins.start_period_ns),
        ("StartInterval", ins.start_interval_ns),
        ("Retries", ins.retries),
    ):
        if value:
            hc[key] = value
    # Go's %q of docker 20.10's *container.HealthConfig (no StartInterval field): a Duration
    # quotes its String(), the int Retries is quoted as a rune.
    fields = [
        go_quote_list(list(ins.test)),
        _go_quote(go_duration(ins.interval_ns)),
        _go_quote(go_duration(ins.timeout_ns)),
        _go_quote(go_duration(ins.start_period_ns)),
        _go_quote_rune(ins.retries),
    ]
    return hc, "&{" + " ".join(fields) + "}"


_RUNE_ESCAPES: Final = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}


def _go_quote_rune(n: int) -> str:
    """strconv.QuoteRune: ``'A'``, ``'\\x02'``, ``'\\n'``."""
    if n in _RUNE_ESCAPES:
        return f"'{_RUNE_ESCAPES[n]}'"
    if 0x20 <= n < 0x7F:
        ch = chr(n)
        return "'\\" + ch + "'" if ch in "'\\" else f"'{ch}'"
    if n < 0x100:
        return f"'\\x{n:02x}'"
    return f"'{chr(n)}'" if chr(n).isprintable() else f"'\\u{n:04x}'"


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String``: ``0s``, ``300ms``, ``1.5s``, ``1m30s``, ``1h0m0s``."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if u >= size:
                return sign + _frac(u, size) + unit
    h, rest = divmod(u, 3_600_000_000_000)
    m, rest = divmod(rest, 60_000_000_000)
    secs = _frac(rest, 1_000_000_000) + "s"
    if h:
        return f"{sign}{h}h{m}m{secs}"
    if m:
        return f"{sign}{m}m{secs}"
    return sign + secs


def _frac(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def healthcheck_note(state: StageState) -> str | None:
    """What docker 20.10 prints before a HEALTHCHECK replaces one that checks something:
    ``Note: overriding previous HEALTHCHECK: [CMD-SHELL a]`` (Go's %v of the old Test)."""
    old = state.config.get("Healthcheck")
    test = old.get("Test") if isinstance(old, dict) else None
    if not test or test[0] == "NONE":
        return None
    return f"Note: overriding previous HEALTHCHECK: [{' '.join(str(t) for t in test)}]"


def apply_metadata(state: StageState, ins: Instruction, *, escape: str) -> str:
    """Apply a config-only instruction to ``state``; return its ``created_by``."""
    env = state.expansion_env()
    line = ins.line

    def word(text: str) -> str:
        return expand_word(text, env=env, escape=escape, line=line)

    cfg = state.config
    if isinstance(ins, Env):
        pairs = [(word(k), word(v)) for k, v in ins.pairs]
        for key, value in pairs:
            state.set_env(key, value)
        return state.nop("ENV " + " ".join(f"{k}={v}" for k, v in pairs))
    if isinstance(ins, Label):
        pairs = list(ins.pairs) if ins.literal else [(word(k), word(v)) for k, v in ins.pairs]
        labels = dict(cfg.get("Labels") or {})
        labels.update(pairs)
        cfg["Labels"] = labels
        return state.nop("LABEL " + " ".join(f"{k}={v}" for k, v in pairs))
    if isinstance(ins, Expose):
        # docker 20.10 sorts the words as written, before expanding them: `EXPOSE $P 80 90/udp
        # 8000-8002` with P=8080 is recorded as "EXPOSE 8080 80 8000-8002 90/udp".
        raw = sorted(ins.ports)
        words = [w for p in raw for w in expand_words(p, env=env, escape=escape, line=line)]
        ports = dict(cfg.get("ExposedPorts") or {})
        try:
            exposed = _ports(words)
        except BuildError as exc:
            raise BuildError(f"line {line}: EXPOSE: {exc}") from None
        for p in exposed:
            ports[p] = {}
        cfg["ExposedPorts"] = ports
        return state.nop("EXPOSE " + " ".join(words))
    if isinstance(ins, Volume):
        paths = [word(p) for p in ins.paths]
        if any(not p.strip() for p in paths):
            raise BuildError(f"line {line}: VOLUME specified can not be an empty string")
        vols = dict(cfg.get("Volumes") or {})
        for p in paths:
            vols[p] = {}
        cfg["Volumes"] = vols
        return state.nop(f"VOLUME [{' '.join(paths)}]")
    if isinstance(ins, User):
        cfg["User"] = word(ins.user)
        return state.nop("USER " + cfg["User"])
    if isinstance(ins, Cmd):
        form, args = ins.command.form, ins.command.args
        # docker 20.10: a bare `CMD` is the shell alone (["/bin/sh", "-c"]), and neither it
        # nor `CMD []` counts as setting CMD: a later ENTRYPOINT still resets it.
        cfg["Cmd"] = (
            state.shell() if form is Form.SHELL and not args else _command(state, form, args)
        )
        state.cmd_set = bool(args)
        return state.nop("CMD " + go_quote_list(cfg["Cmd"]))
    if isinstance(ins, Entrypoint):
        cfg["Entrypoint"] = _command(state, ins.command.form, ins.command.args) or None
        if not state.cmd_set:
            cfg.pop("Cmd", None)  # a base image's CMD makes no sense with a new ENTRYPOINT
        return state.nop("ENTRYPOINT " + go_quote_list(cfg["Entrypoint"] or []))
    if isinstance(ins, Healthcheck):
        hc, text = _healthcheck(ins)
        old = cfg.get("Healthcheck")
        if isinstance(old, dict):
            # docker 20.10 merges the step's config with the previous image's (daemon's
            # merge() on an aliased pointer): a field this HEALTHCHECK leaves at zero keeps the
            # previous one's. `HEALTHCHECK --interval=5s --retries=3 CMD a` then `HEALTHCHECK
            # --timeout=7s CMD b` gives {Test: [CMD-SHELL b], Interval: 5s, Timeout: 7s,
            # Retries: 3}; `HEALTHCHECK NONE` keeps them too. History shows the step's own.
            for key in ("Interval", "Timeout", "StartPeriod", "Retries"):
                if not hc.get(key) and old.get(key):
                    hc[key] = old[key]
        cfg["Healthcheck"] = hc
        return state.nop("HEALTHCHECK " + text)
    if isinstance(ins, Stopsignal):
        cfg["StopSignal"] = word(ins.signal)
        try:  # as Docker's builder: a signal no `docker stop` could send fails the build
            signal_number(cfg["StopSignal"], what="signal")
        except UsageError as exc:
            raise BuildError(f"line {line}: STOPSIGNAL: {exc}") from None
        return state.nop("STOPSIGNAL " + cfg["StopSignal"])
    if isinstance(ins, Shell):
        cfg["Shell"] = list(ins.args)
        return state.nop(f"SHELL [{' '.join(ins.args)}]")
    if isinstance(ins, Onbuild):
        cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), ins.expression.strip()]
        return state.nop("ONBUILD " + ins.expression.strip())
    if isinstance(ins, Maintainer):
        state.doc["author"] = ins.name
        return state.nop("MAINTAINER " + ins.name)
    raise BuildError(f"line {line}: {ins.keyword} is not a config-only instruction")
