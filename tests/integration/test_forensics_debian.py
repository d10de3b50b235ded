"""A clean Debian minbase image: no high-severity secret, exactly the expected lower ones, a
clean deep verify. The rootfs is made with debootstrap once and shared with ``bench/``."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from lamina.engine.engine import Engine
from lamina.forensics.rules import Severity
from lamina.testing.datasets import debian_minbase_tar_gz

DATA = Path(__file__).resolve().parents[2] / "bench" / ".data"
pytestmark = [pytest.mark.needs_root, pytest.mark.needs_peer("debootstrap")]


@pytest.fixture(scope="module")
def debian() -> Iterator[Engine]:
    tarball = debian_minbase_tar_gz(DATA)
    d = Path(tempfile.mkdtemp(prefix="lamina-debian-", dir="/dev/shm"))
    engine = Engine.open(d / "root")
    with tarball.open("rb") as f:
        engine.images.import_rootfs(f, reference_="debian:minbase")
    yield engine
    engine.close()
    shutil.rmtree(d, ignore_errors=True)


def test_no_high_severity_finding_and_the_expected_lower_ones(debian: Engine) -> None:
    result = debian.forensics.secrets("debian:minbase")
    assert [f for f in result.findings if f.severity >= Severity.HIGH] == []
    got = Counter((f.severity, f.rule) for f in result.findings)
    # The standard setuid-root tools, the shadow-group helpers, and GnuTLS's compiled-in FIPS
    # self-test keys (docs/forensics.md says why each is right).
    assert got == Counter(
        {
            (Severity.MEDIUM, "setuid"): 8,
            (Severity.LOW, "setgid"): 3,
            (Severity.LOW, "private-key"): 1,
        }
    )
    setuid = sorted(f.path for f in result.findings if f.rule == "setuid")
    assert setuid == [
        f"usr/bin/{n}"
        for n in ("chfn", "chsh", "gpasswd", "mount", "newgrp", "passwd", "su", "umount")
    ]
    key = next(f for f in result.findings if f.rule == "private-key")
    assert key.path.startswith("usr/lib/x86_64-linux-gnu/libgnutls.so")


def test_index_commands_and_deep_verify(debian: Engine) -> None:
    stories = debian.forensics.layers("debian:minbase")
    assert len(stories) == 1 and stories[0].added > 5000
    w = debian.forensics.waste("debian:minbase")
    assert (w.reclaimable_bytes, w.efficiency) == (0, 1.0)
    assert debian.forensics.verify_deep("debian:minbase", repair=False).findings == []
