"""The backfill-web page in a real browser (Debian's chromium, driven by
selenium): a person types repositories, presses Add and watches every row
reach its end state, while the real sink, consumers, Kafka, Postgres and the
GitHub simulator do the work. What the page shows is checked against the
rows in Postgres.

Every test saves screenshots (full page) under $BACKFILL_SCREENSHOTS, by
default build/screenshots; page-mid-run.png is the one in the README."""
import base64
import json
import os
import re
import time
import uuid

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from harness import ROOT, TEN_REPOS, check_rows, produce_raw, wait_for

UNKNOWN = "ghost-org/does-not-exist"
SHOTS = os.environ.get("BACKFILL_SCREENSHOTS", os.path.join(ROOT, "build", "screenshots"))
XSS = '<img src=x onerror="document.title=\'pwned\'">'

# Reads every row as a person sees it, in one round trip: the repository
# key, the status cell's text and the "processed / total" cell's text.
READ_ROWS = """
var out = {};
document.querySelectorAll('tr[data-repo]').forEach(function (tr) {
  out[tr.getAttribute('data-repo')] = {
    status: tr.querySelector('.status').textContent.trim(),
    count: tr.querySelector('.count').textContent.trim()};
});
return out;"""

# Records what the aria-live region announces (it is rewritten once a second).
LISTEN = """
window.__heard = [];
var region = document.getElementById('announcer');
new MutationObserver(function () { window.__heard.push(region.textContent); })
  .observe(region, {childList: true, characterData: true, subtree: true});"""


@pytest.fixture
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--window-size=1280,1000"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def screenshot(driver, name):
    """Saves the whole page (not only the viewport) as SHOTS/name."""
    os.makedirs(SHOTS, exist_ok=True)
    m = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = m["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path = os.path.join(SHOTS, name)
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    return path


def start_deployment(pipeline, *consumer_args, consumers=3, latency_ms=0):
    """Sink, consumers and backfill-web, as an operator starts them."""
    if latency_ms:
        pipeline.sim.post("/_sim/config", {"latencyMs": latency_ms})
    pipeline.start("backfill-sink")
    for _ in range(consumers):
        pipeline.start("backfill-consumer", *consumer_args)
    return pipeline.start_web()


def open_page(driver, web):
    driver.get(web.url + "/")
    page_ready(driver)


def reload_page(driver):
    driver.refresh()
    page_ready(driver)


def page_ready(driver):
    assert driver.title.startswith("Bulk add repositories")
    # the page asked /api/backfills (the totals line is filled from it)
    wait_for(lambda: driver.find_element(By.ID, "totals").text, 10, "the totals line")
    driver.execute_script(LISTEN)


def heard(driver):
    """Everything the live region said since the page was opened."""
    return " ".join(driver.execute_script("return window.__heard || []"))


def add(driver, entries):
    box = driver.find_element(By.ID, "repos")
    box.clear()
    box.send_keys("\n".join(entries))
    assert driver.find_element(By.ID, "include-backfill").is_selected(), "ticked by default"
    driver.find_element(By.ID, "add").click()


def rows(driver):
    return driver.execute_script(READ_ROWS)


def count_of(row):
    """The processed number of a "processed / total" cell ("1,234 / 2,000")."""
    m = re.match(r"([\d,]+)\s*/\s*([\d,]+)$", row["count"])
    assert m, f"count cell {row['count']!r}"
    return int(m.group(1).replace(",", ""))


def wait_statuses(driver, repos, status, timeout=60):
    """Waits until each repository's row shows `status`; returns the rows."""
    keys = [r.lower() for r in repos]
    last = {}

    def reached():
        last.update(rows(driver))
        return dict(last) if all(last.get(k, {}).get("status", "").lower().startswith(status)
                                 for k in keys) else None
    try:
        return wait_for(reached, timeout, f"{len(keys)} rows to show {status}", interval=0.25)
    except AssertionError as e:
        screenshot(driver, f"timeout-{status}.png")
        raise AssertionError(f"{e}; the page shows {last}") from None


def stored(pipeline, repo):
    return pipeline.query(
        "SELECT count(*) FROM pull_requests p JOIN repositories r ON r.id = p.repository_id"
        " WHERE lower(r.owner || '/' || r.name) = lower(%s)", repo)[0][0]


def check_completed(pipeline, shown, repos):
    """Every row completed with the count Postgres holds, which is exactly
    the simulator's expected set. (The page hears of a completion from
    Kafka, maybe a batch before the sink has written it: wait for that.)"""
    pipeline.wait_terminal(repos, timeout=30)
    for repo in repos:
        row = shown[repo.lower()]
        exp = check_rows(pipeline, repo)
        assert count_of(row) == len(exp["expected"]) == stored(pipeline, repo), (repo, row)


def check_console(driver, allow=()):
    """Nothing the CSP refused and no script error in the browser console
    (but the messages containing a string of `allow`)."""
    bad = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"
           and not any(a in e["message"] for a in allow)]
    assert not bad, bad


