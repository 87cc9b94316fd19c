"""A real headless browser (Chromium via Selenium) reads the meeting page in Arabic and English."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.test_linked_data_helpers import MEETING

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install -y chromium chromium-driver && pip install selenium"
TITLES = {
    "ar": "توطين الخطة الحضرية الجديدة وتنفيذها: اجتماع رفيع المستوى للّجان الإقليمية",
    "en": "Localization and implementation of the New Urban Agenda: Regional Commissions high-level meeting",
}


def _unavailable(reason: str):
    if os.environ.get("LODPUB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser required (LODPUB_REQUIRE_BROWSER=1) but {reason}; install: {INSTALL}")
    pytest.skip(f"{reason}; install: {INSTALL}")


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed")
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        _unavailable("chromium or chromedriver is missing")
    profile = tempfile.mkdtemp(prefix="lodpub-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     f"--user-data-dir={profile}", "--window-size=1100,1400", "--lang=en-US"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _state(driver) -> tuple[str, str, str]:
    from selenium.webdriver.common.by import By
    root = driver.find_element(By.TAG_NAME, "html")
    return root.get_attribute("lang"), root.get_attribute("dir"), driver.find_element(By.TAG_NAME, "h1").text


def test_meeting_page_in_arabic_then_english_by_the_switcher(browser, server, artifacts):
    from selenium.webdriver.common.by import By
    browser.get(f"{server.url}/id/{MEETING}?lang=ar")  # the thing's IRI: 303 → its page
    assert browser.current_url.startswith(f"{server.url}/doc/{MEETING}")
    lang, direction, title = _state(browser)
    assert (lang, direction) == ("ar", "rtl")
    assert title == TITLES["ar"]
    heading = browser.find_element(By.TAG_NAME, "h1")
    assert heading.is_displayed() and heading.value_of_css_property("direction") == "rtl"
    browser.save_screenshot(str(artifacts / "meeting-ar.png"))

    browser.find_element(By.CSS_SELECTOR, 'nav.languages a[hreflang="en"]').click()
    assert browser.current_url.endswith("?lang=en")
    lang, direction, title = _state(browser)
    assert (lang, direction) == ("en", "ltr")
    assert title == TITLES["en"]
    browser.save_screenshot(str(artifacts / "meeting-en.png"))

    # the RDF is one click away
    browser.find_element(By.CSS_SELECTOR, 'nav.formats a[type="text/turtle"]').click()
    assert "@prefix" in browser.page_source


def test_phone_width_has_no_horizontal_scroll(browser, server, artifacts):
    browser.set_window_size(390, 844)
    try:
        browser.get(f"{server.url}/doc/{MEETING}?lang=ar")
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1
        browser.save_screenshot(str(artifacts / "meeting-ar-phone.png"))
    finally:
        browser.set_window_size(1100, 1400)
