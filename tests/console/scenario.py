#!/usr/bin/env python3
"""The operators' console in a real browser (headless Chromium, driven by Playwright),
presenting operator certificates as a browser does. Run by tests/console_browser.rs,
which starts the gateway and passes the scenario as JSON on the command line:

  base, chromium, shots (screenshot directory), manager/reviewer/facility
  ({cert, key}), notice_47, notice_18, facility_code (a registered facility in an
  extended municipality), ask_at, later.

Exits non-zero with a message at the first expectation that fails; prints one JSON
line of what it saw on success."""
import json
import sys
from pathlib import Path

from playwright.sync_api import Error, sync_playwright

cfg = json.loads(sys.argv[1])
base = cfg["base"]
shots = Path(cfg["shots"])
shots.mkdir(parents=True, exist_ok=True)
seen = {}


def expect(condition, what, page=None):
    if not condition:
        print(f"console scenario: expected {what}", file=sys.stderr)
        if page is not None:
            print(page.url, page.inner_text("body")[:2000], file=sys.stderr)
        sys.exit(1)


def submitted(page, button, selector):
    """Clicks `button` and waits for the next page; fails with that page's text
    unless it shows `selector`."""
    page.click(button)
    page.wait_for_load_state()
    expect(page.locator(selector).count() > 0, f"{selector} after {button}", page)


def context(browser, who):
    cert = cfg[who]
    ctx = browser.new_context(
        client_certificates=[{"origin": base, "certPath": cert["cert"], "keyPath": cert["key"]}],
        ignore_https_errors=True,
        locale="ja-JP",
        viewport={"width": 1280, "height": 1000},
    )
    page = ctx.new_page()
    page.on("dialog", lambda d: d.accept())
    return ctx, page


def preview(page, text, expected):
    page.goto(f"{base}/console/notice")
    page.fill("#text", text)
    submitted(page, "#preview", "#resolved")
    n = int(page.get_attribute("#resolved", "data-municipalities"))
    expect(n == expected, f"{expected} municipalities resolved, saw {n}")
    expect(page.locator("#unresolved-none").count() == 1, "nothing left unresolved")
    kinds = page.inner_text("#by-kind")
    expect("医科" in kinds and "薬局" in kinds, f"facility counts by kind, saw {kinds}")
    expect(page.locator("#opened tr.municipality").count() == expected, "a row per municipality")
    drawn = page.locator("svg.map.zoom circle.new").count()
    expect(drawn == expected, f"{expected} points on the map, saw {drawn}")
    return int(page.get_attribute("#resolved", "data-facilities"))


def in_force(page, at=None):
    page.goto(f"{base}/console/now" + (f"?at={at}" if at else ""))
    if page.locator("#none-in-force").count():
        return 0
    return int(page.get_attribute("#in-force-count", "data-count"))


def manager(browser):
    ctx, page = context(browser, "manager")
    expect(in_force(page) == 0, "no area in force before the notice")
    page.screenshot(path=str(shots / "now-before.png"), full_page=True)
    seen["facilities_47"] = preview(page, cfg["notice_47"], 47)
    expect(seen["facilities_47"] > 0, "facilities counted in the 47")
    page.screenshot(path=str(shots / "notice-preview.png"), full_page=True)
    page.fill("#event", "令和6年能登半島地震")
    page.fill("#notice-ref", "令和6年1月1日付事務連絡")
    page.fill("#first-day", "2024-01-01")
    page.fill("#last-day", "2024-01-07")
    submitted(page, "#activate", "#timeline")
    expect(page.locator(".msg.ok").count() == 1, "the activation recorded")
    seen["in_force_after"] = in_force(page)
    expect(seen["in_force_after"] == 47, f"47 areas in force, saw {seen['in_force_after']}")
    expect(page.locator("svg.map.zoom circle.on").count() == 47, "47 points in force on the map")
    page.screenshot(path=str(shots / "now-after-activation.png"), full_page=True)
    seen["facilities_18"] = preview(page, cfg["notice_18"], 18)
    page.check("input[name=op][value=extend]")
    page.fill("#until", "2024-01-14")
    submitted(page, "#record-revision", "#timeline")
    revisions = page.locator("#timeline li[data-revision]").count()
    expect(revisions == 2, f"two revisions on the timeline, saw {revisions}")
    seen["in_force_jan10"] = in_force(page, "2024-01-10 12:00")
    expect(seen["in_force_jan10"] == 18, f"18 in force on 10 January, saw {seen['in_force_jan10']}")
    page.screenshot(path=str(shots / "now-as-of-jan10.png"), full_page=True)
    ask(page)
    ctx.close()