def as_url(i, repo):
    return f"https://github.com/{repo}" if i % 3 == 0 else repo


def test_ten_repositories_through_the_page(pipeline, browser):
    web = start_deployment(pipeline, consumers=5, latency_ms=150)
    open_page(browser, web)
    assert "no measurement yet" in browser.find_element(By.ID, "estimate").text.lower()
    entries = [as_url(i, r) for i, r in enumerate(TEN_REPOS)]
    box = browser.find_element(By.ID, "repos")
    box.send_keys("\n".join(entries) + "\n" + TEN_REPOS[1].upper())  # + a duplicate
    # keyboard only: Enter in a number field submits the form
    browser.find_element(By.ID, "max-prs").send_keys(Keys.ENTER)
    started = time.monotonic()

    def mid_run():
        shown = rows(browser)
        states = [v["status"].lower() for v in shown.values()]
        return len(shown) == 10 and any(s.startswith("completed") for s in states) and \
            any(not s.startswith("completed") for s in states)
    wait_for(mid_run, 60, "some rows completed and some not", interval=0.1)
    screenshot(browser, "page-mid-run.png")

    shown = wait_statuses(browser, TEN_REPOS, "completed", timeout=90)
    wall = time.monotonic() - started
    check_completed(pipeline, shown, TEN_REPOS)
    assert set(shown) == {r.lower() for r in TEN_REPOS}
    invalid = browser.find_element(By.ID, "invalid").text.lower()
    assert TEN_REPOS[1] in invalid and "duplicate" in invalid
    total = sum(stored(pipeline, r) for r in TEN_REPOS)
    totals = browser.find_element(By.ID, "totals").text
    assert totals.startswith("10 repositories: 10 completed"), totals
    assert f"{total:,} PRs stored" in totals, totals
    wait_for(lambda: "sveltejs/svelte completed" in heard(browser), 3, "the announcement")
    screenshot(browser, "page-completed.png")
    # a phone 375 px wide (headless chromium's windows are at least 500 px wide)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": True})
    width = browser.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]")
    assert width == [375, 375], f"the page scrolls sideways at phone width: {width}"
    screenshot(browser, "page-phone.png")
    check_console(browser)
    print(f"\n[web] 10 repositories through the page: {wall:.1f}s, {total} pull requests shown"
          f" and stored")


def test_unknown_repository_shows_failed_with_reason(pipeline, browser):
    web = start_deployment(pipeline, consumers=1)
    open_page(browser, web)
    add(browser, [UNKNOWN, "aurelia/framework"])
    shown = wait_statuses(browser, [UNKNOWN], "failed", timeout=45)
    text = shown[UNKNOWN]["status"]
    assert "not found" in text.lower(), f"the error should say 'not found': {text!r}"
    shown = wait_statuses(browser, ["aurelia/framework"], "completed", timeout=45)
    check_completed(pipeline, shown, ["aurelia/framework"])
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-repo="{UNKNOWN}"]')
    retry = row.find_element(By.CSS_SELECTOR, "button.retry")
    assert retry.is_displayed() and retry.get_attribute("aria-label") == f"Retry {UNKNOWN}"
    assert not row.find_element(By.CSS_SELECTOR, "button.cancel").is_displayed()
    screenshot(browser, "page-unknown-repository.png")
    check_console(browser)


def test_reload_mid_run_restores_every_row(pipeline, browser):
    # small pages and some latency: the ten backfills take several seconds
    web = start_deployment(pipeline, "--page-size", "25", consumers=2, latency_ms=250)
    open_page(browser, web)
    add(browser, [as_url(i, r) for i, r in enumerate(TEN_REPOS)])
    wait_for(lambda: any(count_of(v) > 0 for v in rows(browser).values()), 45,
             "the first pull requests to be counted")
    reload_page(browser)
    shown = wait_for(lambda: (lambda s: s if len(s) == 10 else None)(rows(browser)), 10,
                     "the ten rows after the reload")
    unfinished = [k for k, v in shown.items() if not v["status"].lower().startswith("completed")]
    assert unfinished, "the reload happened after everything finished: the run was too fast"
    screenshot(browser, "page-after-reload.png")
    # the rows restored from /api/backfills keep moving with the event stream
    shown = wait_statuses(browser, TEN_REPOS, "completed", timeout=90)
    check_completed(pipeline, shown, TEN_REPOS)
    check_console(browser)
    print(f"\n[web] reload with {len(unfinished)} of 10 backfills unfinished; all completed after")


