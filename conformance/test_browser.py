"""The browser harness's own checks: it sees what it promises to see.

Run first by conformance/run.sh (suite `browser`), in its virtual environment
with Chromium installed; pages are data: URLs, so no server is needed. A
harness that stopped noticing console errors or CSP refusals would let every
page test pass; these fail then.
"""

import unittest
import urllib.parse

import browser
from browser import PageTest


def page(html):
    return "data:text/html," + urllib.parse.quote(html)


class Harness(PageTest):
    @classmethod
    def setUpClass(cls):
        # No server: the pages are data: URLs.
        cls.origin = ""
        cls.driver = browser.start_chromium()

    def seen_until(self, what, predicate):
        """Every problem reported until one satisfies `predicate`."""
        seen = []

        def check():
            seen.extend(self.page_problems())
            return any(predicate(p) for p in seen)

        browser.wait_until(what, check, timeout=5)
        return seen

    def test_a_clean_page_has_no_problems(self):
        self.driver.get(page("<p>hello</p>"))
        self.assertEqual(self.page_problems(), [])

    def test_a_console_error_is_a_problem(self):
        self.driver.get(page("<script>console.error('boom')</script>"))
        self.seen_until("the console error", lambda p: p.startswith("console") and "boom" in p)

    def test_an_uncaught_exception_is_a_problem(self):
        self.driver.get(page("<script>throw new Error('thrown')</script>"))
        self.seen_until("the exception", lambda p: p.startswith("uncaught") and "thrown" in p)

    def test_a_csp_refusal_is_a_problem(self):
        self.driver.get(
            page(
                "<meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'none'\">"
                "<script>var inline = 1;</script>"
            )
        )
        self.seen_until("the CSP refusal", lambda p: p.startswith("CSP refused"))


class Missing(unittest.TestCase):
    def test_without_chromium_the_suite_fails_and_says_what_to_install(self):
        saved = browser.CHROMIUM
        browser.CHROMIUM = "/nonexistent/chromium"
        try:
            with self.assertRaises(browser.BrowserMissing) as caught:
                browser.start_chromium()
        finally:
            browser.CHROMIUM = saved
        self.assertIn("/nonexistent/chromium", str(caught.exception))
        self.assertIn("apt-get install chromium chromium-driver", str(caught.exception))


if __name__ == "__main__":
    unittest.main()
