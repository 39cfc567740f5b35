"""Drives the dashboard (/ui) in a real browser, as a user would (`cargo xtask ui`).

usage: python3 xtask/python/ui_test.py --base http://127.0.0.1:PORT [--token T]
           --fixture /path/to/vmcp-fixture [--screenshots docs/ui] [--chromium /usr/bin/chromium]

Needs Playwright for Python (`pip install playwright`) and a Chromium: Debian's
(/usr/bin/chromium, `apt-get install chromium`) by default; `playwright install` is not needed.
Every argument also has an environment variable: VMCP_UI_BASE, VMCP_UI_TOKEN, VMCP_FIXTURE,
VMCP_UI_SCREENSHOTS, CHROMIUM.

Against a running vMCP (any database: names are unique per run), it opens /ui/, signs in when
the server has a token (a wrong token first, then the right one), and checks: the first view
weighs under 100 KB; registering the fixture (stdio) connects it; a vMCP created with it lists
its tools, and calling echo and add from the generated forms shows their results (text,
structuredContent); stats filtered by that vMCP count exactly those calls, in figures and in the
chart; the live view shows a call made through the REST API, honours its text filter and pause;
a server whose command does not exist is shown as error, with the API's error and detail; no
page is wider than the screen at 390 px; the browser logged no error (except the expected 401
and 502 answers). With --screenshots it writes PNGs of the main views at 1280 and 390 px wide.

Prints one line per check; exits 1 on any failure (2 when it cannot start), naming it.
"""
import argparse
import json
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.request

FIRST_VIEW_LIMIT = 100 * 1024

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--base", default=os.environ.get("VMCP_UI_BASE"), help="the vMCP server, e.g. http://127.0.0.1:8000")
p.add_argument("--token", default=os.environ.get("VMCP_UI_TOKEN") or None, help="an API token, when the server has some")
p.add_argument("--fixture", default=os.environ.get("VMCP_FIXTURE"), help="path of the vmcp-fixture binary")
p.add_argument("--screenshots", default=os.environ.get("VMCP_UI_SCREENSHOTS") or None, help="write screenshots into this folder")
p.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"), help="the Chromium binary")
p.add_argument("--headed", action="store_true", help="show the browser (debugging)")
args = p.parse_args()
if not args.base or not args.fixture:
    p.error("--base and --fixture are required (or VMCP_UI_BASE and VMCP_FIXTURE)")
base = args.base.rstrip("/")
if not os.access(args.fixture, os.X_OK):
    print(f"ui_test: the fixture {args.fixture} is not an executable file", file=sys.stderr)
    sys.exit(2)
if not os.access(args.chromium, os.X_OK):
    print(f"ui_test: no Chromium at {args.chromium} (apt-get install chromium, or pass --chromium)", file=sys.stderr)
    sys.exit(2)
try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    print("ui_test: Playwright for Python is missing (pip install playwright)", file=sys.stderr)
    sys.exit(2)

started = time.monotonic()
failures = []
run = secrets.token_hex(3)  # names of this run
SERVER = f"uifx{run}"
BAD = f"uibad{run}"
VMCP = f"ui-test {run}"


def check(cond, what, detail=""):
    print(("  ok    " if cond else "  FAIL  ") + what + (f": {detail}" if detail and not cond else ""), flush=True)
    if not cond:
        failures.append(what + (f": {detail}" if detail else ""))
    return cond


