"""The ``couponmix`` console command. Ctrl-C while Python is still importing couponmix's modules (the first
fraction of a second) says "couponmix: interrupted" in one line and exits 130, like Ctrl-C later on,
instead of printing a KeyboardInterrupt traceback. After an interrupt the command has already removed its
staging and stopped its workers, so the process leaves at once (``os._exit``) rather than waiting on the
interpreter's shutdown, which joins the worker pool's threads and can take seconds. Output piped into a reader that stops early
(``couponmix scenarios | head -1``) ends quietly instead of with a BrokenPipeError traceback."""

from __future__ import annotations

import os
import sys


def run() -> None:
    """The console command: run ``couponmix.cli.main`` and exit with its code (130 on Ctrl-C, 1 on a broken pipe)."""
    try:
        from couponmix.cli import main
    except KeyboardInterrupt:
        print("couponmix: interrupted", file=sys.stderr)
        sys.exit(130)
    try:
        code = main()
        sys.stdout.flush()
        if code == 130:  # interrupted: end what is left of the workers and leave now
            from couponmix.cli import _end_children

            _end_children()
            sys.stderr.flush()
            os._exit(130)
    except BrokenPipeError:
        # the reader has gone: point stdout at /dev/null so that the interpreter's final flush stays quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    sys.exit(code)
