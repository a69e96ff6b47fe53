"""Open an HTML report in Debian's headless Chromium (Selenium + chromium-driver): no console
errors, every image decoded, and a full-page screenshot kept as a CI artefact (CI_ARTEFACTS,
default ci-artefacts/), beside the report figures tests keep there (keep_artefacts).

Under CI (CI=true) a missing Chromium, chromedriver or selenium fails the test: the check must
never be skipped silently there. Elsewhere it skips with the install command.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest

WIDTH = 1280  # CSS pixels: the report's 1100 px column and its margins
MAX_HEIGHT = (
    40_000  # a report taller than this is unreadable (headless Chromium was checked to capture 25,000 px whole)
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--window-size={WIDTH},2000",
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


def keep_artefacts(files: list[Path], prefix: str) -> list[Path]:
    """Copy `files` into the artefacts folder as PREFIX-NAME; returns the copies."""
    copies = [artefacts_dir() / f"{prefix}-{f.name}" for f in files]
    for source, copy in zip(files, copies):
        shutil.copyfile(source, copy)
    return copies


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    with open(path, "rb") as f:
        header = f.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def _full_page(driver) -> int:
    """Make the viewport as tall as the document (the window's height would count the browser's own bars,
    cutting the page's bottom off the screenshot); returns the document's height."""
    height = 0
    for _ in range(3):  # a new viewport height may reflow the page (it rarely does): measure again
        wanted = min(driver.execute_script("return document.documentElement.scrollHeight"), MAX_HEIGHT)
        if wanted == height:
            break
        height = wanted
        metrics = {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver.execute_script("return document.documentElement.scrollHeight")


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
            page["height"] = _full_page(driver)
            shot = artefacts_dir() / screenshot_name
            driver.save_screenshot(str(shot))
        finally:
            driver.quit()
    assert not errors, f"console errors in {html}: {errors}"
    # the whole page, top to bottom, at the report's width
    assert png_size(shot) == (WIDTH, min(page["height"], MAX_HEIGHT)), f"{shot}: not the full page of {html}"
    assert page["height"] <= MAX_HEIGHT, f"{html} is {page['height']} px tall: the screenshot cuts it at {MAX_HEIGHT}"
    assert page["images"], f"{html} shows no image"
    broken = [i["alt"] for i in page["images"] if not i["complete"] or i["width"] == 0]
    assert not broken, f"images that did not load in {html}: {broken}"
    assert shot.is_file() and shot.stat().st_size > 10_000
    return page
