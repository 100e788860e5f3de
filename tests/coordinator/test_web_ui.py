"""The coordinator's web page in a real headless Chromium, against a real running coordinator.

``live_coordinator`` (conftest.py) is the coordinator served by uvicorn on
loopback with a SQLite database; ``add_reports`` seals real signed reports
and ingests them through the gateway batch path, so the page sees exactly
what the field would produce.

The browser runs offline (tests/browser.py): only loopback answers. Every
test checks the console for script errors, refused or failed requests,
apart from the two failures that are expected: the 401 of the "am I logged
in?" check before logging in, and tiles from a tile server out of reach.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from browser import chromium_driver, console_problems, require_selenium

require_selenium()

from selenium.common.exceptions import (  # noqa: E402
    NoAlertPresentException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "build" / "screenshots" / "coordinator-feed.png"
WAIT_S = 10.0
HOSTILE = "<img src=x onerror=alert(1)>"
SESSION_CHECK_401 = r"/api/v1/session - Failed to load resource: .*401"


def report(
    status: str, lat: float, lon: float, people: int = 1, needs: str = "", text: str | None = None,
    **more: Any,
) -> dict[str, Any]:  # fmt: skip
    """A report spec for ``add_reports``; needs are space-separated labels."""
    spec = {"status": status, "lat": lat, "lon": lon, "people": people, "needs": needs.split()}
    return spec | ({"text": text} if text is not None else {}) | more


# Around Yerevan's centre (lat 40.18, lon 44.51).
SEED = [
    report("sos", 40.1812, 44.5136, 3, "medicine", "Building collapsed, 3 under rubble"),
    report("medical", 40.1776, 44.5126, 1, "medicine", "Insulin needed, elderly man"),
    report("safe", 40.1850, 44.5150, 4, "", "Ընտանիքով ապահով ենք"),
]

# What the tests read of the list, taken in one go inside the page: rows are replaced
# when a report changes, so element handles kept across polls could go stale.
ROWS_JS = """
return Array.from(document.querySelectorAll('#report-list .row')).map((r) => ({
  id: r.dataset.id,
  status: r.dataset.status,
  badge: r.querySelector('.badge').innerText,
  state: r.querySelector('.state').textContent,
  text: (r.querySelector('.row-text') || {}).textContent || null,
  all: r.innerText,
  imgs: r.querySelectorAll('img').length,
}));
"""
MARKERS_JS = """
const found = {};
document.querySelectorAll('#map .sf-marker[data-report-id]').forEach((m) => {
  found[m.getAttribute('data-report-id')] = m.getAttribute('class');
});
return found;
"""


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium_driver(tmp_path) as d:
        yield d  # type: ignore[misc]


def wait_for(driver: WebDriver, condition: Any, timeout: float = WAIT_S) -> Any:
    return WebDriverWait(
        driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition)


def login(driver: WebDriver, coordinator: Any, role: str) -> None:
    """Open the page and log in through the form, as a person would."""
    username, password = coordinator.users[role]
    driver.get(coordinator.url + "/")
    user_box = wait_for(driver, lambda d: visible(d, "#login-username"))
    user_box.send_keys(username)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    wait_for(driver, lambda d: visible(d, "#app-view"))
    # The live indicator says "live" once the event stream is open.
    wait_for(driver, lambda d: d.find_element(By.ID, "live").get_attribute("data-mode") == "live")


def visible(driver: WebDriver, css: str) -> WebElement | None:
    found = [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]
    return found[0] if found else None


def rows(driver: WebDriver) -> list[dict[str, Any]]:
    """The report list, top to bottom."""
    found: list[dict[str, Any]] = driver.execute_script(ROWS_JS)
    return found


def wait_rows(driver: WebDriver, ids: list[str]) -> list[dict[str, Any]]:
    """Wait until the list shows every one of ``ids``; their rows, in the order of ``ids``."""

    def shown(d: WebDriver) -> list[dict[str, Any]] | None:
        by_id = {r["id"]: r for r in rows(d)}
        return [by_id[i] for i in ids] if all(i in by_id for i in ids) else None

    result: list[dict[str, Any]] = wait_for(driver, shown)
    return result


def wait_markers(driver: WebDriver, ids: list[str]) -> dict[str, str]:
    """Wait until the map has a marker for each of ``ids``; report id -> its CSS classes."""

    def shown(d: WebDriver) -> dict[str, str] | None:
        found: dict[str, str] = d.execute_script(MARKERS_JS)
        return found if all(i in found for i in ids) else None

    result: dict[str, str] = wait_for(driver, shown)
    return result


def click_row(driver: WebDriver, report_id: str) -> None:
    css = f'#report-list .row[data-id="{report_id}"]'
    wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True)


def counts_total(driver: WebDriver) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, "#counts .total")
    return found[0].text if found else ""


def config(driver: WebDriver) -> dict[str, Any]:
    """GET /api/v1/config from inside the page (its session cookie)."""
    result: dict[str, Any] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('api/v1/config', {credentials: 'same-origin'}).then(r => r.json()).then(done);"
    )
    return result


def expected_failures(driver: WebDriver) -> tuple[str, ...]:
    """Console messages that are not faults: see the module docstring."""
    ignore = [SESSION_CHECK_401]
    tile_url = config(driver).get("tile_url")
    host = urlsplit(tile_url).hostname if tile_url else None
    if host:
        # "{s}.tile.example.org": Leaflet fills in a subdomain.
        ignore.append("//" + re.escape(host).replace(re.escape("{s}"), "[a-z0-9-]+") + "/")
    return tuple(ignore)


def assert_no_alert(driver: WebDriver) -> None:
    try:
        alert = driver.switch_to.alert
    except NoAlertPresentException:
        return
    text = alert.text
    alert.dismiss()
    raise AssertionError(f"the page ran script from report text: alert({text!r})")


def test_responder_logs_in_and_sees_the_feed_with_no_internet(
    live_coordinator: Any, driver: WebDriver
) -> None:
    # Two batches: reports of one batch share their received time, so only these have an order.
    ids = live_coordinator.add_reports(SEED[:2]) + live_coordinator.add_reports(SEED[2:])
    login(driver, live_coordinator, "responder")

    for shown, spec in zip(wait_rows(driver, ids), SEED, strict=True):
        assert shown["status"] == spec["status"]
        # The status is a word, not only a colour.
        assert shown["badge"].casefold() == spec["status"].replace("-", " ").casefold()
        assert shown["text"] == spec["text"]
        assert shown["state"] == "new"
    # Newest first.
    order = [r["id"] for r in rows(driver)]
    assert order.index(ids[2]) < order.index(ids[0])

    markers = wait_markers(driver, ids)
    # Exact positions for a responder: pins, not areas, and no coarsening notice.
    assert all("sf-pin" in markers[i] for i in ids)
    assert visible(driver, "#coarse-note") is None

    # Everything the page needs is local: Leaflet ran, the map shows tiles or the grid.
    assert driver.execute_script("return window.L && L.version") == "1.9.4"
    wait_for(
        driver,
        lambda d: (
            visible(d, "#tiles-note") or d.find_elements(By.CSS_SELECTOR, ".leaflet-tile-loaded")
        ),
    )
    if visible(driver, "#tiles-note"):
        assert "coordinate grid" in driver.find_element(By.ID, "tiles-note").text
        assert driver.find_elements(By.CSS_SELECTOR, ".grid-label")

    assert console_problems(driver, ignore=expected_failures(driver)) == []


def test_new_reports_appear_live_without_reload(live_coordinator: Any, driver: WebDriver) -> None:
    ids = live_coordinator.add_reports(SEED)
    login(driver, live_coordinator, "responder")
    wait_rows(driver, ids)
    wait_for(driver, lambda d: counts_total(d))
    before = counts_total(driver)
    driver.execute_script("window.__noReload = true;")  # gone if the page reloads

    (new_id,) = live_coordinator.add_reports(
        [report("sos", 40.1790, 44.5200, 2, "", "Fire, 2 trapped")]
    )

    (new_row,) = wait_rows(driver, [new_id])
    assert rows(driver)[0]["id"] == new_id  # at the top
    assert new_row["text"] == "Fire, 2 trapped"
    wait_markers(driver, [new_id])
    wait_for(driver, lambda d: counts_total(d) not in ("", before))
    sos = driver.find_element(By.CSS_SELECTOR, '#counts dt[data-key="sos"] + dd').text
    assert int(sos) == 2
    assert driver.execute_script("return window.__noReload === true")
    assert console_problems(driver, ignore=expected_failures(driver)) == []


def test_viewer_sees_coarse_positions_and_no_actions(
    live_coordinator: Any, driver: WebDriver
) -> None:
    ids = live_coordinator.add_reports(SEED)
    login(driver, live_coordinator, "viewer")
    wait_rows(driver, ids)

    note = wait_for(driver, lambda d: visible(d, "#coarse-note"))
    assert "coarsened" in note.text
    assert "viewer" in note.text
    markers = wait_markers(driver, ids)
    assert all("sf-area" in markers[i] for i in ids)

    click_row(driver, ids[0])
    wait_for(driver, lambda d: visible(d, "#details dl"))
    assert driver.find_elements(By.CSS_SELECTOR, "#details [data-action]") == []
    assert "Coarsened to" in driver.find_element(By.ID, "details").text
    assert console_problems(driver, ignore=expected_failures(driver)) == []


def test_hostile_report_text_is_shown_literally(live_coordinator: Any, driver: WebDriver) -> None:
    (report_id,) = live_coordinator.add_reports(
        [report("need-supplies", 40.18, 44.51, 2, "water", HOSTILE)]
    )
    login(driver, live_coordinator, "responder")
    (shown,) = wait_rows(driver, [report_id])

    assert shown["text"] == HOSTILE
    assert shown["imgs"] == 0
    click_row(driver, report_id)
    in_details = wait_for(driver, lambda d: visible(d, "#details .report-text"))
    assert in_details.text == HOSTILE
    assert driver.find_elements(By.CSS_SELECTOR, "#details img, #report-list img") == []
    time.sleep(0.5)  # an injected onerror would have fired by now
    assert_no_alert(driver)
    assert console_problems(driver, ignore=expected_failures(driver)) == []


def test_responder_marks_a_report_resolved(live_coordinator: Any, driver: WebDriver) -> None:
    ids = live_coordinator.add_reports(SEED)
    login(driver, live_coordinator, "responder")
    wait_rows(driver, ids)

    click_row(driver, ids[0])
    wait_for(driver, lambda d: visible(d, '#details [data-action="resolved"]')).click()
    note = wait_for(driver, lambda d: visible(d, "#details .mark-form textarea"))
    note.send_keys("Rescue team 2 got all three out")
    driver.find_element(By.CSS_SELECTOR, "#details .mark-form button.confirm").click()

    history = "Rescue team 2 got all three out"
    wait_for(driver, lambda d: history in d.find_element(By.ID, "details").text)
    driver.find_element(By.ID, "details-close").click()
    wait_for(driver, lambda d: wait_rows(d, [ids[0]])[0]["state"] == "resolved")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, '#counts dt[data-key="resolved"]'))
    assert console_problems(driver, ignore=expected_failures(driver)) == []


# A small town's morning after: every status, several senders, Armenian and Russian text.
TOWN = [
    report("sos", 40.1812, 44.5136, 3, "medicine", "House collapsed on Abovyan St, 3 inside",
           sender="abovyan", age_s=2400),
    report("trapped", 40.1791, 44.5060, 2, "water", "Փլատակների տակ ենք, 2 հոգի", age_s=2100),
    report("medical", 40.1776, 44.5126, 1, "medicine", "Нужен инсулин, пожилой мужчина",
           age_s=1900),
    report("sos", 40.1868, 44.5209, 5, "", "Пожар в подъезде, дети внутри", age_s=1500),
    report("need-supplies", 40.1730, 44.5018, 12, "water food shelter",
           "School gym shelter: 12 people, no water", age_s=1300),
    report("evacuate", 40.1902, 44.5281, 6, "transport", "Cracks in walls, need to leave",
           age_s=1100),
    report("safe", 40.1850, 44.5150, 4, "", "Ընտանիքով ապահով ենք", age_s=950),
    report("missing-person", 40.1755, 44.5190, 1, "", "Ищем Анну, 8 лет, красная куртка",
           age_s=800),
    report("medical", 40.1830, 44.4985, 2, "medicine transport", "Broken leg, cannot walk",
           age_s=640),
    report("need-supplies", 40.1921, 44.5062, 20, "water power", "Ջուր և հոսանք չկա", age_s=500),
    report("safe", 40.1702, 44.5102, 2, "", "Мы в порядке, у соседей", age_s=380),
    report("trapped", 40.1884, 44.5024, 1, "", "Stuck in lift, 3rd floor", age_s=260),
    report("cancel", 40.1812, 44.5136, 0, "", "Earlier SOS sent by mistake", sender="abovyan",
           age_s=180),
    report("evacuate", 40.1760, 44.5250, 3, "shelter", "Տունը վնասված է", age_s=90),
    report("sos", 40.1795, 44.5165, 1, "medicine", age_s=20),
]  # fmt: skip


def test_screenshot_of_a_small_town_feed(live_coordinator: Any, driver: WebDriver) -> None:
    # One batch each, oldest first, so the list's order (by arrival) matches their ages.
    ids = [i for spec in TOWN for i in live_coordinator.add_reports([spec])]
    login(driver, live_coordinator, "responder")
    wait_rows(driver, ids)
    wait_markers(driver, ids)
    wait_for(driver, lambda d: counts_total(d))
    time.sleep(0.5)  # let the map finish its fit-to-markers animation

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOT))
    data = SCREENSHOT.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000
    assert console_problems(driver, ignore=expected_failures(driver)) == []
