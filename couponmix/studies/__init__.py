"""Whole studies: study files, a study run end to end, batches of studies, and the Python functions behind
every CLI command (each returns a result object)."""