def ask(page):
    page.goto(f"{base}/console/history")
    page.fill("#facility", cfg["facility_code"])
    page.fill("#allowed-at", cfg["ask_at"])
    submitted(page, "#ask", "#answer")
    expect(page.get_attribute("#answer", "data-allowed") == "true", "allowed on the asked instant")
    seen["deciding_revision"] = page.get_attribute("#answer", "data-revision")
    expect(seen["deciding_revision"] == "2", f"decided by revision 2, saw {seen['deciding_revision']}")
    page.screenshot(path=str(shots / "history-allowed.png"), full_page=True)
    page.fill("#allowed-at", cfg["later"])
    submitted(page, "#ask", "#answer")
    expect(page.get_attribute("#answer", "data-allowed") == "false", "refused after the extension ended")


def reviewer(browser):
    ctx, page = context(browser, "reviewer")
    page.goto(f"{base}/console/review")
    before = int(page.get_attribute("#queue-heading", "data-count"))
    expect(before >= 1, "a flagged access in the queue")
    page.screenshot(path=str(shots / "review-queue.png"), full_page=True)
    row = page.locator("table.entries tr[data-record]").first
    seen["reviewed_record"] = row.get_attribute("data-record")
    row.locator("select[name=outcome]").select_option("justified")
    row.locator("input[name=note]").fill("意識不明で搬送、救命のため")
    row.locator("form.outcome button").click()
    page.wait_for_load_state()
    expect(page.locator(".msg.ok").count() == 1, "the outcome recorded", page)
    after = int(page.get_attribute("#queue-heading", "data-count"))
    expect(after == before - 1, f"the queue shorter by one ({before} -> {after})")
    response = page.goto(f"{base}/console/notice")
    expect(response.status == 403, f"a reviewer refused the notice page, got {response.status}")
    ctx.close()


def auditor(browser):
    """An auditor finds the clinic's accesses and exports the reviewed one as CSV and FHIR."""
    ctx, page = context(browser, "auditor")
    page.goto(f"{base}/console/review?facility={cfg['flagged_facility']}")
    box = page.locator(f"input[name=record][value='{seen['reviewed_record']}']").first
    expect(box.count() == 1, "the reviewed access among the facility's", page)
    box.check()
    for fmt, marker in (("csv", "consent_basis"), ("fhir", "AuditEvent")):
        page.select_option("#export select[name=format]", fmt)
        with page.expect_download() as download:
            page.click("#export button")
        text = Path(download.value.path()).read_text(encoding="utf-8")
        expect(seen["reviewed_record"] in text and marker in text, f"the {fmt} export holds the record")
        seen[f"exported_{fmt}"] = len(text.splitlines())
    page.screenshot(path=str(shots / "review-facility-accesses.png"), full_page=True)
    ctx.close()


def facility(browser):
    ctx, page = context(browser, "facility")
    try:
        response = page.goto(f"{base}/console/now")
        refused = response is None or response.status >= 400 or "運用コンソール" not in page.content()
    except Error as e:
        refused = True
        seen["facility_error"] = str(e).splitlines()[0]
    expect(refused, "a facility certificate refused")
    ctx.close()


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=cfg["chromium"], args=["--no-sandbox"])
    manager(browser)
    reviewer(browser)
    auditor(browser)
    facility(browser)
    browser.close()
print(json.dumps(seen, ensure_ascii=False))
