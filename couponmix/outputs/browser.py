"""Open a report as a person would: headless Chromium (Debian's package) driven by Playwright.

Used by the browser test and to make the example screenshot. Playwright is a test dependency and is
imported only here; Chromium comes from the system (``make test`` installs it when missing), never
from Playwright's own download.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from couponmix.errors import CouponmixError

__all__ = ["CHROMIUM_FLAGS", "chromium_path", "PageCheck", "open_report"]

#: without the background-networking flags Chromium keeps trying to reach Google's hosts on a closed network
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise CouponmixError("Chromium is not installed (Debian package chromium; `make test` installs it)")


@dataclass
class PageCheck:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)  # {"id", "complete", "width", "height"}
    headline: str = ""


def open_report(html: Path, screenshot: Path | None = None, width: int = 1100) -> PageCheck:
    """Load the report, wait for it, and record what went wrong; optionally save a full-page screenshot."""
    from playwright.sync_api import sync_playwright

    check = PageCheck()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: check.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: check.page_errors.append(str(e)))
            page.on("request", lambda r: None if r.url.startswith(("data:", "file:")) else check.external_requests.append(r.url))
            page.goto(Path(html).resolve().as_uri(), wait_until="load")
            check.images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({id: e.id, complete: e.complete, width: e.naturalWidth, height: e.naturalHeight}))"
            )
            check.headline = page.inner_text("#headline") if page.query_selector("#headline") else ""
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return check
