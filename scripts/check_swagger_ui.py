"""Check in headless Chromium that Swagger UI renders and Try it out works under the docs CSP.

Run with a Python that has Playwright (not the project venv), against a running app:

    /tmp/pw-venv/bin/python scripts/check_swagger_ui.py http://127.0.0.1:8941

--csp POLICY serves the docs page with that policy instead of the app's, to try a change.
Exits 1 on any CSP violation, page error, failed request or failed Try it out.
"""

import argparse
import sys
import tempfile

from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Chromium logs violations to the console too; the event also names the directive and source.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(
  `${e.effectiveDirective} blocked ${e.blockedURI || "(inline)"} at ${e.sourceFile}:${e.lineNumber}`
), true);
"""


def try_it_out(page: Page, path: str) -> str:
    """Run one GET operation with its pre-filled values; return the status Swagger UI shows."""
    block = page.locator(".opblock-get").filter(
        has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
    )
    block.locator(".opblock-summary").first.click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    return status.inner_text().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", nargs="?", default="http://127.0.0.1:8941")
    parser.add_argument("--csp", help="replace the docs page's Content-Security-Policy")
    parser.add_argument("--screenshot", default="/tmp/swagger.png")
    args = parser.parse_args()
    docs = args.base_url.rstrip("/") + "/api/v1/docs"
    problems: list[str] = []

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.add_init_script(WATCH_CSP)

        def on_console(msg):
            print(f"console.{msg.type}: {msg.text} ({msg.location.get('url')})")
            # "Refused to ..." in older Chromium, "... violates the following Content
            # Security Policy directive ..." in newer ones.
            if msg.type == "error" and ("Refused to" in msg.text or "Security Policy" in msg.text):
                problems.append(f"console: {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on(
            "requestfailed",
            lambda req: problems.append(f"request failed: {req.url} {req.failure}"),
        )
        if args.csp:

            def swap_policy(route):
                response = route.fetch()
                headers = {**response.headers, "content-security-policy": args.csp}
                route.fulfill(response=response, headers=headers)

            page.route(docs, swap_policy)

        response = page.goto(docs)
        print("Content-Security-Policy:", response.header_value("content-security-policy"))
        try:
            page.locator(".opblock").first.wait_for()
        except PlaywrightTimeout:
            problems.append("the operations list never rendered")
        else:
            print("operations rendered:", page.locator(".opblock").count())
            page.screenshot(path=args.screenshot, full_page=True)
            for path in ("/api/v1/events", "/api/v1/events/{fact_id}"):
                try:
                    status = try_it_out(page, path)
                except PlaywrightTimeout:
                    status = "no response shown"
                print(f"Try it out GET {path}: {status}")
                if status != "200":
                    problems.append(f"Try it out GET {path}: {status}")

        problems += [f"securitypolicyviolation: {v}" for v in page.evaluate("window.__csp")]
        browser.close()

    print(*(problems or ["OK: no CSP violation, page error or failed Try it out"]), sep="\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
