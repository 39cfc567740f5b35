"""The upstream sign-in as a person does it, in a real browser (Debian Chromium, Playwright for
Python): the dashboard shows a server waiting for a sign-in with a "Sign in" link; clicking it
opens the OpenID provider's login page in a new tab; the person logs in (and consents when
asked); the provider sends the browser back to vMCP's callback, which says the server is
connecting; and the dashboard shows it connected, without a reload.

usage: oauth_browser.py VMCP_BASE SERVER_NAME [--chromium /usr/bin/chromium] [--shots DIR]
Run with the venv of `cargo xtask ui` (playwright). Prints one JSON line {"ok": ..., "detail": ...}.
"""

import argparse
import json
import sys

from playwright.sync_api import sync_playwright

p = argparse.ArgumentParser()
p.add_argument("base")
p.add_argument("server")
p.add_argument("--chromium", default="/usr/bin/chromium")
p.add_argument("--shots")
args = p.parse_args()


def done(ok, detail):
    print(json.dumps({"ok": ok, "detail": detail}))
    sys.exit(0 if ok else 1)


with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{args.base}/ui/#/servers")
    card = page.locator(f'article.server[data-server="{args.server}"]')
    card.wait_for(timeout=15000)
    if card.get_attribute("data-status") != "auth_required":
        done(False, f"the card says {card.get_attribute('data-status')}, not auth_required")
    link = card.get_by_role("link", name="Sign in")
    href = link.get_attribute("href") or ""
    with context.expect_page() as opened:
        link.click()
    signin = opened.value
    signin.wait_for_load_state()
    # oidc-provider's development login page, then (for some clients) its consent page.
    signin.fill('input[name="login"]', "carol")
    signin.fill('input[name="password"]', "x")
    signin.click('button[type="submit"]')
    signin.wait_for_load_state()
    if "/interaction/" in signin.url:
        signin.click('button[type="submit"]')
    signin.wait_for_url(f"{args.base}/api/oauth/callback*", timeout=15000)
    body = signin.locator("body").inner_text()
    if "Signed in to" not in body:
        done(False, f"the callback page says: {body[:300]}")
    if args.shots:
        signin.screenshot(path=f"{args.shots}/oauth-callback.png")
    # The dashboard hears the status change over /ws.
    page.bring_to_front()
    page.locator(f'article.server[data-server="{args.server}"][data-status="connected"]').wait_for(
        timeout=20000)
    done(True, f"signed in through {href.split('?')[0]}; the dashboard shows it connected")
