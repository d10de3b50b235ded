"""Config-only instructions: what they do to the config and the ``created_by`` they record,
expected values as docker 20.10's classic builder writes them (formats.md §3.6, and checked
against dockerd by tests/integration/test_build_peers.py)."""

from __future__ import annotations

import pytest

from lamina.build.instructions import Instruction
from lamina.build.parser import parse
from lamina.build.stage import StageState, apply_metadata, go_duration, go_quote_list
from lamina.errors import BuildError


def _state() -> StageState:
    return StageState(
        index=0, name=None, doc={"config": {"Env": ["PATH=/bin", "A=old"], "Cmd": ["sh"]}},
        layers=[], image_id=None,
    )  # fmt: skip


def _ins(line: str) -> Instruction:
    return parse(f"FROM scratch\n{line}\n").stages[0].instructions[0]


@pytest.mark.parametrize(
    ("line", "created_by"),
    [
        ("ENV A=new B=$A", "/bin/sh -c #(nop)  ENV A=new B=old"),
        ('LABEL a="x y"', "/bin/sh -c #(nop)  LABEL a=x y"),
        ("EXPOSE 8080 53/udp", "/bin/sh -c #(nop)  EXPOSE 53/udp 8080"),
        ("VOLUME /a /b", "/bin/sh -c #(nop)  VOLUME [/a /b]"),
        ('VOLUME ["/data"]', "/bin/sh -c #(nop)  VOLUME [/data]"),
        ("USER app:app", "/bin/sh -c #(nop)  USER app:app"),
        ("CMD echo hi", '/bin/sh -c #(nop)  CMD ["/bin/sh" "-c" "echo hi"]'),
        ('CMD ["a", "b c"]', '/bin/sh -c #(nop)  CMD ["a" "b c"]'),
        ('ENTRYPOINT ["/e"]', '/bin/sh -c #(nop)  ENTRYPOINT ["/e"]'),
        ("STOPSIGNAL SIGINT", "/bin/sh -c #(nop)  STOPSIGNAL SIGINT"),
        ('SHELL ["/bin/bash", "-c"]', "/bin/bash -c #(nop)  SHELL [/bin/bash -c]"),
        ("ONBUILD RUN make", "/bin/sh -c #(nop)  ONBUILD RUN make"),
        (
            "HEALTHCHECK --interval=30s --timeout=5s --retries=2 CMD test -f /x",
            '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "test -f /x"] "30s" "5s" "0s" '
            "'\\x02'}",
        ),
        ("MAINTAINER me", "/bin/sh -c #(nop)  MAINTAINER me"),
    ],
)
def test_created_by(line: str, created_by: str) -> None:
    assert apply_metadata(_state(), _ins(line), escape="\\") == created_by


def test_env_replaces_in_place_and_appends() -> None:
    state = _state()
    apply_metadata(state, _ins("ENV A=new C=3"), escape="\\")
    assert state.config["Env"] == ["PATH=/bin", "A=new", "C=3"]


def test_entrypoint_resets_an_inherited_cmd_but_not_one_set_here() -> None:
    state = _state()
    apply_metadata(state, _ins('ENTRYPOINT ["/e"]'), escape="\\")
    assert "Cmd" not in state.config
    state = _state()
    apply_metadata(state, _ins('CMD ["x"]'), escape="\\")
    apply_metadata(state, _ins('ENTRYPOINT ["/e"]'), escape="\\")
    assert state.config["Cmd"] == ["x"]


def test_expose_ranges_and_protocols() -> None:
    state = _state()
    apply_metadata(state, _ins("EXPOSE 80-82/UDP 443"), escape="\\")
    assert set(state.config["ExposedPorts"]) == {"80/udp", "81/udp", "82/udp", "443/tcp"}


def test_healthcheck_config_in_nanoseconds() -> None:
    state = _state()
    apply_metadata(state, _ins("HEALTHCHECK --interval=1m30s CMD true"), escape="\\")
    assert state.config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 90 * 10**9}
    apply_metadata(state, _ins("HEALTHCHECK NONE"), escape="\\")
    assert state.config["Healthcheck"] == {"Test": ["NONE"]}


@pytest.mark.parametrize(
    ("ns", "text"),
    [(0, "0s"), (1_500_000_000, "1.5s"), (300_000_000, "300ms"), (90 * 10**9, "1m30s"),
     (3600 * 10**9, "1h0m0s"), (1500, "1.5µs"), (7, "7ns")],
)  # fmt: skip
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_go_quote_list() -> None:
    assert go_quote_list(["a", 'b "c"']) == '["a" "b \\"c\\""]'


@pytest.mark.parametrize("sig", ["SIGRTMIN+3", "37", "term"])
def test_stopsignal_keeps_the_spelling_given(sig: str) -> None:
    state = _state()
    apply_metadata(state, _ins(f"STOPSIGNAL {sig}"), escape="\\")
    assert state.config["StopSignal"] == sig


@pytest.mark.parametrize("sig", ["FOO", "0", "SIGRTMIN-1"])
def test_a_stopsignal_no_stop_could_send_fails_the_build(sig: str) -> None:
    with pytest.raises(BuildError, match=f"line 2: STOPSIGNAL: invalid signal: '{sig}'"):
        apply_metadata(_state(), _ins(f"STOPSIGNAL {sig}"), escape="\\")
