"""Where logged data comes from: scenarios (simulated worlds with known truth, plug-ins by entry point or
folder), logs drawn from a mixture, and chunked Parquet simulation of large populations."""
