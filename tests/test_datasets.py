import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_paper_log_is_what_the_script_makes():
    spec = importlib.util.spec_from_file_location("make_paper_log", ROOT / "datasets" / "make_paper_log.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    shipped = pd.read_csv(ROOT / "datasets" / "paper_log.csv")
    fresh = mod.build()
    assert list(shipped.columns) == list(fresh.columns)
    for col in shipped.columns:
        if pd.api.types.is_numeric_dtype(shipped[col]):
            np.testing.assert_allclose(shipped[col], fresh[col], rtol=1e-9)
        else:
            assert (shipped[col].astype(str) == fresh[col].astype(str)).all()
