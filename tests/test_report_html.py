"""The HTML reports read at 1400 px: rendered by headless Chromium (Debian's ``chromium`` package), the page
needs no horizontal scrolling, every plot is shown at a readable width and the screenshot is not blank. Skips
cleanly where Chromium is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH = 1400
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => Math.round(i.getBoundingClientRect().width));
  document.body.setAttribute('data-probe', JSON.stringify({scroll: document.documentElement.scrollWidth, imgs}));
});</script></body>"""

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},2000",
                               *args], capture_output=True, text=True, timeout=180)


def check_page(html: Path, tmp: Path) -> dict[str, object]:
    import json

    probed = tmp / f"probe-{html.name}"
    probed.write_text(html.read_text().replace("</body>", PROBE))
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri()).stdout
    m = re.search(r"data-probe=\"([^\"]+)\"", dom)
    assert m, "the page did not load in chromium"
    probe = json.loads(m.group(1).replace("&quot;", '"'))
    shot = tmp / f"{html.stem}.png"
    _chromium(f"--screenshot={shot}", html.as_uri())
    with Image.open(shot) as img:
        assert img.size[0] == WIDTH
        colours = img.convert("L").getextrema()
    assert colours[1] - colours[0] > 100  # not a blank page
    assert probe["scroll"] <= WIDTH, f"{html.name} scrolls sideways at {WIDTH} px: {probe}"
    return probe


def test_compare_report_reads_at_1400px(tmp_path: Path, run_cli) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli("search", "--device", "intel-xeon-processor-2c-cfff2f", "--budget-ms", "5,10", "--task",
                           "sst2", "--table", str(ROOT / "search/tables/sst2-minilm-students.json"), "--space",
                           str(ROOT / "search/spaces/minilm-students.toml"), "--episodes", "2", "--candidates", "4",
                           "--out", str(run), "--json")
    assert code == 0, err
    html = tmp_path / "compare.html"
    code, _, err = run_cli("compare", "--students", f"{run},bert-tiny,tinybert-4l", "--budget-ms", "5",
                           "--html", str(html))
    assert code == 0, err
    probe = check_page(html, tmp_path)
    assert probe["imgs"] and all(500 <= w <= WIDTH for w in probe["imgs"]), probe  # type: ignore[union-attr]
    report = tmp_path / "search.html"
    code, _, err = run_cli("report", str(run), "--html", str(report))
    assert code == 0, err
    probe = check_page(report, tmp_path)
    assert len(probe["imgs"]) == 2 and all(500 <= w <= WIDTH for w in probe["imgs"])  # type: ignore[arg-type]
