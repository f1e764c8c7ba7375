"""The API reference page (/api/docs, Swagger UI) in a real browser.

Run by conformance/run.sh (suite `browser`); see conformance/browser.py for
the harness and its environment. Checks that the page renders every
operation of /api/v1/openapi.json under its tag, without a console error or a
CSP refusal, and that a reader can authorize with a token and run
`GET /api/v1/users` from the page.
"""

import json
import os
import unittest
import urllib.request

from selenium.webdriver.common.by import By

from browser import PageTest, wait_until

METHODS = ("get", "put", "post", "delete", "patch")


def css(element, selector):
    return element.find_elements(By.CSS_SELECTOR, selector)


class ApiDocs(PageTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with urllib.request.urlopen(cls.origin + "/api/v1/openapi.json", timeout=10) as r:
            cls.document = json.load(r)

    def open_docs(self):
        self.driver.get(self.origin + "/api/docs")
        wait_until("Swagger UI to render the operations", lambda: css(self.driver, ".opblock"))

    def rendered_operations(self):
        """(METHOD, path) of every operation block on the page."""
        out = set()
        for block in css(self.driver, ".opblock"):
            method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text
            path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute(
                "data-path"
            )
            out.add((method.strip().upper(), path))
        return out

    def operation(self, method, path):
        for block in css(self.driver, ".opblock.opblock-" + method.lower()):
            summary = block.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
            if summary and summary[0].get_attribute("data-path") == path:
                return block
        raise AssertionError("no %s %s on the page" % (method, path))

    def test_every_operation_of_the_document_is_rendered_under_its_tag(self):
        self.open_docs()
        self.assertIn("/api/v1/openapi.json", self.driver.page_source)
        wanted = {
            (method.upper(), path)
            for path, item in self.document["paths"].items()
            for method in item
            if method in METHODS
        }
        rendered = wait_until(
            "all %d operations" % len(wanted),
            lambda: (lambda ops: ops if ops >= wanted else None)(self.rendered_operations()),
        )
        self.assertEqual(rendered, wanted)
        self.assertIn(("GET", "/api/v1/users"), rendered)
        tags = [
            section.get_attribute("data-tag") for section in css(self.driver, ".opblock-tag")
        ]
        self.assertEqual(sorted(tags), sorted(t["name"] for t in self.document["tags"]))
        # An operation sits under its own tag's section.
        users = css(self.driver, '.opblock-tag[data-tag="users"]')[0]
        section = users.find_element(
            By.XPATH, "./ancestor::*[contains(@class,'opblock-tag-section')]"
        )
        paths = [
            p.get_attribute("data-path")
            for p in section.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        ]
        self.assertIn("/api/v1/users", paths)

    def test_a_reader_authorizes_and_runs_list_users_from_the_page(self):
        token = os.environ.get("DIRSYNC_BROWSER_API_TOKEN")
        self.assertTrue(token, "set DIRSYNC_BROWSER_API_TOKEN to a host-API token (read scope)")
        self.open_docs()

        # Authorize: the bearer scheme's value field, then close the dialog.
        css(self.driver, ".auth-wrapper .authorize")[0].click()
        field = wait_until(
            "the Authorize dialog",
            lambda: css(
                self.driver,
                ".dialog-ux .modal-ux input[type=text], .dialog-ux .modal-ux input[type=password]",
            ),
        )[0]
        field.send_keys(token)
        css(self.driver, ".dialog-ux .modal-btn.authorize")[0].click()
        wait_until(
            "the dialog to say it is authorized",
            lambda: any(
                h.text.strip() == "Authorized"
                for h in css(self.driver, ".dialog-ux .auth-container h6")
            ),
        )
        css(self.driver, ".dialog-ux .btn-done")[0].click()
        wait_until("the dialog to close", lambda: not css(self.driver, ".dialog-ux .modal-ux"))

        # GET /api/v1/users: open it, Try it out, Execute.
        block = self.operation("GET", "/api/v1/users")
        block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        try_out = wait_until(
            "Try it out", lambda: block.find_elements(By.CSS_SELECTOR, ".try-out__btn")
        )[0]
        try_out.click()
        execute = wait_until(
            "Execute", lambda: block.find_elements(By.CSS_SELECTOR, ".btn.execute")
        )[0]
        execute.click()
        status = wait_until(
            "the live response",
            lambda: block.find_elements(
                By.CSS_SELECTOR, ".live-responses-table .response .response-col_status"
            ),
        )[0]
        body = block.find_element(
            By.CSS_SELECTOR, ".live-responses-table .response .response-col_description"
        ).text
        self.assertEqual(status.text.strip(), "200", body[:500])
        self.assertIn('"data"', body)
        request_url = block.find_element(By.CSS_SELECTOR, ".request-url").text
        self.assertIn("/api/v1/users", request_url)


if __name__ == "__main__":
    unittest.main()
