"""Scale: chunked Parquet simulation (invariance, schema, bounded memory) and the Dask backend."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from couponmix.cli import main
from couponmix.dataset.logs import simulate_log
from couponmix.dataset.simulate import LogSummary, simulate_to_parquet
from couponmix.errors import CouponmixError
from couponmix.infra.backend import DaskBackend, LocalBackend, get_backend
from couponmix.infra.seeding import BLOCK
from couponmix.ope.estimators import EstimatorSpec
from couponmix.policy.mixture import Mixture

ALPHA = [0.3, 0.3, 0.4]
N = 3 * BLOCK + 1234  # not a whole number of blocks or chunks


@pytest.fixture(scope="module")
def reference(paper, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "one_chunk_per_block"
    summary = simulate_to_parquet(paper, ALPHA, N, out, seed=5, chunk_size=BLOCK)
    return out, summary


def test_parquet_log_equals_the_in_memory_log_with_the_documented_schema(paper, reference):
    out, summary = reference
    df = pd.read_parquet(out)
    assert list(df.columns) == ["x1", "x2", "x3", "x4", "component", "action", "reward", "pscore_avg", "pscore"]
    assert summary.columns == list(df.columns)
    assert df.dtypes["component"] == np.int16 and df.dtypes["action"] == np.int16 and df.dtypes["reward"] == np.float64
    log = simulate_log(paper, Mixture(paper.components(), ALPHA), N, seed=5)
    assert len(df) == N == summary.n
    assert np.array_equal(df[["x1", "x2", "x3", "x4"]].to_numpy(), log["context"])
    for col, key in (
        ("component", "stratum_idx"),
        ("action", "action"),
        ("reward", "reward"),
        ("pscore_avg", "pscore_avg"),
        ("pscore", "pscore"),
    ):
        assert np.array_equal(df[col].to_numpy(), log[key]), col
    assert summary.files == [f"part-{i:06d}.parquet" for i in range(4)]
    # the streamed statistics are the log's own
    assert summary.reward_mean == pytest.approx(log["reward"].mean(), rel=1e-12)
    assert summary.reward_mean_se == pytest.approx(log["reward"].std(ddof=1) / np.sqrt(N), rel=1e-9)
    shares = np.bincount(log["stratum_idx"], minlength=3) / N
    assert list(summary.component_share.values()) == pytest.approx(shares.tolist(), abs=1e-15)
    # the record is the document _summary.json holds, key for key, and reads back from it
    doc = json.loads((out / "_summary.json").read_text())
    assert summary.to_dict() == doc and list(summary.to_dict()) == list(doc) and "contextual" not in doc
    assert LogSummary.from_dict(doc) == summary


def test_output_does_not_depend_on_chunk_size_workers_or_backend(paper, reference, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from couponmix.dataset import simulate

    ref = pd.read_parquet(reference[0])
    runs = {
        "two chunks, two processes": dict(chunk_size=2 * BLOCK, backend=LocalBackend(2)),
        "one chunk": dict(chunk_size=4 * BLOCK),
        "dask threads": dict(chunk_size=BLOCK, backend=DaskBackend("threads")),
        "one chunk in row groups of one block": dict(chunk_size=4 * BLOCK),
    }
    for i, (what, kw) in enumerate(runs.items()):
        if what.endswith("row groups of one block"):  # several groups per file, written while simulating
            monkeypatch.setattr(simulate, "ROW_GROUP_BLOCKS", 1)
        summary = simulate_to_parquet(paper, ALPHA, N, tmp_path / str(i), seed=5, **kw)
        assert pd.read_parquet(tmp_path / str(i)).equals(ref), what
        assert summary.reward_mean == pytest.approx(reference[1].reward_mean, rel=1e-12), what
    assert pq.ParquetFile(tmp_path / "3" / "part-000000.parquet").num_row_groups == 4


def test_simulate_cli_and_its_errors(tmp_path, capsys):
    out = tmp_path / "log"
    assert (
        main(
            [
                "simulate",
                "paper_floor",
                "--n",
                "70000",
                "--alpha",
                "pi1=0.5,pi2=0.25,pi3=0.25",
                "--out",
                str(out),
                "--chunk-size",
                str(BLOCK),
                "--workers",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((out / "_summary.json").read_text())
    assert summary["n"] == 70000 and len(summary["files"]) == 2 and len(pd.read_parquet(out)) == 70000
    bad = [
        (["--chunk-size", "1000"], "multiple of 65,536"),
        (["--workers", "2", "--scheduler", "threads"], "not both"),
        (["--alpha", "pi1=0.5,pi2=0.6,pi3=0.1"], "sum"),
    ]
    for extra, message in bad:
        args = ["simulate", "paper", "--n", "1000", "--alpha", "pi1=0.5,pi2=0.25,pi3=0.25", "--out", str(tmp_path / "x"), "--quiet", *extra]
        if extra[0] == "--alpha":
            args = args[:4] + extra + args[6:]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not (tmp_path / "x").exists()
    # an existing, non-empty folder is never overwritten
    assert main(["simulate", "paper", "--n", "1000", "--alpha", "pi1=0.5,pi2=0.25,pi3=0.25", "--out", str(out), "--quiet"]) == 2
    assert "not empty" in capsys.readouterr().err


def _peak_rss_mb(n: int, folder) -> float:
    code = textwrap.dedent(f"""
        import resource
        from simulators import get_scenario
        from couponmix.dataset.simulate import simulate_to_parquet
        simulate_to_parquet(get_scenario("paper"), {ALPHA}, {n}, {str(folder)!r}, seed=1, chunk_size={BLOCK})
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def test_memory_stays_bounded_when_n_grows_tenfold(tmp_path):
    """Chunks of 65,536 customers: 10x the customers must not mean 10x the memory. At 2.6M customers the
    whole log would be about 190 MB (times the temporaries), against a baseline of a few hundred MB."""
    small = _peak_rss_mb(4 * BLOCK, tmp_path / "small")
    large = _peak_rss_mb(40 * BLOCK, tmp_path / "large")
    assert len(pd.read_parquet(tmp_path / "large")) == 40 * BLOCK
    assert large < small * 1.15 + 20, (small, large)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


