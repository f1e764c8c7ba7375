"""The operator dashboard's pull pages in a real browser.

Run by conformance/run.sh (suite `browser`), which starts a fake Entra ID
(`dirsync dev fake-directory entra --users 300`), connects a pull directory
`corp` to it in tenant DIRSYNC_PULL_TENANT with no schedule, and mints a
host-API token of that tenant (DIRSYNC_PULL_API_TOKEN). In order: the
import wizard previews the provider's users and imports two ticked ones;
"Sync now" starts a run whose page follows its progress (htmx polling)
until it ends; the groups and events pages show what the run brought; the
mass-deactivation guard, set low on the policy form, stops a run once the
connection's scope is narrowed to one department (through the host API),
the run's page lists whom it holds back, and Approve carries it out; a
webhook endpoint's delivery log offers a replay. A screenshot of each page
goes to $BROWSER_ARTIFACTS/screens/.
"""

import json
import os
import unittest
import urllib.request

from selenium.webdriver.common.by import By

import browser_admin
from browser import wait_until

SCREENS = ["10", "11", "12", "13", "14", "15", "16", "17", "18"]


def api(origin, token, method, path, body=None):
    req = urllib.request.Request(
        origin + "/api/v1" + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
        return r.status, json.loads(body) if body else None


class PullPages(browser_admin.Dashboard):
    """Dashboard's helpers (sign-in, screenshots, forms), its own tests."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant = os.environ.get("DIRSYNC_PULL_TENANT")
        cls.token = os.environ.get("DIRSYNC_PULL_API_TOKEN")
        if not cls.tenant or not cls.token:
            raise AssertionError(
                "set DIRSYNC_PULL_TENANT and DIRSYNC_PULL_API_TOKEN "
                "(conformance/run.sh connects the fake directory)"
            )

    # Dashboard's own tests are not run again here.
    test_an_operator_provisions_a_scim_directory_and_reads_its_users = None
    test_a_form_posted_without_its_csrf_token_is_refused = None

    def open_tenant(self):
        self.sign_in()
        self.driver.find_element(By.LINK_TEXT, self.tenant).click()
        wait_until("the tenant's page", lambda: self.css("h1").text == self.tenant)

    def open_directory(self):
        self.open_tenant()
        self.driver.find_element(By.LINK_TEXT, "corp").click()
        wait_until("the directory's page", lambda: self.css("h1").text == "corp")

    def wait_for_run(self, ended=("succeeded", "needs_approval", "failed", "partial")):
        """The run's page until the run ends (its progress is polled, then
        the page reloads itself); the statuses it showed on the way."""
        seen = []

        def status():
            text = self.css("#run-status").text
            if not seen or seen[-1] != text:
                seen.append(text)
            return text in ended and text

        wait_until("the run to end", status, timeout=180)
        return seen

    # -- tests, in order ----------------------------------------------------

    def test_1_the_import_wizard_imports_two_ticked_users(self):
        self.open_tenant()
        self.driver.find_element(By.PARTIAL_LINK_TEXT, "Import users").click()
        form = wait_until("the wizard", lambda: self.css("form#preview-form"))
        self.submit(form)
        rows = wait_until(
            "the preview",
            lambda: self.driver.find_elements(By.CSS_SELECTOR, "table#preview-users tbody tr"),
        )
        self.assertEqual(len(rows), 50, "the first 50 of the provider's users")
        self.shot(SCREENS[0] + "-import-preview")
        boxes = self.driver.find_elements(By.CSS_SELECTOR, "input[name=user]")
        picked = [b.get_attribute("value") for b in boxes[:2]]
        for box in boxes[:2]:
            box.click()
        self.submit(self.css("form#import-form"))
        imported = wait_until("the summary", lambda: self.css("#imported").text, timeout=180)
        self.assertEqual(imported, "2")
        self.assertEqual(self.css("#errors").text, "0")
        self.shot(SCREENS[1] + "-import-summary")
        _, users = api(self.origin, self.token, "GET", "/users?limit=10")
        self.assertEqual(len(users["data"]), 2, "only the ticked users: %s" % picked)

    def test_2_sync_now_follows_the_run_to_its_end(self):
        self.open_directory()
        self.submit(self.css("form#sync-now"))
        wait_until("the run's page", lambda: "/admin/runs/" in self.driver.current_url)
        self.shot(SCREENS[2] + "-run-progress")
        seen = self.wait_for_run()
        self.assertEqual(seen[-1], "succeeded", seen)
        self.assertIn("users created", self.css("#run-counts").text)
        self.shot(SCREENS[3] + "-run-succeeded")

        # What the run brought: the groups and the feed.
        self.open_tenant()
        self.driver.find_element(By.LINK_TEXT, "Groups").click()
        groups = wait_until(
            "the groups", lambda: self.driver.find_elements(By.CSS_SELECTOR, "table#groups tbody tr")
        )
        self.assertEqual(len(groups), 3)
        self.shot(SCREENS[4] + "-groups")
        self.driver.back()
        self.driver.find_element(By.LINK_TEXT, "Events").click()
        wait_until("the feed", lambda: self.css("table#events"))
        self.assertIn("Older", self.css(".pager").text, "a page of 50, then older ones")
        self.shot(SCREENS[5] + "-events")

    def test_3_a_guarded_run_is_approved_from_its_page(self):
        self.open_directory()
        form = self.css("form#policy-form")
        self.fill(form, max_deactivations="2")
        self.submit(form)
        wait_until("the policy saved", lambda: self.css("#policy-saved"))
        # One department of five stays in scope: most users go missing.
        status, _ = api(
            self.origin,
            self.token,
            "PATCH",
            "/connections/corp",
            {"scope": {"department": "Engineering"}},
        )
        self.assertEqual(status, 200)
        self.driver.get(self.driver.current_url)
        self.submit(self.css("form#sync-now"))
        wait_until("the run's page", lambda: "/admin/runs/" in self.driver.current_url)
        seen = self.wait_for_run()
        self.assertEqual(seen[-1], "needs_approval", seen)
        held = self.driver.find_elements(By.CSS_SELECTOR, "table#held-back-users tbody tr")
        self.assertGreater(len(held), 2)
        self.shot(SCREENS[6] + "-run-held-back")
        stopped = self.driver.current_url
        self.submit(self.css("form#approve"))
        wait_until("the approval's page", lambda: self.driver.current_url != stopped)
        seen = self.wait_for_run()
        self.assertEqual(seen[-1], "succeeded", seen)
        self.assertIn("deactivated", self.css("#run-counts").text)
        self.shot(SCREENS[7] + "-run-approved")

    def test_4_a_webhooks_delivery_log_offers_a_replay(self):
        # Nothing listens on the discard port: every attempt fails and is
        # logged. A new endpoint starts after the feed's newest event; the
        # replay from event 1 gives it the whole feed.
        status, hook = api(
            self.origin,
            self.token,
            "POST",
            "/webhooks",
            {"url": "http://127.0.0.1:9/hook", "description": "nothing listens here"},
        )
        self.assertEqual(status, 201)
        self.open_tenant()
        self.driver.find_element(By.LINK_TEXT, "Webhooks").click()
        wait_until("the endpoints", lambda: self.css("table#webhooks"))
        self.driver.find_element(By.PARTIAL_LINK_TEXT, "127.0.0.1:9").click()
        wait_until("the endpoint's page", lambda: self.css("#no-attempts"))
        self.submit(self.css("form#replay-from"))
        wait_until("the replay queued", lambda: self.css("#replayed"))
        self.assertIn("event 0", self.css("#delivered-seq").text)
        page = self.driver.current_url

        def attempted():
            self.driver.get(page)
            return self.driver.find_elements(By.CSS_SELECTOR, "table#attempt-log tbody tr")

        wait_until("a delivery attempt", attempted, timeout=60)
        self.shot(SCREENS[8] + "-webhook-log")
        api(self.origin, self.token, "DELETE", "/webhooks/" + hook["id"])

if __name__ == "__main__":
    unittest.main()
