"""The query page in a real headless browser (Chromium via Selenium): highlighting, prefixes,
examples one click away, results fetched and shown as a table, errors shown, no CSP violation."""
from __future__ import annotations


import pytest

from .test_sparql_support import shared_server


@pytest.fixture(scope="module")
def server(built, settings, store_env):
    return shared_server(settings, store_env)


def _wait(driver, condition, seconds=15):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, seconds).until(condition)


def test_examples_run_in_the_page_and_show_a_table(browser, server, artifacts):
    from selenium.webdriver.common.by import By
    browser.get(server.url + "/sparql?lang=en")
    assert browser.find_element(By.TAG_NAME, "h1").text == "SPARQL query"
    # the editor is highlighted (keywords, IRIs, variables)
    assert browser.find_elements(By.CSS_SELECTOR, "#highlight span.t-k")
    assert browser.find_elements(By.CSS_SELECTOR, "#highlight span.t-v")
    # one click on an example loads and runs it
    browser.find_element(By.CSS_SELECTOR, 'a.example[data-slug="04-commission-labels"]').click()
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == 6)
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#results tbody td")]
    assert "ar" in cells and "zh" in cells
    assert any(c.startswith("Economic and Social Commission for Western Asia") for c in cells)
    assert "SELECT ?language ?name" in browser.find_element(By.ID, "query").get_attribute("value")
    assert browser.find_element(By.CSS_SELECTOR, "#results .count").text == "6 rows"
    downloads = [a.get_attribute("data-format") for a in browser.find_elements(By.CSS_SELECTOR, "#results .downloads a")]
    assert downloads == ["json", "xml", "csv", "tsv"]
    browser.save_screenshot(str(artifacts / "sparql-select.png"))

    # IRIs under the base link to the browsed host
    browser.find_element(By.CSS_SELECTOR, 'a.example[data-slug="06-commissions-wikidata"]').click()
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == 5)
    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#results tbody a")]
    assert server.url + "/id/organization/escwa" in hrefs
    assert "http://www.wikidata.org/entity/Q1355485" in hrefs


def test_prefix_buttons_graph_results_and_errors(browser, server, artifacts):
    from selenium.webdriver.common.by import By
    browser.get(server.url + "/sparql?lang=en")
    textarea = browser.find_element(By.ID, "query")
    browser.execute_script("arguments[0].value = 'SELECT * WHERE { ?s a owl:Class } LIMIT 1';"
                           "arguments[0].dispatchEvent(new Event('input'));", textarea)
    browser.find_element(By.CSS_SELECTOR, 'button.prefix[data-prefix="owl"]').click()
    assert textarea.get_attribute("value").startswith("PREFIX owl: <http://www.w3.org/2002/07/owl#>\n")
    browser.find_element(By.CSS_SELECTOR, 'button.prefix[data-prefix="owl"]').click()  # once only
    assert textarea.get_attribute("value").count("PREFIX owl:") == 1

    # a CONSTRUCT example shows Turtle
    browser.find_element(By.CSS_SELECTOR, 'a.example[data-slug="13-outcome-graph"]').click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results pre.graph"))
    assert "@prefix" in browser.find_element(By.CSS_SELECTOR, "#results pre.graph").text

    # a malformed query shows the parser's message
    browser.execute_script("arguments[0].value = 'SELECT * WHERE { ?s ?p }';", textarea)
    browser.find_element(By.ID, "run").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .error"))
    assert "error at 1:" in browser.find_element(By.CSS_SELECTOR, "#results .error").text
    browser.save_screenshot(str(artifacts / "sparql-error.png"))

    # an ASK answer
    browser.find_element(By.CSS_SELECTOR, 'a.example[data-slug="15-six-objectives"]').click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .boolean"))
    assert browser.find_element(By.CSS_SELECTOR, "#results .boolean").text == "true"

    # no script error, no Content-Security-Policy violation (network errors are the 400 above, a favicon)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]
    assert not severe, severe


def test_page_in_arabic(browser, server):
    from selenium.webdriver.common.by import By
    browser.get(server.url + "/sparql?lang=ar")
    root = browser.find_element(By.TAG_NAME, "html")
    assert (root.get_attribute("lang"), root.get_attribute("dir")) == ("ar", "rtl")
    # the editor stays left-to-right (SPARQL is written left to right)
    assert browser.find_element(By.ID, "query").value_of_css_property("direction") == "ltr"
    # the count in Arabic grammar, from the page's script: 1 and 2 have their own words, 3-10 a plural
    for slug, rows, said in (("04-commission-labels", 6, "6 صفوف"), ("07-meeting-when-where", 1, "صف واحد")):
        browser.find_element(By.CSS_SELECTOR, f'a.example[data-slug="{slug}"]').click()
        _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == rows)
        assert browser.find_element(By.CSS_SELECTOR, "#results .count").text == said
