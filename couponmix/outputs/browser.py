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

__all__ = ["CHROMIUM_FLAGS", "chromium_path", "PageCheck", "open_report", "slide_report", "slide_rules"]

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
    """The path of the system's Chromium (chromium or chromium-browser on PATH); a one-line error when there is none.

    Returns
    -------
    str

    Raises
    ------
    CouponmixError
        No Chromium on PATH.
    """
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise CouponmixError("Chromium is not installed (Debian package chromium; `make test` installs it)")


@dataclass
class PageCheck:
    """What loading a report showed (``open_report``): console and page errors, requests other than data: and file: URLs, the
    images (id, complete, natural width and height) and the headline's text."""

    console_errors: list[str] = field(default_factory=list)  #: the console's error messages
    page_errors: list[str] = field(default_factory=list)  #: uncaught script errors
    external_requests: list[str] = field(default_factory=list)  #: URLs requested other than data: and file:
    images: list[dict] = field(default_factory=list)  #: {"id", "complete", "width", "height"} (pixels)
    headline: str = ""  #: the text of the element #headline ("" without one)


def open_report(html: Path, screenshot: Path | None = None, width: int = 1100, full_page: bool = True) -> PageCheck:
    """Load the report, wait for it, and record what went wrong; optionally save a screenshot of the whole
    page, or (``full_page=False``) of the first screen a reader sees (``width`` x 900 pixels).

    Parameters
    ----------
    html : Path
        The report.
    screenshot : Path, optional
        Where to save a PNG screenshot.
    width : int
        The viewport's width, in pixels.
    full_page : bool

    Returns
    -------
    PageCheck

    Raises
    ------
    CouponmixError
        No Chromium.
    """
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
                page.screenshot(path=str(screenshot), full_page=full_page)
        finally:
            browser.close()
    return check


def slide_report(html: Path, moves: list[int]) -> list[dict]:
    """Move the report's exploration-rate slider as a person would (focus it, press the arrow keys), and after
    each move of ``moves`` (signed key presses) read what the page shows: the slider's position, the rate,
    the cost, the days of logging, the payback and each future policy's row.

    Parameters
    ----------
    html : Path
        The report.
    moves : list of int
        Signed key presses (positive: right).

    Returns
    -------
    list of dict
        What the page shows at the start and after each move (len(moves) + 1 readings), as text.

    Raises
    ------
    CouponmixError
        No Chromium, or a script error on the page.
    """
    read = """() => {
      const text = id => { const el = document.getElementById(id); return el ? el.textContent : null; };
      const rows = {};
      document.querySelectorAll('#rate-table tr[data-target]').forEach(r => {
        rows[r.dataset.target] = {iv: r.querySelector('.iv').textContent, pct: r.querySelector('.pct').textContent,
                                  rmse: r.querySelector('.rmse').textContent};
      });
      return {index: Number(document.getElementById('rate-slider').value), rate: text('rate-value'), cost: text('rate-cost'),
              cost_pct: text('rate-cost-pct'), days: text('rate-days'), log_size: text('rate-log-size'),
              payback: text('rate-payback'), rows: rows};
    }"""
    return _slide(html, "#rate-slider", moves, read)


def slide_rules(html: Path, moves: list[int]) -> list[dict]:
    """Move the report's slider over the rules by customer group (``--contextual``) with the arrow keys, and after
    each move of ``moves`` (signed key presses) read what the page shows: the slider's position and its note,
    the share of all traffic explored, the cost, the widest interval's share, each group's exploration rate
    (in the table's order) and each future policy's row.

    Parameters
    ----------
    html : Path
        The report.
    moves : list of int
        Signed key presses (positive: right).

    Returns
    -------
    list of dict
        What the page shows at the start and after each move (len(moves) + 1 readings), as text.

    Raises
    ------
    CouponmixError
        No Chromium, or a script error on the page.
    """
    read = """() => {
      const text = id => { const el = document.getElementById(id); return el ? el.textContent : null; };
      const rows = {};
      document.querySelectorAll('#rule-table tr[data-target]').forEach(r => {
        rows[r.dataset.target] = {iv: r.querySelector('.iv').textContent, pct: r.querySelector('.pct').textContent,
                                  rmse: r.querySelector('.rmse').textContent};
      });
      const groups = Array.from(document.querySelectorAll('#rule-groups tr[data-group]')).map(r => ({
        label: r.cells[0].textContent, share: r.querySelector('.share').textContent, rate: r.querySelector('.rate').textContent}));
      return {index: Number(document.getElementById('rule-slider').value), position: text('rule-position'), note: text('rule-note'),
              explored: text('rule-explored'), cost: text('rule-cost'), cost_pct: text('rule-cost-pct'),
              worst_pct: text('rule-worst-pct'), groups: groups, rows: rows};
    }"""
    return _slide(html, "#rule-slider", moves, read)


def _slide(html: Path, selector: str, moves: list[int], read: str) -> list[dict]:
    """Focus the slider ``selector`` in headless Chromium, press the arrow keys ``moves`` (signed counts), and
    evaluate ``read`` (a JavaScript function) at the start and after each move; a script error fails."""
    from playwright.sync_api import sync_playwright

    seen = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(Path(html).resolve().as_uri(), wait_until="load")
            page.focus(selector)
            seen.append(page.evaluate(read))
            for m in moves:
                key = "ArrowRight" if m > 0 else "ArrowLeft"
                for _ in range(abs(m)):
                    page.keyboard.press(key)
                seen.append(page.evaluate(read))
            if errors:
                raise CouponmixError(f"the report's script failed: {errors[0]}")
        finally:
            browser.close()
    return seen