def test_dask_cluster_simulation_equals_the_local_path(paper, reference, cluster, tmp_path):
    summary = simulate_to_parquet(
        paper, ALPHA, N, tmp_path / "dask", seed=5, chunk_size=BLOCK, backend=DaskBackend(cluster.scheduler_address)
    )
    assert pd.read_parquet(tmp_path / "dask").equals(pd.read_parquet(reference[0]))
    assert summary.backend == f"dask ({cluster.scheduler_address})"
    seen: list[int] = []
    assert DaskBackend(cluster.scheduler_address).map(abs, [-3, 2, -1], on_done=seen.append) == [3, 2, 1]
    assert seen == [1, 2, 3]  # each result reported as it is in


@pytest.mark.slow  # starts a local Dask cluster
def test_dask_cluster_monte_carlo_equals_the_local_path(paper_floor, cluster):
    from couponmix.ope.estimators import EstimatorSpec
    from couponmix.ope.montecarlo import monte_carlo

    kw = dict(eval_size=5000, truth_size=100_000)
    specs = [EstimatorSpec("ips"), EstimatorSpec("dr")]
    local = monte_carlo(paper_floor, ALPHA, specs, 500, 8, seed=2, workers=1, **kw)
    dask = monte_carlo(paper_floor, ALPHA, specs, 500, 8, seed=2, backend=DaskBackend(cluster.scheduler_address), **kw)
    assert local == dask


def test_backend_errors():
    with pytest.raises(CouponmixError, match="not both"):
        get_backend("threads", 2)
    with pytest.raises(CouponmixError, match="cannot use the Dask scheduler at tcp://127.0.0.1:1"):
        DaskBackend("tcp://127.0.0.1:1", timeout=2).map(abs, [1])
    assert get_backend(None, None).name == "local"


