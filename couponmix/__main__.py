"""``python -m couponmix``: the console command."""

from couponmix.entry import run

run()
