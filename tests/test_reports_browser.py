"""The HTML report opened in real headless Chromium (Debian's ``chromium`` package).

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (file
descriptors 3 and 4, NUL-separated JSON), so the test needs no extra Python package and no
network port. It loads the report from disk, waits for every image, reads the section
headings and each image's natural size from the live DOM, and takes a screenshot whose
pixels must vary. Skipped, with the reason, only where Chromium is not installed.
"""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support import tabscope_command
from test_reports import make_results

from tabscope.reports import write_report
from tabscope.reports.build import SECTION_TITLES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed (apt-get install chromium); the report's browser test "
           "needs a real browser",
)]

#: What the page reports about itself once loaded; evaluated by the browser, not the page
#: (the report itself carries no script).
PAGE_FACTS = """JSON.stringify({
  url: location.href,
  ready: document.readyState,
  headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent.trim()),
  images: Array.from(document.images).map(i => ({complete: i.complete,
      width: i.naturalWidth, height: i.naturalHeight, alt: i.alt})),
  height: document.documentElement.scrollHeight,
  externals: Array.from(document.querySelectorAll('[src], link[href]'))
      .map(e => e.getAttribute('src') || e.getAttribute('href'))
      .filter(u => !u.startsWith('data:'))
})"""


class DevToolsPipe:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, user_data_dir: Path, timeout: float = 60.0):
        self.timeout = timeout
        to_browser_read, self._write = os.pipe()
        self._read, from_browser_write = os.pipe()

        def as_fd_3_and_4():
            # Chromium reads commands on fd 3 and writes replies on fd 4. Move both ends
            # above the low numbers first so that neither dup2 clobbers the other.
            high_in = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            high_out = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--hide-scrollbars", "--window-size=1280,1000",
             f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=as_fd_3_and_4, close_fds=False,
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self._read], [], [], max(left, 0))
                if not ready:
                    raise TimeoutError(f"no reply to {method} within {self.timeout} s")
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the pipe while waiting for {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply["result"]

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)


def open_in_chromium(page: Path, workdir: Path, screenshot: Path) -> dict:
    """Load ``page`` in headless Chromium; return the page's facts and save a screenshot
    of the whole page."""
    browser = DevToolsPipe(workdir / "chromium-profile")
    try:
        url = page.resolve().as_uri()
        target = browser.send("Target.createTarget", {"url": url})
        session = browser.send("Target.attachToTarget",
                               {"targetId": target["targetId"], "flatten": True})["sessionId"]
        browser.send("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session)
        deadline = time.monotonic() + 30
        while True:
            result = browser.send("Runtime.evaluate", {"expression": PAGE_FACTS,
                                                       "returnByValue": True}, session)
            value = result["result"].get("value")
            # Until the navigation commits, the tab still shows its empty first document,
            # and while it commits the evaluation can find no document at all.
            facts = json.loads(value) if isinstance(value, str) else {
                "url": None, "ready": None, "images": [], "error": result}
            loaded = (facts["url"] == url and facts["ready"] == "complete"
                      and all(i["complete"] for i in facts["images"]))
            if loaded or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # The whole page, not only the first screenful.
        shot = browser.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": facts["height"], "scale": 1},
        }, session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        return facts
    finally:
        browser.close()


def check_report_in_browser(html: Path, tmp_path: Path, n_figures: int) -> dict:
    import matplotlib.image

    facts = open_in_chromium(html, tmp_path, tmp_path / "screenshot.png")
    assert facts["url"] == html.resolve().as_uri() and facts["ready"] == "complete"
    assert facts["headings"] == list(SECTION_TITLES)
    assert len(facts["images"]) == n_figures
    for image in facts["images"]:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
    assert facts["externals"] == []
    assert facts["height"] > 3000  # the whole report laid out, not an error page
    pixels = matplotlib.image.imread(io.BytesIO((tmp_path / "screenshot.png").read_bytes()))
    assert pixels.shape[:2] == (facts["height"], 1280)
    assert float(np.std(pixels[..., :3])) > 0.05  # text and tables, not a blank page
    return facts


def test_fixture_report_renders_in_chromium(tmp_path):
    results = tmp_path / "results"
    make_results(results)
    html = write_report(results)["html"]
    facts = check_report_in_browser(html, tmp_path, n_figures=9)
    assert {image["alt"] for image in facts["images"]} >= {
        "Metric gap and mean kappa-bar against the proportion of irregular test examples"}


def _tiny_suite_results(directory: Path) -> None:
    from tabscope.bench.runner import run_suite
    from tabscope.bench.suite import parse_suite

    suite = parse_suite({
        "name": "tiny", "datasets": ["sklearn:diabetes", "sklearn:breast_cancer"],
        "seeds": [0], "analyses": ["irregularity", "effective_parameters", "fidelity"],
        "compare": [["mlp", "xgboost"]],
        "models": {"mlp": {"hidden_layer_sizes": [32], "max_steps": 50, "batch_size": 64},
                   "xgboost": {"n_estimators": 10, "max_depth": 3}},
        "analysis": {"max_eval": 80, "n_redraws": 5},
    })
    run_suite(suite, directory)


def test_report_of_a_real_tiny_run_through_the_cli_renders_in_chromium(tmp_path):
    pytest.importorskip("tabscope.models", reason="tabscope.models is not importable")
    import tabscope.models

    if not hasattr(tabscope.models, "TelescopingMLPRegressor"):
        pytest.skip("the telescoping network estimators are not in tabscope.models yet")
    results = tmp_path / "results"
    _tiny_suite_results(results)
    started = time.perf_counter()
    completed = subprocess.run([*tabscope_command(), "report", str(results)], capture_output=True,
                               text=True, timeout=120)
    seconds = time.perf_counter() - started
    assert completed.returncode == 0, completed.stderr
    assert str(results / "report.html") in completed.stdout
    assert seconds < 30, f"tabscope report took {seconds:.1f} s"
    facts = check_report_in_browser(results / "report.html", tmp_path, n_figures=11)
    assert (results / "figures" / "irregularity.png").stat().st_size > 10_000
    print(f"tabscope report on a tiny real run: {seconds:.1f} s; images: {facts['images']}",
          file=sys.stderr)
