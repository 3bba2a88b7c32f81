"""The typed study result and its one serialisation: summary.json round-trips to the same records."""

import json
from pathlib import Path

import pytest

from couponmix.dataset.types import VerdictInfo
from couponmix.studies.config import StudyInfo
from couponmix.studies.study import run_study
from couponmix.studies.summary import (
    SUMMARY_FORMAT,
    ExploitRegret,
    Headline,
    IpsVariance,
    OptimiserInfo,
    StudySummary,
    TargetPrecision,
    from_json,
    to_json,
)

EXAMPLES = sorted((Path(__file__).parents[1] / "reports" / "examples").rglob("summary.json"))


@pytest.fixture(scope="module")
def small():
    return run_study("paper_floor", n=2000, eval_size=3000, pop_size=8, generations=2, tol=0.5).summary


def test_summary_is_typed_and_round_trips(small):
    assert isinstance(small, StudySummary) and isinstance(small.headline, Headline)
    assert all(isinstance(p, TargetPrecision) for p in small.headline.precision.values())
    text = to_json(small)
    back = from_json(text)
    assert back == small  # the same records, field by field
    assert to_json(back) == text  # and the same bytes
    doc = json.loads(text)
    assert list(doc) == [k for k in StudySummary.__dataclass_fields__ if k in doc]  # key order = field order
    assert doc["summary_format"] == SUMMARY_FORMAT
    assert "exploit_regret" not in doc and "study" not in doc  # optional blocks left out when absent
    assert doc["plan"]["tol"] == 0.5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_block_of_an_example_is_a_record(path):
    text = path.read_text()
    s = from_json(text)
    assert isinstance(s.study, StudyInfo) and isinstance(s.optimiser, OptimiserInfo) and isinstance(s.ips_variance, IpsVariance)
    assert all(isinstance(v, VerdictInfo) for v in [*s.ips_variance.targets.values(), *s.ips_variance.at_recommended.values()])
    assert s.exploit_regret is None or isinstance(s.exploit_regret, ExploitRegret)
    assert to_json(s) == text  # byte for byte


def test_headline_agrees_with_the_recommendation(small):
    h, rec = small.headline, small.recommended
    assert h.worst_error == rec.ope_rmse == max(rec.ope_rmse_per_target.values())
    for t, p in h.precision.items():
        assert p.rmse == rec.targets[t].rmse and p.estimator == small.production.estimators[t]["estimator"]


def test_another_layout_is_refused():
    with pytest.raises(ValueError):
        from_json(json.dumps({"summary_format": SUMMARY_FORMAT - 1}))
    with pytest.raises(ValueError):
        from_json("[1, 2]")