def api(method, path, body=None):
    """The REST API, as a script calls it (not through the page)."""
    headers = {"Content-Type": "application/json", "X-Client-Id": "ui-test"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def step(name):
    print(f"{name} ({time.monotonic() - started:.1f} s)", flush=True)


# Health first: a clear message when the server is not there.
try:
    with urllib.request.urlopen(base + "/health", timeout=10) as r:
        r.read()
except Exception as e:  # noqa: BLE001
    print(f"ui_test: {base}/health does not answer: {e}", file=sys.stderr)
    sys.exit(2)

console_errors = []
created = {"servers": [], "vmcp": None}


def watch(page):
    def on_console(msg):
        if msg.type != "error":
            return
        text = msg.text
        url = (msg.location or {}).get("url", "")
        # The answers the test provokes on purpose: 401 before signing in, 502 from connecting
        # the server whose command does not exist.
        if "Failed to load resource" in text:
            if "status of 401" in text and args.token and "/api/" in url:
                return
            if "status of 502" in text and re.search(r"/api/mcp-servers/server_[^/]+/connect$", url):
                return
        console_errors.append(f"{text} ({url})" if url else text)

    page.on("console", on_console)
    page.on("pageerror", lambda e: console_errors.append(f"uncaught: {e}"))


def no_overflow(page, what):
    width = page.evaluate("document.documentElement.scrollWidth")
    view = page.evaluate("window.innerWidth")
    check(width <= view + 1, f"{what}: nothing wider than the {view} px screen", f"the page is {width} px wide")


def shot(page, name):
    if not args.screenshots:
        return
    os.makedirs(args.screenshots, exist_ok=True)
    width = page.viewport_size["width"]
    page.wait_for_timeout(150)
    page.screenshot(path=os.path.join(args.screenshots, f"{name}-{width}.png"), full_page=False)


def wait_entries(page, n, timeout=10_000):
    # Not wait_for_function: it evaluates a string, which the dashboard's CSP (no unsafe-eval) refuses.
    page.locator(".live-log li.entry").nth(n - 1).wait_for(timeout=timeout)


def main(pw):
    browser = pw.chromium.launch(executable_path=args.chromium, headless=not args.headed,
                                 args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.set_default_timeout(15_000)
    page = context.new_page()
    watch(page)

    # ---- First view, sign-in ------------------------------------------------------------------
    step("first view")
    page.goto(base + "/ui/")
    if args.token:
        login = page.locator("#login")
        expect(login).to_be_visible()
        check(True, "the dashboard asks for the token (the API answered 401)")
        page.fill("#login-token", "not-the-token-" + run)
        page.click("#login-form button[type=submit]")
        expect(page.locator("#login-error .alert.error")).to_contain_text("unauthorized")
        check(page.locator("#login-error .err-detail").count() == 1, "a wrong token is refused, with the API's error and detail")
        page.fill("#login-token", args.token)
        page.click("#login-form button[type=submit]")
        expect(login).to_be_hidden()
        expect(page.locator("#signout")).to_be_visible()
        check(page.evaluate("localStorage.getItem('vmcp.token')") == args.token, "the token is kept in localStorage")
    expect(page.locator("main h1")).to_have_text("MCP servers")
    expect(page.locator("#conn")).to_have_text("live")
    page.wait_for_load_state("networkidle")
    sizes = page.evaluate("""() => {
        const all = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
        return all.map(e => [e.name, e.transferSize || e.encodedBodySize || 0]);
    }""")
    total = sum(s for _, s in sizes)
    print(f"        first view: {len(sizes)} requests, {total} bytes transferred: "
          + ", ".join(f"{n.split('/', 3)[-1]} {s}" for n, s in sizes), flush=True)
    check(total < FIRST_VIEW_LIMIT, f"the first view transfers under 100 KB ({total / 1024:.1f} KB)",
          ", ".join(f"{n.rsplit('/', 1)[-1]} {s}" for n, s in sizes))

    # ---- Register the fixture over stdio ------------------------------------------------------
    step("register a stdio server")
    page.goto(base + "/ui/#/servers")
    details = page.locator("details.register")
    if not details.evaluate("d => d.open"):
        details.locator("summary").click()
    form = details.locator("form")
    form.get_by_label("Name", exact=True).fill(SERVER)
    form.get_by_label("Description").fill("the test fixture (stdio)")
    form.get_by_label("Transport").select_option("stdio")
    form.get_by_label("Command").fill(args.fixture)
    form.get_by_label("Arguments").fill("stdio")
    form.get_by_role("button", name="Register").click()
    card = page.locator(f'article.server[data-server="{SERVER}"]')
    expect(card).to_have_attribute("data-status", "connected", timeout=30_000)
    check(True, "the fixture is registered and connected")
    created["servers"].append(SERVER)

    # Its page: capabilities and the stderr log.
    card.get_by_role("link", name="Details, calls & log").click()
    expect(page.locator("main h1")).to_contain_text(SERVER)
    expect(page.locator("ul.chips li", has_text="echo").first).to_be_visible()
    check(True, "the server's page lists its capabilities")
    check(page.locator("pre.log").count() == 1, "the server's page shows its log")
    expect(page.locator('[data-testid="server-figures"]')).to_be_visible()
    check(True, "the server's page shows its calls and latency")
    shot(page, "server")

    # ---- Create a vMCP with it ----------------------------------------------------------------
    step("create a vMCP")
    page.click('nav a[data-nav="vmcps"]')
    expect(page.locator("main h1")).to_have_text("vMCPs")
    create = page.locator("details.card", has=page.locator("summary", has_text="Create a vMCP"))
    if not create.evaluate("d => d.open"):
        create.locator("summary").click()
    create.get_by_label("Name", exact=True).fill(VMCP)
    create.get_by_label("Description").fill("made by ui_test.py")
    create.locator(f'input[type=checkbox][data-server="{SERVER}"]').check()
    create.get_by_role("button", name="Create").click()
    expect(page.locator("main h1")).to_have_text(VMCP)
    vmcp_id = page.evaluate("location.hash").split("/")[2]
    created["vmcp"] = vmcp_id
    check(vmcp_id.startswith("vmcp_"), "the vMCP is created and opened", vmcp_id)
    expect(page.locator(".members-table tbody tr", has_text=SERVER)).to_be_visible()

    # ---- Call tools from the generated forms -------------------------------------------------
    step("call tools")
    page.get_by_role("link", name="Tools", exact=True).click()
    echo = page.locator(f'details.tool[data-tool="{SERVER}.echo"]')
    echo.locator("summary").click()
    text = f"hello from the dashboard {run}"
    echo.locator('[data-arg="text"]').fill(text)
    echo.get_by_role("button", name="Call", exact=True).click()
    result = echo.locator('[data-testid="tool-result"]')
    expect(result.locator("pre.result-text")).to_have_text(text)
    check(result.get_attribute("data-is-error") == "false", "echo answers its text in the result")
    add = page.locator(f'details.tool[data-tool="{SERVER}.add"]')
    add.locator("summary").click()
    # A required argument left empty is caught before the call.
    add.locator('[data-arg="b"]').fill("3.5")
    add.get_by_role("button", name="Call", exact=True).click()
    expect(add.locator(".schema-form .form-errors")).to_contain_text("Required: a")
    check(True, "a missing required argument is reported by the form")
    add.locator('[data-arg="a"]').fill("2")
    add.get_by_role("button", name="Call", exact=True).click()
    result = add.locator('[data-testid="tool-result"]')
    expect(result.locator("pre.result-text")).to_have_text("5.5")
    structured = json.loads(result.locator('[data-testid="structured"]').inner_text())
    check(structured == {"sum": 5.5}, "add answers 5.5, with structuredContent", json.dumps(structured))
    check(add.locator(".schema-form .form-errors .alert").count() == 0, "the form's error is gone after a good call")
    shot(page, "vmcp-tools")

    page.get_by_role("link", name="Add to your client").click()
    url = page.locator('[data-testid="mcp-url"]').inner_text()
    check(url.endswith("/mcp") and "/vmcp/" in url, "the client panel gives the MCP URL", url)
    expect(page.locator(".snippet pre", has_text='"bridge"').first).to_be_visible()
    shot(page, "vmcp-connect")

    # ---- Stats ---------------------------------------------------------------------------------
    step("stats")
    page.click('nav a[data-nav="stats"]')
    expect(page.locator("main h1")).to_have_text("Stats")
    page.get_by_label("vMCP", exact=True).select_option(vmcp_id)
    page.get_by_role("button", name="Apply").click()
    calls = page.locator('[data-testid="stat-tool-calls"] .figure-value')
    expect(calls).to_have_text("2", timeout=10_000)
    # The page's first load (every vMCP) may still be running when Apply is clicked; it then
    # loads again and replaces what is drawn. Read the charts once the last load has ended.
    expect(page.locator(".stats-body")).not_to_have_attribute("aria-busy", "true")
    expect(calls).to_have_text("2")
    check(True, "stats of the new vMCP count its 2 tool calls")
    chart = page.locator('[data-testid="chart-calls"]')
    expect(chart.locator("svg")).to_be_visible()
    in_chart = chart.evaluate("f => [...f.querySelectorAll('g.bar')].reduce((a, g) => a + Number(g.dataset.count), 0)")
    total_ops = int(page.locator('[data-testid="stat-total"] .figure-value').inner_text().replace(",", ""))
    check(in_chart == total_ops and total_ops >= 2, "the chart over time shows those operations", f"chart {in_chart}, total {total_ops}")
    methods = page.locator('[data-testid="chart-methods"] svg text.label', has_text="tools/call")
    expect(methods).to_have_count(1)
    check(methods.count() == 1, "the methods chart has tools/call")
    check(page.locator('[data-testid="chart-latency-server"] svg rect').count() >= 3, "latency percentiles by server are drawn")
    shot(page, "stats")

    # ---- Live ----------------------------------------------------------------------------------
    step("live")
    page.click('nav a[data-nav="live"]')
    expect(page.locator("main h1")).to_have_text("Live")
    expect(page.locator("#conn")).to_have_text("live")
    marker = f"live-{run}"
    page.get_by_label("Search", exact=True).fill(marker)
    status, body = api("POST", f"/api/vmcps/{vmcp_id}/tools/call", {"name": f"{SERVER}.echo", "arguments": {"text": marker + "-1"}})
    check(status == 200, "a call through the REST API answers", f"{status} {body}")
    wait_entries(page, 1)
    entry = page.locator(".live-log li.entry").first
    expect(entry).to_contain_text("tools/call")
    expect(entry).to_contain_text("ui-test")
    check(page.locator(".live-log li.entry").count() == 1, "the live log shows the call, and only what matches the filter")
    page.get_by_role("button", name="Pause").click()
    api("POST", f"/api/vmcps/{vmcp_id}/tools/call", {"name": f"{SERVER}.echo", "arguments": {"text": marker + "-2"}})
    expect(page.get_by_role("button", name="Resume (1 new)")).to_be_visible()
    check(page.locator(".live-log li.entry").count() == 1, "paused, the log holds new entries back")
    page.get_by_role("button", name="Resume (1 new)").click()
    wait_entries(page, 2)
    check(True, "resumed, the held entry appears")
    page.get_by_label("Search", exact=True).fill("")
    shot(page, "live")

    # ---- A server that cannot start ------------------------------------------------------------
    step("a failing server")
    page.click('nav a[data-nav="servers"]')
    details = page.locator("details.register")
    if not details.evaluate("d => d.open"):
        details.locator("summary").click()
    form = details.locator("form")
    form.get_by_label("Name", exact=True).fill(BAD)
    form.get_by_label("Command").fill(f"/nonexistent/vmcp-ui-test-{run}")
    form.get_by_label("Arguments").fill("")
    form.get_by_role("button", name="Register").click()
    created["servers"].append(BAD)
    problem = page.locator("main .alert.error", has=page.locator(".err-detail")).first
    expect(problem).to_be_visible()
    title = problem.locator(".err-title").inner_text()
    detail = problem.locator(".err-detail").inner_text()
    check("502" in title and len(detail) > 10, "connecting it shows the API's error and detail", f"{title!r} {detail!r}")
    bad = page.locator(f'article.server[data-server="{BAD}"]')
    expect(bad).to_have_attribute("data-status", "error", timeout=15_000)
    last_error = bad.locator(".last-error").inner_text()
    check(len(last_error) > 15, "the server is marked error, with its error text", last_error)
    print(f"        its error: {last_error[:160]!r}", flush=True)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "servers")

    # ---- 390 px wide ---------------------------------------------------------------------------
    step("390 px")
    page.set_viewport_size({"width": 390, "height": 844})
    views = [("servers", "#/servers"), ("vmcp-tools", f"#/vmcps/{vmcp_id}/tools"), ("vmcp-connect", f"#/vmcps/{vmcp_id}/connect"),
             ("stats", "#/stats"), ("live", "#/live")]
    for name, hash_ in views:
        page.evaluate(f"location.hash = {json.dumps(hash_)}")
        page.wait_for_load_state("networkidle")
        if name == "vmcp-tools":
            d = page.locator(f'details.tool[data-tool="{SERVER}.add"]')
            d.locator("summary").click()
        if name == "stats":
            expect(page.locator('[data-testid="chart-calls"] svg')).to_be_visible()
        page.wait_for_timeout(200)
        no_overflow(page, f"{name} at 390 px")
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.type !== 'hidden' && !e.labels?.length && !e.getAttribute('aria-label')).map(e => e.outerHTML.slice(0, 80))""")
        check(not unlabelled, f"{name}: every input has a label", "; ".join(unlabelled))
        shot(page, name)
    if args.screenshots:
        page.set_viewport_size({"width": 1280, "height": 900})

    # ---- Keyboard: the navigation is reachable and focus is visible ---------------------------
    page.set_viewport_size({"width": 1280, "height": 900})
    page.evaluate("location.hash = '#/servers'")
    page.locator("body").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement && document.activeElement.textContent.trim()")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    check(bool(focused) and outline != "none", "keyboard focus moves through the header, and is visible", f"{focused!r} outline {outline}")

    if args.token:
        page.click("#signout")
        expect(page.locator("#login")).to_be_visible()
        check(page.evaluate("localStorage.getItem('vmcp.token')") is None, "sign out forgets the token")

    check(not console_errors, "the browser logged no error", " | ".join(console_errors[:5]))
    browser.close()


try:
    with sync_playwright() as pw:
        main(pw)
except (PlaywrightError, AssertionError) as e:
    message = str(e).strip().split("\n")
    failures.append("stopped: " + " ".join(message[:6]))
    print("  FAIL  " + failures[-1], flush=True)
    if console_errors:
        print("        browser errors: " + " | ".join(console_errors[:5]), flush=True)
finally:
    # Leave the database as it was (best effort).
    if created["vmcp"]:
        api("DELETE", f"/api/vmcps/{created['vmcp']}")
    status, servers = api("GET", "/api/mcp-servers")
    if status == 200:
        for s in servers:
            if s["name"] in created["servers"]:
                api("DELETE", f"/api/mcp-servers/{s['server_id']}")

elapsed = time.monotonic() - started
if failures:
    print(f"\nui_test: {len(failures)} failure(s) in {elapsed:.0f} s:", file=sys.stderr)
    for f in failures:
        print("  - " + f, file=sys.stderr)
    sys.exit(1)
print(f"\nui_test: every check passed in {elapsed:.0f} s")
