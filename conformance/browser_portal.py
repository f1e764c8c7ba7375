"""The customer's setup portal (/portal) in a real browser.

Run by conformance/run.sh (suite `browser`); see conformance/browser.py for
the harness. run.sh passes an operator's host API token
(DIRSYNC_PORTAL_API_TOKEN, through the environment), the dirsync binary
(DIRSYNC_BIN, to start the local fake Entra ID with `dirsync dev
fake-directory entra`) and the path of a setup link it made with the CLI and
expired in the database (DIRSYNC_EXPIRED_SETUP_LINK). The test makes its own
tenant and its setup links through the host API, as a host application
would, then acts as the customer's IT admin: opens a link (the secret leaves
the address bar), sets up an Okta SCIM directory (the token is shown once;
a SCIM request made from here shows up in the live status, htmx polling
under the strict CSP) and an Entra pull connection against the fake (test
connection, a dry run's preview, attribute mapping, schedule). A reused
link and an expired link show a page that says so. A screenshot of each
page goes to $BROWSER_ARTIFACTS/screens/.
"""

import json
import os
import subprocess
import tempfile
import unittest
import urllib.request
import uuid

from selenium.webdriver.common.by import By

from browser import PageTest, wait_until

SCIM = "application/scim+json"


def http(method, url, token, body=None, content_type="application/json"):
    req = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": "Bearer " + token, "Content-Type": content_type},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.load(r)


