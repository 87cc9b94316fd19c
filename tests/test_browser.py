"""A real headless browser (Chromium via Selenium) reads the meeting page in Arabic and English."""
from __future__ import annotations

from tests.test_linked_data_helpers import MEETING

TITLES = {
    "ar": "توطين الخطة الحضرية الجديدة وتنفيذها: اجتماع رفيع المستوى للّجان الإقليمية",
    "en": "Localization and implementation of the New Urban Agenda: Regional Commissions high-level meeting",
}


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
