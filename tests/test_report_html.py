"""report.html: self-contained (no script, no network, < 1 MB) and rendered by headless Chromium
with no console message and a non-blank screenshot. Under CI=true a missing browser fails."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from placer.sweep import spec_from_lists
from placer.sweep_exec import run_sweep
from placer.sweep_report import write_summary

MODEL = "llama-3.1-8b"


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("headless Chromium is required under CI=true (apt-get install -y chromium)")
    pytest.skip("no Chromium on this machine (apt-get install -y chromium)")


def render(html: Path, png: Path) -> list[str]:
    """Screenshot ``html``; return the browser's console messages."""
    r = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--enable-logging=stderr", "--v=0", "--window-size=1000,1200",
                        f"--user-data-dir={png.parent / 'profile'}", f"--screenshot={png}", html.as_uri()],
                       capture_output=True, text=True, timeout=180)
    assert png.is_file(), r.stderr[-2000:]
    return [line for line in r.stderr.splitlines() if ":CONSOLE" in line]


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and unfiltered rows of an 8-bit RGB/RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride, rows, prev = width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def _coloured_fraction(png: Path) -> float:
    """Share of pixels that are neither white nor near-white (coloured bars, text, points)."""
    width, _, rows = png_pixels(png)
    bpp = len(rows[0]) // width
    dark = total = 0
    for row in rows[::4]:
        for x in range(0, width, 4):
            r, g, b = row[x * bpp:x * bpp + 3]
            total += 1
            dark += (r + g + b) < 600
    return dark / total


def _self_contained(text: str) -> None:
    assert len(text.encode()) < 1_000_000
    assert "<script" not in text and "<link" not in text and "src=" not in text
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), "a network reference"


@pytest.fixture(scope="module")
def plan_html(tmp_path_factory):
    from placer.compiler import compile_result, write_outputs

    out = tmp_path_factory.mktemp("plan")
    result = compile_result(MODEL, context=2048, concurrency=3, wafers=2, time_limit=2)
    write_outputs(result, out)
    return result, out / "report.html"


def test_plan_html_is_self_contained_with_bars(plan_html):
    result, path = plan_html
    text = path.read_text()
    _self_contained(text)
    for w in result.plan.wafers:   # one stacked bar per wafer, each part's bytes on hover
        assert f"wafer {w.index}: weights {w.memory.weights / 1e9:.3f} GB" in text
        assert f"wafer {w.index}: decode stage {w.stage_seconds * 1e3:.3f} ms" in text
    assert "Binding constraints" in text


def test_plan_html_renders_in_chromium(plan_html, tmp_path):
    png = tmp_path / "plan.png"
    assert render(plan_html[1], png) == []
    assert _coloured_fraction(png) > 0.05


def test_sweep_html_renders_with_settings_on_hover(tmp_path):
    spec = spec_from_lists([MODEL], wafers="1,2", concurrency="1,4", context=[2048],
                           options={"time_limit": 2})
    result = run_sweep(spec, jobs=1, summary_context=4096)
    write_summary(result, tmp_path)
    text = (tmp_path / "report.html").read_text()
    _self_contained(text)
    titles = re.findall(r"<circle [^>]*><title>([^<]*)</title>", text)
    assert len(titles) == 4
    assert sum("(frontier)" in t for t in titles) == sum(r["frontier"] for r in result.rows)
    assert all("concurrency" in t and "wafers" in t and "context 2048" in t for t in titles)
    png = tmp_path / "sweep.png"
    assert render(tmp_path / "report.html", png) == []
    assert _coloured_fraction(png) > 0.01


def test_console_errors_and_blank_pages_are_caught(tmp_path):
    """The checks above can fail: a page with a script error, and a blank page."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><script>console.error("boom")</script></body></html>')
    png = tmp_path / "bad.png"
    messages = render(bad, png)
    assert any("boom" in m for m in messages)
    assert _coloured_fraction(png) == 0.0
