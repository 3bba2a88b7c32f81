"""Regenerate reports/examples/: the default market report (with a browser screenshot), the published
setting, market with exploration by segment, and the batch of example campaign studies. Run with
`make examples`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from couponmix.cli import main
from couponmix.outputs.batch import run_batch
from couponmix.outputs.browser import open_report

EXAMPLES = Path(__file__).resolve().parent / "examples"


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    return path


def main_() -> int:
    # market as `make demo` runs it; paper has no explore component, so no plan (--tol); market with an
    # exploration rate per customer segment (README: Contextual exploration)
    for name, scenario, extra in (
        ("market", "market", ["--tol", "0.5"]),
        ("paper", "paper", []),
        ("contextual", "market", ["--tol", "0.5", "--contextual", "segment"]),
    ):
        if main(["run", scenario, "--out", str(fresh(EXAMPLES / name)), *extra]) != 0:
            return 1
    check = open_report(EXAMPLES / "market" / "report.html", screenshot=EXAMPLES / "market" / "screenshot.png")
    if check.console_errors or check.page_errors or check.external_requests:
        print(f"the market report did not render cleanly: {check}", file=sys.stderr)
        return 1
    res = run_batch(EXAMPLES / "studies", fresh(EXAMPLES / "batch"))
    print(f"batch: {res.done} done, {res.failed} failed; {res.index}")
    # the first screen a reader sees (1280 x 900): market, the contextual report, the batch index
    for page, shot in (
        (EXAMPLES / "market" / "report.html", EXAMPLES / "market" / "first_screen.png"),
        (EXAMPLES / "contextual" / "report.html", EXAMPLES / "contextual" / "first_screen.png"),
        (res.index, EXAMPLES / "batch" / "first_screen.png"),
    ):
        check = open_report(page, screenshot=shot, width=1280, full_page=False)
        if check.console_errors or check.page_errors or check.external_requests:
            print(f"{page} did not render cleanly: {check}", file=sys.stderr)
            return 1
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main_())