STREAM_CASES = [
    ("paper", EstimatorSpec("clipped_ips", 10.0)),
    ("paper_floor", EstimatorSpec("dr")),
    ("paper_floor", EstimatorSpec("snips")),
    ("paper_floor", EstimatorSpec("ips", weights="naive")),
]


@pytest.mark.parametrize("scenario,spec", STREAM_CASES, ids=[f"{c[0]}-{c[1].name}" for c in STREAM_CASES])
def test_streaming_objectives_equal_the_in_memory_ones(scenario, spec):
    from couponmix.ope.objectives import EvaluationSample, MixtureObjectives
    from couponmix.ope.streaming import StreamingObjectives, population_chunk
    from simulators import get_scenario

    sc = get_scenario(scenario)
    size = 3 * BLOCK + 999
    alphas = 0.02 + 0.94 * np.random.default_rng(1).dirichlet(np.ones(3), 7)
    streamed = StreamingObjectives(sc, spec, 5000, size, seed=4, chunk_size=BLOCK)
    x = population_chunk(sc, 4, size, 4 * BLOCK, 0)  # the same customers, in one piece
    mu = sc.mu(x)
    sample = EvaluationSample.from_covariates(sc, x, q=np.broadcast_to(mu.mean(axis=0), mu.shape).copy())
    memory = MixtureObjectives(sample, spec, 5000)
    rev, agg, per = streamed.evaluate(alphas)
    rev_m, agg_m, per_m = memory.evaluate(alphas)
    np.testing.assert_allclose(rev, rev_m, rtol=1e-12)
    np.testing.assert_allclose(per, per_m, rtol=1e-9)
    np.testing.assert_allclose(agg, agg_m, rtol=1e-9)
    # chunk size and backend do not change the population or the result
    other = StreamingObjectives(sc, spec, 5000, size, seed=4, chunk_size=2 * BLOCK, backend=LocalBackend(2))
    np.testing.assert_allclose(other.evaluate(alphas)[2], per, rtol=1e-12)
    # rows kept between passes (the default when they fit) give exactly what streaming every pass gives
    assert streamed.cached and other.cached
    uncached = StreamingObjectives(sc, spec, 5000, size, seed=4, chunk_size=BLOCK, cache_bytes=0)
    for a, b in zip(uncached.evaluate(alphas), (rev, agg, per)):
        assert np.array_equal(a, b)
    assert not uncached.cached


@pytest.mark.parametrize("scenario", ["paper", "paper_floor"])
def test_streamed_criterion_equals_the_in_memory_one(scenario):
    """run's criterion (every candidate estimator, robust error, the best per target) from a population streamed
    in several chunks equals the criterion on the same customers in memory: revenue, each target's error, the
    estimator chosen and the error's parts."""
    from couponmix.ope.criterion import Criterion, Population
    from couponmix.ope.estimators import exact_suite
    from couponmix.ope.objectives import EvaluationSample
    from couponmix.ope.streaming import population_chunk
    from simulators import get_scenario

    sc = get_scenario(scenario)
    size = 2 * BLOCK + 777
    specs = exact_suite(finite_variance=scenario == "paper_floor")
    alphas = 0.02 + 0.94 * np.random.default_rng(2).dirichlet(np.ones(3), 5)
    memory = Criterion(EvaluationSample.from_covariates(sc, population_chunk(sc, 6, size, 4 * BLOCK, 0)), specs, 5000)
    # the model's error measured where run measures it (here: on the same customers), applied chunk by chunk
    streamed = Criterion(Population(sc, size, seed=6, chunk_size=BLOCK, model_error_from=memory.sample), specs, 5000)
    rev, laws = streamed.assess(alphas)
    rev_m, laws_m = memory.assess(alphas)
    np.testing.assert_allclose(rev, rev_m, rtol=1e-12)
    np.testing.assert_allclose(streamed.target_values, memory.target_values, rtol=1e-12)
    for law, law_m in zip(laws, laws_m):
        np.testing.assert_allclose(law.per_estimator(5000), law_m.per_estimator(5000), rtol=1e-9)
        assert np.array_equal(law.choice(5000), law_m.choice(5000))
        for i in range(len(alphas)):
            a, b = law.summary(5000, i), law_m.summary(5000, i)
            assert a.estimator == b.estimator
            for key in ("rmse", "sampling_error", "computed_bias", "model_bias_bound"):
                assert getattr(a, key) == pytest.approx(getattr(b, key), rel=1e-9, abs=1e-12)
    # a different chunk size and another process give the same numbers
    other = Criterion(
        Population(sc, size, seed=6, chunk_size=2 * BLOCK, backend=LocalBackend(2), model_error_from=memory.sample), specs, 5000
    )
    np.testing.assert_allclose(
        np.column_stack([x.rmse(5000) for x in other.assess(alphas)[1]]), np.column_stack([x.rmse(5000) for x in laws]), rtol=1e-12
    )