def failed_event(repo, error):
    """A backfill/progress.update saying `repo` failed with `error`, as
    anything that writes to the progress topic may send it."""
    owner, name = repo.split("/")
    now = int(time.time() * 1000)
    data = {"repository": repo, "owner": owner, "name": name, "repositoryId": None,
            "backfillId": str(uuid.uuid4()), "seq": 1, "status": "failed", "progress": 0,
            "total": 200, "chunk": 0, "cursor": None,
            "cutoffDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000 - 30 * 86400)),
            "startedAt": now, "reachedTimeLimit": False, "retryAt": None, "error": error,
            "apiCost": {"requests": 0, "points": 0}}
    env = {"name": "backfill/progress.update", "id": str(uuid.uuid4()), "ts": now, "v": 1,
           "data": data}
    return {"key": repo.encode(), "value": json.dumps(env).encode(),
            "headers": [("event", "backfill/progress.update")]}


def test_html_in_data_is_shown_as_text(pipeline, browser):
    web = start_deployment(pipeline, consumers=0)
    open_page(browser, web)
    repo = "xss-org/xss-repo"
    error = f"upstream said {XSS} <script>document.title='pwned'</script>"
    produce_raw(pipeline.kafka, pipeline.progress_topic, [failed_event(repo, error)])
    shown = wait_statuses(browser, [repo], "failed", timeout=45)
    assert XSS in shown[repo]["status"], shown[repo]
    # an entry that is not a repository name comes back in the "Not added" list, literally
    add(browser, ["<b>x</b>/y", "lit/lit"])
    invalid = wait_for(lambda: browser.find_element(By.ID, "invalid").text, 15, "the Not added list")
    assert "<b>x</b>/y" in invalid, invalid
    time.sleep(1)
    screenshot(browser, "page-html-as-text.png")
    assert browser.find_elements(By.CSS_SELECTOR, "img, main script, #invalid b") == []
    assert browser.title != "pwned"
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (no alert was opened)
    # after a reload, from /api/backfills this time (once the sink stored it)
    wait_for(lambda: pipeline.states().get(repo), 30, "the sink to store the event")
    reload_page(browser)
    shown = wait_statuses(browser, [repo], "failed", timeout=15)
    assert XSS in shown[repo]["status"]
    assert browser.find_elements(By.CSS_SELECTOR, "img") == [] and browser.title != "pwned"
    check_console(browser)


def test_cancel_and_retry_buttons(pipeline, browser):
    big = "sim-1000-0/big"
    web = start_deployment(pipeline, "--page-size", "10", consumers=1, latency_ms=200)
    open_page(browser, web)
    box = browser.find_element(By.ID, "max-prs")
    box.clear()
    box.send_keys("1000")
    add(browser, [big])
    wait_for(lambda: count_of(rows(browser).get(big, {"count": "0 / 0"})) >= 30, 45,
             "the big backfill to be under way")
    cancel = browser.find_element(By.CSS_SELECTOR, f'tr[data-repo="{big}"] button.cancel')
    assert cancel.get_attribute("aria-label") == f"Cancel {big}"
    cancel.click()
    shown = wait_statuses(browser, [big], "cancelled", timeout=45)
    assert count_of(shown[big]) == stored(pipeline, big), shown[big]
    screenshot(browser, "page-cancelled.png")
    # the retry runs a fresh backfill to the end (at full speed now)
    pipeline.sim.post("/_sim/config", {"latencyMs": 0})
    retry = browser.find_element(By.CSS_SELECTOR, f'tr[data-repo="{big}"] button.retry')
    assert retry.get_attribute("aria-label") == f"Retry {big}"
    retry.click()
    shown = wait_statuses(browser, [big], "completed", timeout=50)
    want = {int(p["githubId"]) for p in pipeline.sim.expected(big, max_prs=1000)["expected"]}
    assert count_of(shown[big]) == len(want) == stored(pipeline, big), shown[big]
    check_console(browser)


def test_access_token_is_asked_for_then_sent(pipeline, browser):
    """With BACKFILL_WEB_TOKEN set, Add is refused (401) until the person
    enters the token; the page keeps it for the tab and sends it again."""
    token = "web-" + uuid.uuid4().hex
    pipeline.start("backfill-sink")
    pipeline.start("backfill-consumer")
    web = pipeline.start_web(env={"BACKFILL_WEB_TOKEN": token})
    open_page(browser, web)
    field = browser.find_element(By.ID, "token")
    assert not field.is_displayed()
    add(browser, ["aurelia/framework"])
    wait_for(field.is_displayed, 10, "the access token field")
    assert field.get_attribute("type") == "password"
    assert browser.switch_to.active_element == field
    assert rows(browser) == {}, "nothing is added without the token"
    field.send_keys(token + Keys.ENTER)  # the refused request is sent again, with the token
    shown = wait_statuses(browser, ["aurelia/framework"], "completed", timeout=45)
    check_completed(pipeline, shown, ["aurelia/framework"])
    assert browser.execute_script("return sessionStorage.getItem('backfill-web-token')") == token
    screenshot(browser, "page-token.png")
    check_console(browser, allow=("401",))
