"""The web console in a real browser: Debian's Chromium, driven by Playwright.

Run by tests/e2e/web.rs (`the_console_in_a_real_browser`), which starts cooper (API, pages and
the sign-in stand-in) against moto, makes the directory and passes it here as a JSON file:
the console's URL, moto's endpoint, and each person's user name, password and authenticator.
It exits non-zero, with the reason, on the first thing that is not as it must be, and writes
screenshots of the main pages at desktop and phone widths to docs/screenshots/.
"""

import json
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import boto3
import pyotp
from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium floods a closed network with connections.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


class Person:
    """Someone with a password and an authenticator, each code used once."""

    def __init__(self, entry):
        self.user = entry["user"]
        self.password = entry["password"]
        self.totp = pyotp.parse_uri(entry["uri"])
        self.last = entry["last_step"]

    def code(self):
        """This step's code or the next's (both within the server's skew), never one used."""
        while True:
            now = int(time.time()) // 30
            step = max(self.last + 1, now)
            if step <= now + 1:
                self.last = step
                return self.totp.at(step * 30)
            time.sleep(2)


class Run:
    def __init__(self, fixture, context):
        self.url = fixture["url"]
        self.fixture = fixture
        self.context = context
        self.page = context.pages[0] if context.pages else context.new_page()
        self.shots = Path(fixture["screenshots"])
        self.shots.mkdir(parents=True, exist_ok=True)
        self.visited = []
        context.on("request", lambda request: self.visited.append(request.url))
        self.secrets = []

    def shot(self, name, page=None):
        page = page or self.page
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.screenshot(path=str(self.shots / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size(DESKTOP)

    def sign_in(self, person):
        page = self.page
        page.goto(f"{self.url}/signin")
        page.fill("#f-user", person.user)
        page.fill("#f-password", person.password)
        page.fill("#f-totp", person.code())
        page.click("main button[type=submit]")
        expect(page).to_have_url(f"{self.url}/targets")

    def sign_out(self):
        self.page.click("header button:has-text('Sign out')")
        expect(self.page).to_have_url(f"{self.url}/signin")


def main():
    fixture = json.loads(Path(sys.argv[1]).read_text())
    alice, bob, carol = (Person(fixture[n]) for n in ("alice", "bob", "carol"))
    profile = tempfile.mkdtemp(prefix="cooper-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport=DESKTOP
            )
            run = Run(fixture, context)
            try:
                scenarios(run, alice, bob, carol)
            except Exception:
                failed = Path(tempfile.gettempdir()) / "cooper-browser-failure.png"
                run.page.screenshot(path=str(failed), full_page=True)
                print(f"at {run.page.url}; the page is in {failed}", file=sys.stderr)
                raise
            finally:
                context.close()
        history = history_urls(profile)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    no_secret_in_urls(run.visited + history, run.secrets)
    print(f"browser: every scenario passed; {len(run.visited)} requests, {len(history)} history entries")


def scenarios(run, alice, bob, carol):
    page, url = run.page, run.url

    # A first enrollment with the admin's one-time code: authenticator and password, then in.
    dave = run.fixture["dave"]
    page.goto(f"{url}/signin")
    page.click("a:has-text('Enroll with the code')")
    page.fill("#f-code", dave["enrollment_code"])
    page.click("main button[type=submit]")
    daves_secret = page.locator("#secret").inner_text().replace(" ", "")
    run.secrets += [dave["enrollment_code"], daves_secret]
    expect(page.locator("img.qr")).to_be_visible()
    run.shot("enroll")
    daves = Person({"user": dave["user"], "password": "dave picks a long passphrase",
                    "uri": pyotp.TOTP(daves_secret).provisioning_uri(dave["user"]), "last_step": 0})
    page.fill("#f-totp", daves.code())
    page.fill("#f-password", daves.password)
    page.click("main button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("You are enrolled")
    run.sign_in(daves)
    assert page.locator("table.targets tbody tr td:first-child strong").all_inner_texts() == ["web-readonly"]
    run.sign_out()

    # Signing in with the identity provider: its pages, then back, signed in, its group granting.
    page.goto(f"{url}/signin")
    page.click("a:has-text('Sign in with Test IdP')")
    page.fill("input[name=login]", "erin")
    page.fill("input[name=password]", "any")
    page.click("button[type=submit]")
    page.click("button[type=submit]")  # consent
    page.wait_for_url(f"{url}/targets")
    assert page.locator("table.targets tbody tr td:first-child strong").all_inner_texts() == ["web-readonly"]
    expect(page.locator("header")).to_contain_text("erin@example.com")
    run.sign_out()

    # Signing in: a wrong code is refused next to the form, in words, with the request id.
    page.goto(f"{url}/signin")
    run.shot("signin")
    page.fill("#f-user", alice.user)
    page.fill("#f-password", alice.password)
    page.fill("#f-totp", "000000")
    page.click("main button[type=submit]")
    alert = page.locator("[role=alert]")
    expect(alert).to_contain_text("invalid_credentials")
    expect(alert).to_contain_text("request")
    run.sign_in(alice)

    # My targets: exactly the granted ones, and the search narrows them.
    names = sorted(page.locator("table.targets tbody tr td:first-child strong").all_inner_texts())
    assert names == fixture_granted(run), f"targets shown: {names}"
    run.shot("targets")
    page.fill("#q", "secure")
    expect(page.locator("table.targets tbody tr:visible")).to_have_count(1)
    page.fill("#q", "")

    # Credentials: shown once, and they work (boto3 against moto).
    page.goto(f"{url}/targets/web-readonly")
    run.shot("target")
    page.select_option("#f-duration", "900")
    page.click("form[action$='/credentials'] button[type=submit]")
    exports = page.locator("#exports").inner_text()
    key = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", exports).group(1)
    secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", exports).group(1)
    token = re.search(r"AWS_SESSION_TOKEN=(\S+)", exports).group(1)
    run.secrets += [secret, token]
    assert "credential_process = cooper credential-process web-readonly" in page.locator(
        "#process"
    ).inner_text()
    sts = boto3.client(
        "sts",
        endpoint_url=run.fixture["aws_endpoint"],
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )
    arn = sts.get_caller_identity()["Arn"]
    assert "web-readonly-role" in arn, arn
    run.shot("credentials")

    # The console: one form, handed off to the sign-in page (the local stand-in) by POST.
    page.goto(f"{url}/targets/web-readonly")
    page.select_option("#f-destination", index=2)
    page.click("form[action$='/console'] button[type=submit]")
    page.wait_for_url(re.compile(r"/_local/signin/signin\.aws\.amazon\.com/federation$"))
    expect(page.locator("#role")).to_contain_text("web-readonly-role")
    expect(page.locator("#account")).to_have_text(run.fixture["account_a"])
    expect(page.locator("#destination")).to_contain_text("/s3/home")
    run.shot("console-stand-in")

    # A high-security target asks for a code, right in the list; the console opens in a new tab.
    page.goto(f"{url}/targets")
    row = page.locator("table.targets tbody tr", has_text="web-secure")
    row.locator("input[name=totp]").fill(alice.code())
    with run.context.expect_page() as opened:
        row.locator("button[type=submit]").click()
    tab = opened.value
    tab.wait_for_url(re.compile(r"/_local/signin/"))
    expect(tab.locator("#role")).to_contain_text("web-secure-role")
    tab.close()

    # A new authenticator: re-enrolling needs a current code; the secret is read off the page.
    page.goto(f"{url}/authenticator")
    page.fill("#f-totp", alice.code())
    page.click("main button[type=submit]")
    secret_text = page.locator("#secret").inner_text()
    new_secret = secret_text.replace(" ", "")
    run.secrets.append(new_secret)
    expect(page.locator("img.qr")).to_be_visible()
    run.shot("authenticator")
    alice.totp = pyotp.TOTP(new_secret)
    alice.last = 0
    page.fill("#f-totp", alice.code())
    page.click("main button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("enrolled")

    # An approval: alice asks, bob approves with his own code, alice uses it once.
    page.goto(f"{url}/approvals")
    page.select_option("#f-target", "web-breakglass")
    page.fill("#f-reason", "Rotate the database password (CHG-42)")
    page.click("form[action$='/approvals'] button[type=submit]")
    page.wait_for_url(re.compile(r"/approvals/[^/]+$"))
    request_page = page.url
    expect(page.locator("main")).to_contain_text("waiting for an approver")
    run.sign_out()
    # bob finds it waiting for him on his approvals page, and opens it from there.
    run.sign_in(bob)
    page.click("header a:has-text('Approvals')")
    request_id = request_page.rsplit("/", 1)[1]
    waiting = page.locator("section[aria-labelledby=waiting-h] tbody tr", has_text=request_id)
    expect(waiting).to_contain_text("web-breakglass")
    waiting.locator("a").click()
    page.wait_for_url(request_page)
    page.fill("#f-totp", bob.code())
    page.click("main button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("Approved")
    run.shot("approval")
    run.sign_out()
    run.sign_in(alice)
    page.goto(f"{url}/approvals")
    mine = page.locator("section[aria-labelledby=mine-h] tbody tr", has_text=request_id)
    expect(mine).to_contain_text("approved")
    page.goto(request_page)
    page.click("a:has-text('Use it')")
    page.click("form[action$='/credentials'] button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("Approved by " + bob.user)
    exports = page.locator("#exports").inner_text()
    run.secrets += re.findall(r"AWS_(?:SECRET_ACCESS_KEY|SESSION_TOKEN)=(\S+)", exports)

    # Access she does not hold: alice asks for it, for two hours, and lands on its page.
    page.click("header a:has-text('Access requests')")
    page.fill("#f-target", run.fixture["requestable"])
    page.select_option("#f-duration", "7200")
    page.fill("#f-reason", "Incident 4711: the payments queue is stuck")
    page.click("form[action$='/access-requests'] button[type=submit]")
    page.wait_for_url(re.compile(r"/access-requests/[0-9a-f]+$"))
    access_page = page.url
    expect(page.locator("main")).to_contain_text("waiting for an approver")
    run.sign_out()

    # carol finds it waiting for her, and approves it with her own code.
    run.sign_in(carol)
    page.click("header a:has-text('Access requests')")
    waiting = page.locator("section[aria-labelledby=waiting-h] tbody tr", has_text=alice.user)
    expect(waiting).to_contain_text("Incident 4711")
    waiting.locator("a").click()
    expect(page).to_have_url(access_page)
    run.shot("access-requests")
    page.fill("#f-approve-totp", carol.code())
    page.click("form[action$='/approve'] button[type=submit]")
    expect(page.locator("[role=status]")).to_contain_text("Approved")
    expect(page.locator("main")).to_contain_text("the access is live")

    # An account admin sees their accounts' records, and not another account's.
    page.click("header a:has-text('Admin')")
    page.fill("#f-account", run.fixture["account_a"])
    page.click("main form button[type=submit]")
    rows = page.locator("main table tbody tr")
    assert rows.count() > 0, "account A's records are shown"
    run.shot("admin")
    page.fill("#f-account", run.fixture["account_b"])
    page.click("main form button[type=submit]")
    expect(page.locator("[role=alert]")).to_contain_text("out_of_scope")
    page.goto(f"{url}/admin/accounts")
    ids = page.locator("main table tbody tr td:nth-child(2)").all_inner_texts()
    assert ids == [run.fixture["account_a"]], f"accounts shown: {ids}"
    run.sign_out()


def fixture_granted(run):
    return sorted(run.fixture["granted"])


def history_urls(profile):
    """Every URL the browser's history kept (its SQLite file, once the browser is closed)."""
    path = Path(profile) / "Default" / "History"
    if not path.exists():
        return []
    copy = Path(profile) / "History.copy"
    shutil.copy(path, copy)
    with sqlite3.connect(copy) as db:
        return [row[0] for row in db.execute("SELECT url FROM urls")]


def no_secret_in_urls(urls, secrets):
    assert urls, "the browser's requests were seen"
    for u in urls:
        for marker in ("SigninToken", "Session=", "password", "SECRET", "totp="):
            assert marker not in u, f"{marker} in a URL the browser visited: {u[:80]}"
        for s in secrets:
            assert s not in u, "a secret in a URL the browser visited"


if __name__ == "__main__":
    main()
