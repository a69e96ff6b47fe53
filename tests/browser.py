"""Open an HTML report in Debian's headless Chromium (Selenium + chromium-driver): no console
errors, every image decoded, and a screenshot kept as a CI artefact.

Under CI (CI=true) a missing Chromium, chromedriver or selenium fails the test: the check must
never be skipped silently there. Elsewhere it skips with the install command.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,2000",
]
INSTALL = "apt-get install -y chromium chromium-driver (and pip install selenium)"


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the browser check ({INSTALL})")
    pytest.skip(f"{message} ({INSTALL})")


def artefacts_dir() -> Path:
    path = Path(os.environ.get("CI_ARTEFACTS", "ci-artefacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_in_browser(html: Path, screenshot_name: str) -> dict:
    """Load `html` from disk; return what the page reported, after asserting it is clean."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        _unavailable(f"Chromium not found (chromium: {chromium}, chromedriver: {driver_path})")
    with tempfile.TemporaryDirectory(prefix="newslab-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Both paths given: Selenium Manager has nothing to look up or download.
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            driver.get(html.resolve().as_uri())
            page = driver.execute_script(
                "return {title: document.title, ready: document.readyState,"
                " height: document.documentElement.scrollHeight,"
                " images: Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth,"
                " alt: i.alt})), text: document.body.innerText}"
            )
            errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
            driver.set_window_size(1280, min(max(page["height"], 800), 12000))
            shot = artefacts_dir() / screenshot_name
            driver.save_screenshot(str(shot))
        finally:
            driver.quit()
    assert not errors, f"console errors in {html}: {errors}"
    assert page["images"], f"{html} shows no image"
    broken = [i["alt"] for i in page["images"] if not i["complete"] or i["width"] == 0]
    assert not broken, f"images that did not load in {html}: {broken}"
    assert shot.is_file() and shot.stat().st_size > 10_000
    return page
