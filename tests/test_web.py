"""The web page at / in a real headless browser (Debian's Chromium, driven by selenium through
chromedriver) against the real server: the playground sends a tool-call request and shows the raw
request and response, which model and adapter answered and the forced vs sampled tokens; the status
view lists the resident model and its requests. Skips only where no Chromium can be installed (the
Makefile installs Debian's chromium and chromium-driver where apt-get is available), and says so."""

import json
import os
import shutil

import httpx
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)),
                                reason="no Chromium here: `apt-get install chromium chromium-driver` was not possible")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"):
        opts.add_argument(flag)
    b = webdriver.Chrome(service=Service(DRIVER), options=opts)
    b.set_page_load_timeout(30)
    yield b
    b.quit()


def test_the_page_is_served_from_the_package(server):
    r = httpx.get(server + "/")
    assert r.status_code == 200 and "<title>edgeslm</title>" in r.text and "cdn" not in r.text.lower()
    assert httpx.get(server + "/web/app.js").status_code == 200


def test_playground_sends_a_tool_call_and_shows_what_answered(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(server + "/")
    wait = WebDriverWait(browser, 60)
    wait.until(lambda b: len(Select(b.find_element(By.ID, "model")).options) > 0)
    Select(browser.find_element(By.ID, "model")).select_by_value("gemma-3-270m-q4_k_m")
    Select(browser.find_element(By.ID, "tool-choice")).select_by_visible_text("required")
    browser.find_element(By.ID, "send").click()
    wait.until(ec.presence_of_element_located((By.ID, "answered-by")))
    assert browser.find_element(By.ID, "answered-by").text == "gemma-3-270m-q4_k_m@tools"
    shown = json.loads(browser.find_element(By.ID, "raw-response").text)
    call = shown["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and "city" in json.loads(call["function"]["arguments"])
    assert json.loads(browser.find_element(By.ID, "raw-request").text)["tool_choice"] == "required"
    forced = int(browser.find_element(By.ID, "forced").text.split()[0])
    assert forced == shown["timings"]["forced_tokens"] and forced > 0
    assert "get_weather(" in browser.find_element(By.ID, "answer").text


def test_a_bad_request_shows_the_servers_error(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    browser.find_element(By.ID, "tools").clear()
    browser.find_element(By.ID, "tools").send_keys("[not json")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 10).until(lambda b: "not valid JSON" in b.find_element(By.ID, "answer").text)


def test_status_view_lists_the_model_and_its_requests(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/")
    browser.find_element(By.ID, "tab-status").click()
    row = WebDriverWait(browser, 20).until(
        lambda b: b.find_element(By.CSS_SELECTOR, "#models tr[data-model='gemma-3-270m-q4_k_m']"))
    assert not browser.find_element(By.ID, "play").is_displayed()  # one view at a time
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[1] == "yes" and cells[2:5] == ["0", "0", "0"] and cells[6] == "tools"
    assert "tools" in browser.find_element(By.ID, "adapters").text
    status = httpx.get(server + "/v1/status").json()
    assert status["decode_tokens_per_s"] is None or status["decode_tokens_per_s"] > 0


def test_status_reads_the_newest_reports_from_the_store(server, home):
    q = home / "reports" / "qualify"
    q.mkdir(parents=True, exist_ok=True)
    (q / "m-20260101T000000.json").write_text(json.dumps({"created": "2026-01-01", "verdict": {"overall": "fail"}}))
    (q / "m-20260102T000000.json").write_text(json.dumps({"created": "2026-01-02", "verdict": {"overall": "pass"}}))
    (q / "m-20260102T000000.png").write_bytes(b"\x89PNG\r\n\x1a\n fake")
    s = httpx.get(server + "/v1/status").json()["qualify"]
    assert s["name"] == "m-20260102T000000" and s["overall"] == "pass"
    png = httpx.get(server + s["chart"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert httpx.get(server + "/v1/status/qualify/..%2F..%2Fetc%2Fpasswd.png").status_code == 404
