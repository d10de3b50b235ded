"""Forensics end to end on the hand-built test image (see test_forensics_kit): every expected
value comes from the bytes the kit put in, never from lamina's own output."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import test_forensics_kit as kit

from lamina.cli.main import main
from lamina.errors import NotFoundError, UsageError
from lamina.forensics.replay import Action
from lamina.forensics.rules import Severity
from lamina.forensics.secrets import Finding


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kit.Built]:
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp_path_factory.getbasetemp()
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="lamina-forensics-", dir=base))
    b = kit.store_image(d / "root")
    yield b
    b.engine.close()
    shutil.rmtree(d, ignore_errors=True)
    b.archive.unlink(missing_ok=True)


def _cli(b: kit.Built, *args: str) -> int:
    return main(["--root", str(b.engine.root), *args])


# -- layers --------------------------------------------------------------------------------


def test_layers_tell_each_step_and_its_changes(built: kit.Built) -> None:
    stories = built.engine.forensics.layers(built.name)
    assert [s.created_by for s in stories] == [step for step, _ in kit.STEPS]
    by = {s.index: s for s in stories}
    assert by[kit.LAYER_OF["secret-deleted"]].deleted == 1
    assert by[kit.LAYER_OF["secret-deleted"]].removed_bytes == len(kit.SECRET_ENV)
    assert by[kit.LAYER_OF["overwrite"]].modified == 1
    assert by[kit.LAYER_OF["opaque"]].hidden == 1
    assert by[kit.LAYER_OF["opaque"]].added == 1
    assert by[kit.LAYER_OF["big-again"]].readded == 1
    assert by[kit.LAYER_OF["big"]].size == len(kit.BIG)
    # Re-listed parent dirs (etc/, root/, ...) are not changes.
    assert by[kit.LAYER_OF["key"]].added == 1  # the key (root/.ssh is a dir)


def test_layers_cli_json_keeps_the_foundation_keys(
    built: kit.Built, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(built, "layers", built.name, "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    for key in (
        "Index",
        "ChainID",
        "DiffID",
        "Digest",
        "MediaType",
        "Size",
        "BlobSize",
        "Entries",
        "CreatedBy",
        "Added",
        "Modified",
        "Deleted",
        "Hidden",
    ):
        assert key in rows[0]
    assert _cli(built, "layers", built.name) == 0
    out = capsys.readouterr().out
    assert "█" in out  # the size chart


# -- trace ---------------------------------------------------------------------------------


def test_trace_overwritten_deleted_and_hidden(built: kit.Built) -> None:
    t = built.engine.forensics.trace(built.name, "/etc/app.conf")
    assert [(s.layer, s.action) for s in t.steps] == [(1, Action.ADDED), (5, Action.MODIFIED)]
    assert t.present
    assert "content" in t.steps[1].changed
    t = built.engine.forensics.trace(built.name, "root/secret.env")
    assert [(s.layer, s.action) for s in t.steps] == [(2, Action.ADDED), (3, Action.DELETED)]
    assert not t.present
    assert t.steps[1].cause == "whiteout of /root/secret.env"
    assert t.steps[1].created_by == kit.STEPS[3][0]
    assert t.steps[1].recover.endswith("--layer 2")
    t = built.engine.forensics.trace(built.name, "/opt/data/old.txt")
    assert [(s.layer, s.action) for s in t.steps] == [(1, Action.ADDED), (6, Action.HIDDEN)]
    assert t.steps[1].cause == "opaque dir /opt/data"
    with pytest.raises(NotFoundError):
        built.engine.forensics.trace(built.name, "/nope")


# -- cat / extract -------------------------------------------------------------------------


def test_cat_recovers_the_deleted_secret_byte_for_byte(
    built: kit.Built, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    out = io.BytesIO()
    built.engine.forensics.cat(built.name, "/root/secret.env", layer=2, out=out)
    assert out.getvalue() == kit.SECRET_ENV
    assert _cli(built, "cat", built.name, "/root/secret.env", "--layer", "2") == 0
    assert capsysbinary.readouterr().out == kit.SECRET_ENV
    # Gone from the final image: exit 1 with a hint naming the layer that still has it.
    assert _cli(built, "cat", built.name, "/root/secret.env") == 1
    err = capsysbinary.readouterr().err.decode()
    assert "--layer 2" in err
    out = io.BytesIO()
    built.engine.forensics.cat(built.name, "etc/app.conf", layer=4, out=out)
    assert out.getvalue() == kit.APP_V1


def test_extract_writes_evidence_without_setuid(built: kit.Built, tmp_path: Path) -> None:
    done = built.engine.forensics.extract(
        built.name, ["/root/secret.env", "/opt/data"], dest=tmp_path / "x", layer=2
    )
    assert (tmp_path / "x/root/secret.env").read_bytes() == kit.SECRET_ENV
    assert (tmp_path / "x/opt/data/old.txt").read_bytes() == kit.OLD_DATA
    assert {d.path for d in done} >= {"root/secret.env", "opt/data/old.txt"}
    built.engine.forensics.extract(
        built.name, ["/usr/bin/suidtool"], dest=tmp_path / "y", layer=None
    )
    mode = (tmp_path / "y/usr/bin/suidtool").stat().st_mode
    assert mode & 0o7000 == 0
    with pytest.raises(UsageError, match="below /"):  # the whole rootfs is image export's
        built.engine.forensics.extract(built.name, ["/"], dest=tmp_path / "z", layer=None)


# -- secrets -------------------------------------------------------------------------------


def _by_rule(findings: Sequence[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.rule, []).append(f)
    return out


def test_secrets_finds_every_planted_problem(built: kit.Built) -> None:
    result = built.engine.forensics.secrets(built.name)
    rules = _by_rule(result.findings)
    aws = rules["aws-secret-access-key"][0]
    assert (aws.layer, aws.path) == (2, "root/secret.env")
    assert aws.hidden_by == "layer 3: whiteout of /root/secret.env"
    # The instruction, with the build arg's value redacted (it is a finding of its own).
    assert aws.instruction == kit.STEPS[2][0].replace(kit.DB_PASSWORD, "hunt…(19 chars)")
    assert aws.recover.endswith("/root/secret.env --layer 2")
    key = rules["private-key"][0]
    assert (key.layer, key.path, key.severity) == (4, "root/.ssh/id_ed25519", Severity.CRITICAL)
    arg = rules["build-arg-secret"][0]
    assert arg.layer == 2 and "DB_PASSWORD" in arg.title
    assert kit.DB_PASSWORD not in arg.match  # redacted
    assert [(f.layer, f.path) for f in rules["setuid"]] == [(7, "usr/bin/suidtool")]
    assert [(f.layer, f.path) for f in rules["file-capability"]] == [(7, "usr/bin/captool")]
    assert any(f.instruction.startswith("ENV GITHUB_TOKEN") for f in rules["env-secret"])
    hidden = {(f.layer, f.path) for f in rules["hidden-file"]}
    assert hidden == {(1, "etc/app.conf"), (2, "root/secret.env"), (1, "opt/data/old.txt")}


def test_secrets_cli_json_and_fail_on(built: kit.Built, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(built, "secrets", built.name, "--format", "json", "--fail-on", "critical") == 1
    rows = json.loads(capsys.readouterr().out)
    assert {"Severity", "Rule", "Layer", "Path", "Instruction", "Recover"} <= rows[0].keys()
    assert _cli(built, "secrets", built.name, "--min-severity", "critical") == 0


def test_secrets_rules_file_and_allow_list(built: kit.Built, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nid = "app-mode"\ndescription = "debug mode"\nseverity = "low"\n'
        "regex = 'mode=(debug)'\nkeywords = [\"mode=\"]\n"
        '[allow]\nrules = ["setuid"]\npaths = ["usr/bin/captool"]\n'
    )
    result = built.engine.forensics.secrets(built.name, rules_file=rules)
    got = _by_rule(result.findings)
    assert [(f.layer, f.path) for f in got["app-mode"]] == [(5, "etc/app.conf")]
    assert "setuid" not in got and "file-capability" not in got


# -- waste ---------------------------------------------------------------------------------


def test_waste_exact_numbers(built: kit.Built) -> None:
    w = built.engine.forensics.waste(built.name)
    assert w.total_bytes == kit.TOTAL_FILE_BYTES
    assert w.deleted_bytes == kit.WASTE_DELETED
    assert w.overwritten_bytes == kit.WASTE_OVERWRITTEN
    assert w.identical_bytes == kit.WASTE_IDENTICAL
    assert w.reclaimable_bytes == kit.WASTE_DELETED + kit.WASTE_OVERWRITTEN
    assert w.efficiency == pytest.approx(1 - w.reclaimable_bytes / kit.TOTAL_FILE_BYTES)
    big = next(p for p in w.paths if p.path == "srv/big.bin")
    # dive would count both copies (600 kB); one copy must stay.
    assert (big.total, big.kept, big.reclaimable) == (2 * len(kit.BIG), len(kit.BIG), len(kit.BIG))
    assert w.per_layer[kit.LAYER_OF["big-again"]] == len(kit.BIG)


def test_waste_thresholds_exit_1(built: kit.Built, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(built, "waste", built.name, "--lowest-efficiency", "0.1") == 0
    assert _cli(built, "waste", built.name, "--lowest-efficiency", "0.99") == 1
    assert _cli(built, "waste", built.name, "--highest-wasted-bytes", "1000") == 1
    capsys.readouterr()
    assert _cli(built, "waste", built.name, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ReclaimableBytes"] == kit.WASTE_DELETED + kit.WASTE_OVERWRITTEN


# -- tree / diff ---------------------------------------------------------------------------


def test_tree_markers(built: kit.Built) -> None:
    t = built.engine.forensics.tree(built.name, layer=kit.LAYER_OF["opaque"])
    marks = {n.path: n.marker for n in t.nodes}
    assert marks["opt/data"] == "O"
    assert marks["opt/data/new.txt"] == "A"
    t = built.engine.forensics.tree(built.name, layer=kit.LAYER_OF["secret-deleted"])
    assert {n.path: n.marker for n in t.nodes}["root/secret.env"] == "D"
    full = built.engine.forensics.tree(built.name, path="/etc")
    nodes = {n.path: n for n in full.nodes}
    assert nodes["etc/app.conf"].marker == "M" and nodes["etc/app.conf"].layer == 5
    # /etc is re-emitted unchanged by layers 1 and 5 (the parent of what they changed): it
    # was added by layer 0, which the tree said was layer 5 ("A ... L5").
    assert (nodes["etc"].marker, nodes["etc"].layer) == ("A", 0)
    assert "root/secret.env" not in nodes


def test_image_diff_between_builds_shows_exactly_the_one_file(built: kit.Built) -> None:
    from lamina.transports import local

    other = kit.build_image(variant=b"mode=debug\nlevel=3\nname=app\n")
    local.write(built.engine.store, other, names=["docker.io/library/forensics:other"])
    d = built.engine.forensics.diff(built.name, "forensics:other", layer=None, unified=True)
    assert [(e.change, e.path) for e in d.entries] == [("C", "etc/app.conf")]
    assert d.entries[0].changed == ("content",)
    assert "-level=2\n+level=3\n" in d.entries[0].unified
    d = built.engine.forensics.diff(built.name, None, layer=kit.LAYER_OF["opaque"], unified=False)
    assert [(e.change, e.path) for e in d.entries] == [
        ("D", "opt/data/old.txt"),
        ("A", "opt/data/new.txt"),
    ] or sorted((e.change, e.path) for e in d.entries) == [
        ("A", "opt/data/new.txt"),
        ("D", "opt/data/old.txt"),
    ]


# -- transports ----------------------------------------------------------------------------


def test_an_archive_is_analysed_in_place_with_the_same_answers(built: kit.Built) -> None:
    spec = f"oci-archive:{built.archive}"
    f = built.engine.forensics
    images_before = len(built.engine.store.images.list())
    assert f.layers(spec) == f.layers(built.name)
    assert f.waste(spec).json() == f.waste(built.name).json()
    got = {(x.rule, x.layer, x.path) for x in f.secrets(spec).findings}
    want = {(x.rule, x.layer, x.path) for x in f.secrets(built.name).findings}
    assert got == want
    out = io.BytesIO()
    f.cat(spec, "/root/secret.env", layer=2, out=out)
    assert out.getvalue() == kit.SECRET_ENV
    assert len(built.engine.store.images.list()) == images_before  # nothing was loaded


def test_secrets_without_content_reads_no_blob(built: kit.Built) -> None:
    result = built.engine.forensics.secrets(built.name, contents=False)
    rules = {f.rule for f in result.findings}
    assert result.scanned_bytes == 0
    assert {"build-arg-secret", "ssh-private-key-file", "setuid", "hidden-file"} <= rules
    assert "aws-secret-access-key" not in rules  # that one needs the bytes
