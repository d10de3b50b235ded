"""Config-only instructions: what they do to the config and the ``created_by`` they record,
expected values as docker 20.10's classic builder writes them (formats.md §3.6, and checked
against dockerd by tests/integration/test_build_peers.py)."""

from __future__ import annotations

import pytest

from lamina.build.instructions import Instruction
from lamina.build.parser import parse
from lamina.build.stage import (
    StageState,
    apply_metadata,
    go_duration,
    go_quote_list,
    healthcheck_note,
)
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
    # docker 20.10 keeps the previous check's non-zero fields (see the test below).
    assert state.config["Healthcheck"] == {"Test": ["NONE"], "Interval": 90 * 10**9}


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


def test_expose_history_sorts_the_words_as_written_before_expanding() -> None:
    # docker 20.10, P=8080: `EXPOSE $P ${P}/udp 80 90/udp 8000-8002 9000-9001/tcp` is recorded
    # as "EXPOSE 8080 8080/udp 80 8000-8002 90/udp 9000-9001/tcp" ("$" sorts first).
    state = _state()
    state.set_env("P", "8080")
    created_by = apply_metadata(
        state, _ins("EXPOSE $P ${P}/udp 80 90/udp 8000-8002 9000-9001/tcp"), escape="\\"
    )
    assert created_by == (
        "/bin/sh -c #(nop)  EXPOSE 8080 8080/udp 80 8000-8002 90/udp 9000-9001/tcp"
    )
    assert {"8080/tcp", "8080/udp", "8001/tcp", "90/udp", "9001/tcp"} <= set(
        state.config["ExposedPorts"]
    )


def test_a_healthcheck_keeps_the_previous_ones_fields_it_leaves_at_zero() -> None:
    # docker 20.10: `HEALTHCHECK --interval=5s --retries=3 --timeout=2s CMD a` then
    # `HEALTHCHECK --timeout=7s CMD b` gives Config.Healthcheck {"Test": ["CMD-SHELL", "b"],
    # "Interval": 5000000000, "Timeout": 7000000000, "Retries": 3}, and prints "Note:
    # overriding previous HEALTHCHECK: [CMD-SHELL a]"; the history shows the step's own
    # values: &{["CMD-SHELL" "b"] "0s" "7s" "0s" '\x00'}.
    state = _state()
    assert healthcheck_note(state) is None
    apply_metadata(
        state, _ins("HEALTHCHECK --interval=5s --retries=3 --timeout=2s CMD a"), escape="\\"
    )
    assert healthcheck_note(state) == "Note: overriding previous HEALTHCHECK: [CMD-SHELL a]"
    created_by = apply_metadata(state, _ins("HEALTHCHECK --timeout=7s CMD b"), escape="\\")
    assert created_by.endswith('HEALTHCHECK &{["CMD-SHELL" "b"] "0s" "7s" "0s" \'\\x00\'}')
    assert state.config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "b"], "Interval": 5 * 10**9, "Timeout": 7 * 10**9, "Retries": 3,
    }  # fmt: skip
    apply_metadata(state, _ins("HEALTHCHECK NONE"), escape="\\")
    assert healthcheck_note(state) is None  # docker says nothing when NONE is replaced


def test_a_bare_cmd_is_the_shell_and_sets_no_cmd() -> None:
    # docker 20.10: a bare `CMD` gives Cmd ["/bin/sh", "-c"] (history `CMD ["/bin/sh" "-c"]`);
    # after it, or after `CMD []`, an ENTRYPOINT still resets Cmd (to null).
    state = _state()
    created_by = apply_metadata(state, _ins("CMD"), escape="\\")
    assert created_by == '/bin/sh -c #(nop)  CMD ["/bin/sh" "-c"]'
    assert state.config["Cmd"] == ["/bin/sh", "-c"]
    for first in ("CMD", "CMD []"):
        state = _state()
        apply_metadata(state, _ins(first), escape="\\")
        apply_metadata(state, _ins('ENTRYPOINT ["/e"]'), escape="\\")
        assert "Cmd" not in state.config


def test_expose_takes_the_mapping_forms_and_exposes_the_container_port() -> None:
    # docker 20.10: `EXPOSE 127.0.0.1:80:80 7000-7001:8000-8001 80:8080 :9000
    # [::1]:81:81/udp 80-81:90` builds; ExposedPorts {"80/tcp", "8000/tcp", "8001/tcp",
    # "8080/tcp", "81/udp", "9000/tcp", "90/tcp"}; `80/` and `80/UDP` are 80/tcp and 80/udp.
    state = _state()
    words = "127.0.0.1:80:80 7000-7001:8000-8001 80:8080 :9000 [::1]:81:81/udp 80-81:90 80/"
    apply_metadata(state, _ins(f"EXPOSE {words} 82/UDP"), escape="\\")
    assert set(state.config["ExposedPorts"]) == {
        "80/tcp", "8000/tcp", "8001/tcp", "8080/tcp", "81/udp", "9000/tcp", "90/tcp", "82/udp",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("abc", "Invalid containerPort: abc"),
        ("70000", "Invalid containerPort: 70000"),
        ("8000-7000", "Invalid containerPort: 8000-7000"),
        ("+80", "Invalid containerPort: +80"),
        ("80-", "Invalid containerPort: 80-"),
        ("80/xyz", "Invalid proto: xyz"),
        ("/tcp", "No port specified: /tcp<empty>"),
        ("abc:80", "Invalid hostPort: abc"),
        ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
        ("80:8000-8001", "Invalid ranges specified for container and host Ports: 8000-8001 and 80"),
    ],
)
def test_a_bad_expose_fails_with_dockers_words(word: str, message: str) -> None:
    # docker 20.10 printed each message (exit 1) for `EXPOSE <word>`.
    with pytest.raises(BuildError) as err:
        apply_metadata(_state(), _ins(f"EXPOSE {word}"), escape="\\")
    assert str(err.value) == f"line 2: EXPOSE: {message}"
