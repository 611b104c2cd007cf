"""Browser tests of the hosted pages: the console's harness (Debian's /usr/bin/chromium driven by Playwright
against a real `offerloop serve`), reused as is."""

from tests.console.e2e.conftest import browser, page, shots  # noqa: F401
