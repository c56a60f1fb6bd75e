"""The HTML report renders in a real browser: headless Chromium draws a non-blank page with the leaderboard.

Needs the Debian ``chromium`` package (``apt-get install -y chromium``); skipped without it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import register_tiny_provider
from PIL import Image

from hsbench.benchmark import BenchmarkConfig, run_benchmark
from hsbench.registry import DATASETS
from hsbench.report import load_suite_results, write_report
from hsbench.store import ResultsStore
from hsbench.suite import load_suite

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless Chromium not installed (Debian: apt-get install -y chromium)"
)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120, check=True)


@pytest.fixture
def report_page(tmp_path) -> Path:
    register_tiny_provider("tiny_segmentation")
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "html", "seeds": [0, 1], "splits": ["fraction=0.5", "fraction=1.0"], "datasets": ["tiny_segmentation"],
        "strategies": [
            {"strategy": "in_domain", "label": "svm C=10",
             "options": {"model": "svm", "svm_c_grid": [10.0], "svm_max_pixels": 300}},
            {"strategy": "in_domain", "label": "svm C=0.01",
             "options": {"model": "svm", "svm_c_grid": [0.01], "svm_max_pixels": 300}},
        ],
    }))
    suite = load_suite(suite_file)
    run_benchmark(suite, BenchmarkConfig(results_dir=tmp_path / "results", device="cpu", progress=False))
    data = load_suite_results(ResultsStore(tmp_path / "results" / "hsbench.db"), suite)
    yield write_report(data, tmp_path / "report").tables["html"]
    DATASETS.module_dict.pop("tiny_segmentation", None)


def test_chromium_renders_the_leaderboard_and_figures(report_page, tmp_path) -> None:
    # Copy the page alone into an empty folder: it must not need its figure files.
    alone = tmp_path / "alone" / "page.html"
    alone.parent.mkdir()
    alone.write_bytes(report_page.read_bytes())
    dom = _chromium(tmp_path, "--dump-dom", alone.as_uri()).stdout
    assert '<table class="leaderboard">' in dom and "svm C=10" in dom and "<strong>" in dom
    screenshot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2400", alone.as_uri())
    pixels = np.asarray(Image.open(screenshot).convert("L"), dtype=np.float32)
    assert pixels.std() > 10, "the screenshot is blank"
    dark = pixels < 128
    assert dark.mean() > 0.005, "no text or figure drawn"
    # Figures (embedded PNGs) give many distinct grey levels; a text-only page has few.
    assert len(np.unique(pixels.astype(np.uint8))) > 64
