"""Headless Chromium for the web page's tests (selenium, Debian's chromium + chromium-driver).

    with chromium_driver(tmp_path) as driver:
        driver.get(url)
        ...
        assert console_problems(driver) == []

Without the browser or its driver the tests are skipped with a loud reason
(failed when CI=true, so a CI image without them cannot pass silently);
scripts/setup installs both. Selenium is always given the driver's path, so
selenium-manager never tries to download one.

``offline=True`` (the default) cuts the page off from everything but the
loopback interface: host names other than localhost do not resolve, and any
other address goes to a proxy that does not exist. A page that loads and works
like that needs no internet.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
SETUP_HINT = "run scripts/setup as root, or: sudo apt-get install chromium chromium-driver"

# Non-loopback names fail to resolve; IP literals go to a closed port on loopback as a proxy
# (Chrome never sends loopback itself through a proxy).
OFFLINE_ARGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
)


def _missing(what: str) -> None:
    message = f"web UI tests need {what}; {SETUP_HINT}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_selenium() -> None:
    """Skip (fail in CI) the calling test module when selenium is not installed."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing("selenium (pip install -e '.[dev]')")


def find_chromium() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    _missing("Chromium (/usr/bin/chromium or chromium on PATH)")
    raise AssertionError("unreachable")


def find_chromedriver() -> str:
    path = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if os.access("/usr/bin/chromedriver", os.X_OK) else None
    )
    if path is None:
        _missing("chromedriver on PATH (Debian package chromium-driver)")
        raise AssertionError("unreachable")
    return path


@contextmanager
def chromium_driver(tmp_path: Path, *, offline: bool = True) -> Iterator[object]:
    """A headless Chromium WebDriver with its own profile under ``tmp_path``."""
    require_selenium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = find_chromium()
    driver_path = find_chromedriver()

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,900",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    if offline:
        for arg in OFFLINE_ARGS:
            options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def console_log(driver: object) -> list[dict[str, object]]:
    """The browser console entries since the last call (selenium empties the buffer)."""
    entries: list[dict[str, object]] = driver.get_log("browser")  # type: ignore[attr-defined]
    return entries


def console_problems(
    driver: object, ignore: tuple[str, ...] = (), entries: list[dict[str, object]] | None = None
) -> list[str]:
    """Console errors: uncaught exceptions, failed requests, CSP violations.

    Chromium reports a failed load ("Failed to load resource: ..." with the URL)
    and a refused one (Content Security Policy) at level SEVERE. ``ignore`` is
    regular expressions for messages a test expects (e.g. the 401 of the
    session check before logging in, or tiles from an unreachable tile server).
    """
    if entries is None:
        entries = console_log(driver)
    problems = []
    for entry in entries:
        message = str(entry.get("message", ""))
        is_error = entry.get("level") == "SEVERE" or "Content Security Policy" in message
        if is_error and not any(re.search(pattern, message) for pattern in ignore):
            problems.append(message)
    return problems