def test_streaming_cache_respects_its_memory_budget(paper):
    from couponmix.ope.streaming import StreamingObjectives, _chunk_rows, _rows_nbytes

    spec = EstimatorSpec("clipped_ips", 10.0)
    size = 4 * BLOCK
    probe = StreamingObjectives(paper, spec, 1000, size, seed=2, chunk_size=BLOCK)
    chunk_bytes = _rows_nbytes(_chunk_rows(probe._job(np.zeros((0, 3))), 0))
    small = StreamingObjectives(paper, spec, 1000, size, seed=2, chunk_size=BLOCK, cache_bytes=3 * chunk_bytes)
    big = StreamingObjectives(paper, spec, 1000, size, seed=2, chunk_size=BLOCK, cache_bytes=5 * chunk_bytes)
    alphas = np.array([[0.2, 0.3, 0.5]])
    assert np.array_equal(small.evaluate(alphas)[2], big.evaluate(alphas)[2])
    assert not small.cached and big.cached
    assert sum(_rows_nbytes(part) for part in big._rows) <= big.cache_bytes
    with pytest.raises(CouponmixError, match="aggregate must be one of"):
        StreamingObjectives(paper, spec, 1000, size, aggregate="median")


def test_a_front_runs_on_a_streamed_population(paper):
    """pymoo's front on StreamingObjectives: the points are non-dominated and their objectives are the
    streamed ones."""
    from couponmix.decide.optimize import pareto_front
    from couponmix.ope.streaming import StreamingObjectives

    obj = StreamingObjectives(paper, EstimatorSpec("clipped_ips", 10.0), 10_000, 2 * BLOCK, seed=3, chunk_size=BLOCK)
    front = pareto_front(obj, floors=0.01, pop_size=12, generations=4, seed=0)
    assert obj.cached and len(front) >= 2
    rev, agg, _ = obj.evaluate(front.alphas)
    np.testing.assert_array_equal(rev, front.revenue)
    np.testing.assert_array_equal(agg, front.rmse)
    assert np.all(np.diff(front.revenue) > 0) and np.all(np.diff(front.rmse) > 0)


def test_dask_cluster_streaming_objectives_equal_the_local_path(paper, cluster):
    from couponmix.ope.streaming import StreamingObjectives

    alphas = np.array([[0.3, 0.3, 0.4], [0.1, 0.2, 0.7]])
    spec = EstimatorSpec("clipped_ips", 10.0)
    local = StreamingObjectives(paper, spec, 10_000, 2 * BLOCK, seed=1, chunk_size=BLOCK).evaluate(alphas)
    dask = StreamingObjectives(
        paper, spec, 10_000, 2 * BLOCK, seed=1, chunk_size=BLOCK, backend=DaskBackend(cluster.scheduler_address)
    ).evaluate(alphas)
    for a, b in zip(local, dask):
        assert np.array_equal(a, b)