class Portal(PageTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = os.environ.get("DIRSYNC_PORTAL_API_TOKEN")
        cls.bin = os.environ.get("DIRSYNC_BIN")
        cls.expired = os.environ.get("DIRSYNC_EXPIRED_SETUP_LINK")
        if not cls.token or not cls.bin or not cls.expired:
            raise AssertionError(
                "set DIRSYNC_PORTAL_API_TOKEN, DIRSYNC_BIN and DIRSYNC_EXPIRED_SETUP_LINK "
                "(conformance/run.sh does)"
            )
        cls.screens = None
        where = os.environ.get("BROWSER_ARTIFACTS")
        if where:
            cls.screens = os.path.join(where, "screens")
            os.makedirs(cls.screens, exist_ok=True)
        cls.tenant = "portal-" + uuid.uuid4().hex[:8]
        status, _ = http("POST", cls.origin + "/api/v1/tenants", cls.token, {"name": cls.tenant})
        assert status == 201, status

    # -- helpers ------------------------------------------------------------

    def shot(self, name):
        if self.screens:
            self.driver.save_screenshot(os.path.join(self.screens, name + ".png"))

    def css(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def link(self, allow):
        """A setup link for the tenant, as the host application makes one."""
        status, created = http(
            "POST",
            "%s/api/v1/tenants/%s/setup-links" % (self.origin, self.tenant),
            self.token,
            {"allow": allow, "expires_in": "1h"},
        )
        self.assertEqual(status, 201)
        return created["url"]

    def open_link(self, url):
        self.driver.get(url)
        # The link's page uses nothing up (a mail scanner may fetch it); its button does.
        wait_until("the link's page", lambda: self.driver.find_elements(By.ID, "portal-start"))
        self.driver.find_element(By.ID, "portal-start").click()
        wait_until("the portal", lambda: self.driver.current_url.rstrip("/").endswith("/portal"))
        self.assertNotIn("/setup/", self.driver.current_url)

    def fill(self, **fields):
        for name, value in fields.items():
            field = self.css("[name=%s]" % name)
            field.clear()
            field.send_keys(value)

    def drop_expected_refusals(self, status):
        left = [p for p in self.page_problems() if "status of %s" % status not in p]
        self.assertEqual(left, [], "the page reported problems:\n" + "\n".join(left))

    # -- tests --------------------------------------------------------------

    def test_an_it_admin_sets_up_okta_scim_and_sees_the_first_request_arrive(self):
        url = self.link(["scim"])
        self.open_link(url)
        self.assertEqual(self.css("#portal-tenant").text, self.tenant)
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "#pull-choices"), [])
        self.shot("20-portal-choose")

        self.css("#scim-okta").click()
        secret = wait_until("the token", lambda: self.css("#scim-token").text.strip())
        self.assertTrue(secret.startswith("dsync_"), secret)
        self.assertEqual(self.css("#scim-base-url").text, self.origin + "/scim/v2")
        self.assertIn("Test Connector Configuration", self.css("#steps").text)
        self.shot("21-portal-okta-token")

        # The IdP's first request, with the token the portal showed.
        status, _ = http(
            "POST",
            self.origin + "/scim/v2/Users",
            secret,
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "first@customer.example",
                "emails": [{"value": "first@customer.example", "primary": True}],
            },
            SCIM,
        )
        self.assertEqual(status, 201)
        row = wait_until(
            "the request in the live status",
            lambda: "POST /scim/v2/Users" in self.css("#live-status").text
            and self.css("#live-status").text,
            timeout=30,
        )
        self.assertIn("201", row)
        self.assertIn("created", row)
        self.shot("22-portal-okta-live-status")

        # Shown once: the page again shows the status, not the token.
        self.css("#directory-link").click()
        wait_until("the directory's page", lambda: "/portal/directories/" in self.driver.current_url)
        self.assertNotIn(secret, self.driver.page_source)

        # The link opens the portal once.
        self.driver.get(url)
        title = wait_until("the refusal", lambda: self.css("#portal-error-title").text)
        self.assertIn("already used", title)
        self.drop_expected_refusals("410")
        self.shot("23-portal-link-used")

    def test_an_it_admin_connects_entra_by_pull_against_the_fake(self):
        with tempfile.TemporaryDirectory() as work:
            connection_file = os.path.join(work, "fake-connection.json")
            fake = subprocess.Popen(
                [self.bin, "dev", "fake-directory", "entra", "--users", "25",
                 "--connection-file", connection_file],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                wait_until("the fake's connection file", lambda: os.path.getsize(connection_file) > 0)
                with open(connection_file) as f:
                    fake_connection = json.load(f)
                self.set_up_pull(fake_connection)
            finally:
                fake.terminate()
                fake.wait(timeout=10)

    def set_up_pull(self, connection):
        settings = connection["settings"]
        self.open_link(self.link(["pull"]))
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "#scim-choices"), [])
        self.css("#pull-entra").click()
        wait_until("the credentials form", lambda: self.css("form#pull-form"))
        self.fill(
            tenant_id=settings["tenant_id"],
            client_id=settings["client_id"],
            secret=connection["secret"],
        )
        self.css("form#pull-form details summary").click()
        self.fill(authority_base=settings["authority_base"], graph_base=settings["graph_base"])
        self.shot("24-portal-entra-credentials")
        self.css("#save-connection").click()
        wait_until("the connection's page", lambda: self.css("#test-connection"))
        self.assertNotIn(connection["secret"], self.driver.page_source)

        self.css("#test-connection").click()
        ok = wait_until("the test's answer", lambda: self.css("#test-ok").text)
        self.assertIn("Connected", ok)
        self.shot("25-portal-entra-tested")

        self.css("#preview-users-button").click()
        wait_until("the preview", lambda: self.css("#preview-users"))
        rows = self.driver.find_elements(By.CSS_SELECTOR, "#preview-users tbody tr")
        self.assertGreater(len(rows), 0)
        self.shot("26-portal-entra-preview")

        rules = self.css("#mapping-rules")
        rules.clear()
        rules.send_keys('[{"source": "jobTitle", "target": "custom.job_title"}]')
        self.css("#save-mapping").click()
        wait_until("the mapping saved", lambda: self.css("#mapping-saved"))

        self.css("#schedule-on").click()
        wait_until("the schedule on", lambda: self.css("#schedule-saved"))
        self.assertTrue(self.css("#schedule-state").text.startswith("on"), self.css("#schedule-state").text)
        self.shot("27-portal-entra-scheduled")

    def test_an_expired_link_is_refused_with_a_page_that_says_so(self):
        self.driver.get(self.origin + self.expired)
        title = wait_until("the refusal", lambda: self.css("#portal-error-title").text)
        self.assertIn("expired", title)
        self.assertIn("new one", self.css("#portal-error-hint").text)
        self.drop_expected_refusals("410")
        self.shot("28-portal-link-expired")


if __name__ == "__main__":
    unittest.main()
