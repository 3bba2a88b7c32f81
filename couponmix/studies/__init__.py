"""Whole studies: study files, a study run end to end with its typed summary, and closed-loop campaigns. A
batch of studies is ``couponmix.outputs.batch``; the Python functions behind every CLI command are
``couponmix.commands``."""
