"""Real-browser page tests: Debian's Chromium, headless, driven by selenium.

The harness every page test of the `browser` suite shares (conformance/run.sh
runs each `conformance/browser_*.py` as a unittest module against its fresh
server). A page test subclasses `PageTest`; `self.driver` is a headless
Chromium, and each test fails if the page logged a console error or the
browser refused something under the Content Security Policy.

Only Debian's own binaries are used (`apt-get install chromium chromium-driver`),
given to selenium by path, so selenium-manager never runs and nothing is
downloaded. Without them every test fails (never skips) and says what to
install.

Environment (set by conformance/run.sh):
  DIRSYNC_ORIGIN             the server, e.g. http://127.0.0.1:8080
  DIRSYNC_BROWSER_API_TOKEN  a host-API token for tests that call /api/v1
  BROWSER_ARTIFACTS          where a failing test leaves a screenshot and the
                             page's HTML (optional)
  CHROMIUM, CHROMEDRIVER     other binaries than /usr/bin/chromium and
                             /usr/bin/chromedriver (optional)
"""

import os
import shutil
import tempfile
import time
import unittest

# selenium-manager (the driver downloader) stays offline even if something
# ever asked it; the paths below mean nothing does.
os.environ.setdefault("SE_OFFLINE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install chromium chromium-driver"

# Runs in every document before its own scripts: the page's CSP refusals and
# uncaught errors, kept where a test can read them (the console log shows CSP
# refusals too, but only as text).
WATCH_SCRIPT = """
window.__pageProblems = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__pageProblems.push('CSP refused ' + e.blockedURI + ' (' + e.violatedDirective + ')');
});
window.addEventListener('error', function (e) {
  window.__pageProblems.push('uncaught: ' + (e.message || e.type));
}, true);
window.addEventListener('unhandledrejection', function (e) {
  window.__pageProblems.push('unhandled rejection: ' + String(e.reason));
});
"""


class BrowserMissing(Exception):
    pass


def require_browser():
    """The two binaries, or an error that says how to get them."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        raise BrowserMissing(
            "the browser suite needs Debian's Chromium and its driver; missing: %s. "
            "Install them: %s" % (", ".join(missing), INSTALL_HINT)
        )


def start_chromium():
    """A headless Chromium with console logging on and a throwaway profile."""
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="dirsync-chromium.")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        # Root in a CI container has no user namespace for the sandbox.
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--user-data-dir=" + profile,
        # Nothing but the server under test: no updates, sync or phoning home.
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_SCRIPT})
    driver._dirsync_profile = profile
    return driver


def stop_chromium(driver):
    profile = getattr(driver, "_dirsync_profile", None)
    try:
        driver.quit()
    finally:
        if profile:
            shutil.rmtree(profile, ignore_errors=True)


def wait_until(what, check, timeout=20.0, every=0.1):
    """Poll `check()` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # an element not there yet, a stale one
            last_error = e
        time.sleep(every)
    raise AssertionError(
        "waited %.0f s for %s%s"
        % (timeout, what, " (last error: %s)" % last_error if last_error else "")
    )


class PageTest(unittest.TestCase):
    """One Chromium for the test class; problems on the page fail the test."""

    driver = None

    @classmethod
    def setUpClass(cls):
        cls.origin = os.environ.get("DIRSYNC_ORIGIN", "").rstrip("/")
        if not cls.origin:
            raise AssertionError("set DIRSYNC_ORIGIN to the server under test")
        cls.driver = start_chromium()

    @classmethod
    def tearDownClass(cls):
        if cls.driver is not None:
            stop_chromium(cls.driver)

    def setUp(self):
        # Start each test with an empty console.
        self.driver.get_log("browser")

    def tearDown(self):
        problems = self.page_problems()
        if problems or self._failed():
            self._keep_artifacts()
        self.assertEqual(problems, [], "the page reported problems:\n" + "\n".join(problems))

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        if result is None:
            return False
        mine = [t for t, _ in result.errors + result.failures if t is self]
        return bool(mine)

    def _keep_artifacts(self):
        where = os.environ.get("BROWSER_ARTIFACTS")
        if not where:
            return
        os.makedirs(where, exist_ok=True)
        name = self.id().rsplit(".", 1)[-1]
        try:
            self.driver.save_screenshot(os.path.join(where, name + ".png"))
            with open(os.path.join(where, name + ".html"), "w") as f:
                f.write(self.driver.page_source)
            print("browser: screenshot and HTML of %s kept in %s" % (name, where))
        except Exception as e:
            print("browser: could not keep the page of %s: %s" % (name, e))

    def page_problems(self):
        """Console errors and CSP refusals since the last call."""
        problems = [
            "console %s: %s" % (entry["level"], entry["message"])
            for entry in self.driver.get_log("browser")
            if entry["level"] in ("SEVERE", "ERROR")
        ]
        try:
            problems += self.driver.execute_script(
                "var p = window.__pageProblems || []; window.__pageProblems = []; return p;"
            )
        except Exception as e:
            problems.append("could not read the page's problems: %s" % e)
        return problems

    def assert_no_page_problems(self):
        problems = self.page_problems()
        self.assertEqual(problems, [], "the page reported problems:\n" + "\n".join(problems))
