"""The operator dashboard (/admin) in a real browser.

Run by conformance/run.sh (suite `browser`); see conformance/browser.py for
the harness. run.sh creates the operator (`dirsync operator create
--password-stdin`) and passes the credentials in DIRSYNC_ADMIN_EMAIL and
DIRSYNC_ADMIN_PASSWORD. An operator signs in; creates a tenant, a SCIM
directory and a token (shown once); a SCIM client (plain HTTP from here)
creates a user whose displayName is `<script>alert(1)</script>`, who shows
on the users page as text (found by the live search, htmx under the strict
CSP); the user's page shows their timeline, their deactivation by the
directory included; a policy the rules refuse is shown with the reason; a
form posted without its CSRF token is refused; the directory's request log
shows the SCIM client's requests. A screenshot of each page
goes to $BROWSER_ARTIFACTS/screens/.
"""

import json
import os
import unittest
import urllib.request
import uuid

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from browser import PageTest, wait_until

XSS = "<script>alert(1)</script>"
SCIM = "application/scim+json"


def scim(origin, token, method, path, body):
    req = urllib.request.Request(
        origin + "/scim/v2" + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": "Bearer " + token, "Content-Type": SCIM, "Accept": SCIM},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.load(r)


class Dashboard(PageTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.email = os.environ.get("DIRSYNC_ADMIN_EMAIL")
        cls.password = os.environ.get("DIRSYNC_ADMIN_PASSWORD")
        if not cls.email or not cls.password:
            raise AssertionError(
                "set DIRSYNC_ADMIN_EMAIL and DIRSYNC_ADMIN_PASSWORD "
                "(conformance/run.sh creates the operator)"
            )
        cls.screens = None
        where = os.environ.get("BROWSER_ARTIFACTS")
        if where:
            cls.screens = os.path.join(where, "screens")
            os.makedirs(cls.screens, exist_ok=True)

    # -- helpers ------------------------------------------------------------

    def shot(self, name):
        if self.screens:
            self.driver.save_screenshot(os.path.join(self.screens, name + ".png"))

    def css(self, selector):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def fill(self, form, **fields):
        for name, value in fields.items():
            field = form.find_element(By.NAME, name)
            if field.tag_name == "select":
                Select(field).select_by_value(value)
            else:
                field.clear()
                field.send_keys(value)

    def submit(self, form):
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def sign_in(self):
        # Each test signs in afresh (the class shares one browser).
        self.driver.get(self.origin + "/admin/login")
        self.driver.delete_all_cookies()
        self.driver.get(self.origin + "/admin")
        wait_until("the sign-in form", lambda: "/admin/login" in self.driver.current_url)
        self.assertIn("next=%2Fadmin", self.driver.current_url)
        self.shot("01-sign-in")
        form = self.css("form#login")
        self.fill(form, email=self.email, password=self.password)
        self.submit(form)
        wait_until(
            "the dashboard after signing in",
            lambda: self.driver.current_url.rstrip("/").endswith("/admin"),
        )

    def assert_no_alert(self):
        try:
            alert = self.driver.switch_to.alert
        except NoAlertPresentException:
            return
        text = alert.text
        alert.dismiss()
        self.fail("a directory's value ran as script: alert(%r)" % text)

    # -- tests --------------------------------------------------------------

    def test_an_operator_provisions_a_scim_directory_and_reads_its_users(self):
        self.sign_in()
        self.shot("02-tenants")
        tenant = "browser-" + uuid.uuid4().hex[:8]
        form = self.css("form#create-tenant")
        self.fill(form, name=tenant)
        self.submit(form)
        wait_until("the tenant's page", lambda: self.css("h1").text == tenant)
        self.shot("03-tenant")

        form = self.css("form#create-directory")
        self.fill(form, name="okta-prod", kind="scim", vendor="okta")
        self.submit(form)
        wait_until("the directory's page", lambda: self.css("h1").text == "okta-prod")
        base_url = self.css("#scim-base-url").text
        self.assertEqual(base_url, self.origin + "/scim/v2")

        form = self.css("form#create-token")
        self.fill(form, label="Okta production")
        self.submit(form)
        secret = wait_until("the new token", lambda: self.css("#new-token-secret").text.strip())
        self.assertTrue(secret.startswith("dsync_"), secret)
        self.shot("04-directory-token-created")
        # Shown once: the page read again holds only its prefix.
        directory_page = self.driver.current_url.rsplit("/tokens", 1)[0]
        self.driver.get(directory_page)
        self.assertEqual(self.css("h1").text, "okta-prod")
        self.assertNotIn(secret, self.driver.page_source)
        self.assertIn("Okta production", self.driver.page_source)

        status, user = scim(
            self.origin,
            secret,
            "POST",
            "/Users",
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "xss@example.com",
                "displayName": XSS,
                "name": {"givenName": "Eve", "familyName": "Script"},
                "emails": [{"value": "xss@example.com", "primary": True}],
                "title": '"><img src=x onerror=alert(2)>',
                "active": True,
            },
        )
        self.assertEqual(status, 201)
        for n in range(3):
            scim(
                self.origin,
                secret,
                "POST",
                "/Users",
                {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "user%d@example.com" % n,
                    "emails": [{"value": "user%d@example.com" % n, "primary": True}],
                    "active": True,
                },
            )

        # The users page: the displayName is text, and nothing ran.
        self.driver.get(self.driver.current_url.split("/admin/")[0] + "/admin")
        self.driver.find_element(By.LINK_TEXT, tenant).click()
        self.driver.find_element(By.LINK_TEXT, "Users of this tenant").click()
        wait_until("the users table", lambda: self.css("table#users"))
        names = [a.text for a in self.driver.find_elements(By.CSS_SELECTOR, "table#users td a")]
        self.assertIn(XSS, names)
        self.assert_no_alert()
        self.assertEqual(
            self.driver.find_elements(By.XPATH, "//script[contains(., 'alert(')]"), []
        )
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "img[src=x]"), [])
        self.shot("05-users")

        # The live search (htmx, under the CSP): narrowing to no one, then
        # to the one user.
        box = self.css("form#search input[name=q]")
        box.send_keys("nobody-matches")
        wait_until("the search to find no one", lambda: self.css("#no-users"))
        box.clear()
        box.send_keys("xss")
        wait_until(
            "the search to find the user",
            lambda: [
                a.text for a in self.driver.find_elements(By.CSS_SELECTOR, "table#users td a")
            ]
            == [XSS],
        )
        self.assertIn("q=xss", self.driver.current_url)
        self.shot("06-users-search")

        # Filters: the directory and status selects.
        self.assertIn(
            "okta-prod (scim)",
            [o.text for o in Select(self.css("select[name=directory]")).options],
        )

        self.driver.find_element(By.LINK_TEXT, XSS).click()
        wait_until("the user's page", lambda: self.css("#user-name").text == XSS)
        self.assert_no_alert()
        self.assertIn("user.created", self.css("#timeline").text)
        self.assertIn("okta-prod", self.css("#links").text)

        # The directory deactivates the user: the timeline says so, and by whom.
        status, _ = scim(
            self.origin,
            secret,
            "PATCH",
            "/Users/" + user["id"],
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        )
        self.assertEqual(status, 200)
        self.driver.get(self.driver.current_url)
        timeline = self.css("#timeline").text
        self.assertIn("user.deactivated", timeline)
        self.assertIn("deactivated by directory", timeline)
        self.assertIn("DEACTIVATED", self.css("#profile").text)
        self.shot("07-user")

        # A policy the rules refuse comes back with the reason, as the CLI's.
        self.driver.get(directory_page)
        form = self.css("form#policy-form")
        self.fill(form, max_deactivation_percent="150")
        self.submit(form)
        error = wait_until("the policy's error", lambda: self.css("#policy-error").text)
        self.assertIn("between 0 and 100", error)
        self.drop_expected_refusals("400")
        self.shot("08-directory-policy-error")

        # The SCIM requests above are in the directory's request log (it is
        # written a moment after each answer, the last one too).
        def logged():
            self.driver.get(directory_page)
            log = self.css("#request-log").text
            return "201" in log and "PATCH" in self.css("#last-request").text and log

        log = wait_until("the SCIM requests in the log", logged)
        self.assertIn("POST", log)
        self.assertIn("/Users", log)
        self.assertIn("PATCH", self.css("#last-request").text)
        self.shot("08b-directory-requests")

    def test_a_form_posted_without_its_csrf_token_is_refused(self):
        self.sign_in()
        tenant = "no-csrf-" + uuid.uuid4().hex[:8]
        form = self.css("form#create-tenant")
        self.fill(form, name=tenant)
        self.driver.execute_script(
            "arguments[0].querySelector('input[name=csrf]').remove();", form
        )
        self.submit(form)
        message = wait_until("the refusal", lambda: self.css("#error-message").text)
        self.assertIn("security token", message)
        self.assertIn("Refused", self.css("h1").text)
        self.drop_expected_refusals("403")
        self.shot("09-csrf-refused")
        self.driver.get(self.origin + "/admin")
        self.assertNotIn(tenant, self.driver.page_source)

    def drop_expected_refusals(self, status):
        """The console's note of the refusal this test asked for is no
        problem; anything else still fails the test."""
        left = [
            p
            for p in self.page_problems()
            if "status of %s" % status not in p
        ]
        self.assertEqual(left, [], "the page reported problems:\n" + "\n".join(left))


if __name__ == "__main__":
    unittest.main()