def test_evaluate_cli_gives_the_streamed_criterion(capsys):
    from couponmix.ope.criterion import Criterion, Population
    from simulators import get_scenario

    mixes = ["pi1=0.5,pi2=0.25,pi3=0.25", "pi1=0.2,pi2=0.4,pi3=0.4"]
    argv = ["evaluate", "paper_floor", "--population", str(2 * BLOCK), "--chunk-size", str(BLOCK), "--n", "5000", "--seed", "3"]
    argv += ["--estimator", "dr", "--eval-size", "2000", "--workers", "1", "--json"]
    assert main(argv + sum((["--alpha", a] for a in mixes), [])) == 0
    doc = json.loads(capsys.readouterr().out)
    crit = Criterion(Population(get_scenario("paper_floor"), 2 * BLOCK, seed=3, chunk_size=BLOCK), [EstimatorSpec("dr")], 5000)
    rev, laws = crit.assess(np.array([[0.5, 0.25, 0.25], [0.2, 0.4, 0.4]]))
    per = np.column_stack([law.rmse(5000) for law in laws])
    assert doc["population"] == 2 * BLOCK and doc["n"] == 5000 and len(doc["mixtures"]) == 2
    assert [m["revenue"] for m in doc["mixtures"]] == rev.tolist()
    assert [m["ope_rmse"] for m in doc["mixtures"]] == per.max(axis=1).tolist()
    assert [[t["rmse"] for t in m["targets"].values()] for m in doc["mixtures"]] == per.tolist()
    assert all(t["estimator"] == "dr" for m in doc["mixtures"] for t in m["targets"].values())
    assert doc["mixture_evaluations_per_second"] > 0


def test_evaluate_cli_handles_the_infinite_variance_trap_and_unsupported_targets(capsys):
    base = ["evaluate", "paper", "--population", str(BLOCK), "--chunk-size", str(BLOCK), "--eval-size", "2000", "--workers", "1", "--quiet"]
    # plain IPS has infinite variance in the published setting: refused in one line
    assert main(base + ["--alpha", "pi1=0.4,pi2=0.3,pi3=0.3", "--estimator", "ips"]) == 2
    err = capsys.readouterr().err
    assert "infinite variance" in err and len(err.strip().splitlines()) == 1
    # by default run's criterion: the estimators with unclipped weights are left out, and it says why
    assert main(base + ["--alpha", "pi1=0.4,pi2=0.3,pi3=0.3"]) == 0
    out = capsys.readouterr().out
    assert "most precise" in out and "infinite here" in out and "ips " not in out.split("candidate estimators")[0]
    # without pi1 nobody with x2, x3 < 0.5 ever gets a coupon: the targets are not supported, and the
    # output says so instead of printing an RMSE as if it were precision
    assert main(base + ["--alpha", "pi2=0.5,pi3=0.5", "--estimator", "clipped_ips"]) == 0
    captured = capsys.readouterr()
    assert "unsupported" in captured.out
    assert "never show actions" in captured.err


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--alpha", "pi1=0.7,pi2=0.7"], "sum"),
        (["--alpha", "pi1=1", "--naive"], "--naive needs --estimator"),
        (["--alpha", "pi1=1", "--population", "10"], "population size"),
        (["--alpha", "pi1=1", "--chunk-size", "1000"], "multiple of 65,536"),
    ],
)
def test_evaluate_cli_errors_are_one_line(capsys, extra, message):
    assert main(["evaluate", "paper", "--eval-size", "500", "--quiet"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_every_backend_follows_the_protocol():
    """Local processes and Dask are both ``Backend``s: a name, how many pieces run at once, and an ordered map."""
    from couponmix.infra.backend import Backend

    local, dask = LocalBackend(2), DaskBackend("threads")
    assert isinstance(local, Backend) and isinstance(dask, Backend)
    assert local.parallelism == 2 and LocalBackend().parallelism == 1 and dask.parallelism is None
    seen = []
    assert local.map(abs, [-3, 2, -1], on_done=seen.append) == [3, 2, 1] == dask.map(abs, [-3, 2, -1])
    assert seen == [1, 2, 3]
    for scheduler in ("threads", "processes"):  # Dask reports each piece as it finishes, too
        seen = []
        assert DaskBackend(scheduler).map(abs, [-3, 2, -1, 4], on_done=seen.append) == [3, 2, 1, 4]
        assert seen == [1, 2, 3, 4], scheduler
