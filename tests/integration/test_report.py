"""``lamina report`` rendered by a real browser: Debian's chromium, headless, offline."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_forensics_kit as kit

from lamina.cli.main import main

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def page() -> Iterator[tuple[kit.Built, Path]]:
    d = Path(tempfile.mkdtemp(prefix="lamina-report-", dir="/dev/shm"))
    b = kit.store_image(d / "root")
    out = d / "report.html"
    assert main(["--root", str(b.engine.root), "report", b.name, "-o", str(out)]) == 0
    yield b, out
    b.engine.close()
    shutil.rmtree(d, ignore_errors=True)
    b.archive.unlink(missing_ok=True)


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("chromium") or "chromium"
    return subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        timeout=120,
        check=True,
    )


def test_report_is_self_contained(page: tuple[kit.Built, Path]) -> None:
    _, out = page
    html = out.read_text()
    assert "<script" not in html
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html)  # nothing to fetch
    assert kit.DB_PASSWORD not in html and kit.AWS_SECRET not in html  # matches are redacted


@pytest.mark.needs_peer("chromium")
def test_report_renders_in_headless_chromium(page: tuple[kit.Built, Path], tmp_path: Path) -> None:
    b, out = page
    dom = _chromium("--dump-dom", out.as_uri(), profile=tmp_path / "p1").stdout.decode()
    assert dom.count('class="layer-bar"') == len(kit.STEPS)
    findings = b.engine.forensics.secrets(b.name).findings
    assert dom.count('class="finding"') == len(findings)
    for step, _ in kit.STEPS[1:3]:
        assert step.split(" ")[0] in dom
    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=900,700", out.as_uri(),
              profile=tmp_path / "p2")  # fmt: skip
    colours = png_colours(shot.read_bytes())
    assert len(colours) > 1, "the screenshot is blank"
    assert len(colours) > 8  # text, bars and severity badges, not a flat page


def png_colours(data: bytes, *, limit: int = 4096) -> set[bytes]:
    """Distinct pixel values of an 8-bit RGB/RGBA PNG (stdlib only: chunks, zlib, unfilter)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, bytearray()
    width = height = bpp = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        for x in range(0, stride, bpp * 7):  # every 7th pixel is plenty to tell
            colours.add(bytes(line[x : x + bpp]))
        if len(colours) >= limit:
            break
        prev = line
    return colours
