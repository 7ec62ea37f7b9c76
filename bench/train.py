"""Training and tuning (issue 4): mlscale against plain LightGBM and plain Optuna, same rows.

On a generated flights-like dataset (300k rows, 13 features, 3 of them categorical; no download):

(a) overhead: ``ws.train`` against a plain ``lightgbm.train`` with the same parameters on the same
    rows: fit-only (fit + score the holdout) and end to end (from the Parquet file to a score);
(b) tuning: plain Optuna (TPE, the same search space and trial budget, ``n_jobs`` 1 and 2) against
    ``ws.tune`` with pruning, sequential and parallel: wall time, best validation AUC, and the time
    mlscale takes to reach plain Optuna's best (within 0.002 AUC);
(c) pruning against no pruning, both through ``ws.tune``.

Every contender scores the same validation rows (the training side of the trainer's holdout,
split again 80/20), so the AUCs are comparable.

    python bench/train.py --rows 300000 --trials 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score

from mlscale import Workspace
from mlscale.models.lightgbm import LightGBMModel
from mlscale.train.prepare import prepare
from mlscale.train.splits import holdout_split
from mlscale.train.trainer import CURVE_ROWS
from mlscale.tune.space import Space, parse_space
from mlscale.tune.storage import study_storage

TARGET = "delayed"
SEED = 42
TOLERANCE = 0.002  # AUC
#: The default LightGBM space with fewer rounds and leaves, so that the whole bench fits in about
#: ten minutes on two cores; plain Optuna searches the very same space.
BENCH_SPACE = """\
num_boost_round: {low: 50, high: 300, log: true}
num_leaves: {low: 8, high: 128, log: true}
"""


# -- data -------------------------------------------------------------------------------------
def make_flights(rows: int, seed: int = 7) -> pa.Table:
    """Flights with a departure-delay label: 10 numeric and 3 categorical features, deterministic.

    The label mixes smooth effects (hour, season, distance), per-category effects (carrier,
    origin, destination) and interactions (bad weather in winter, a late incoming aircraft in the
    evening), so that tree depth, learning rate and rounds matter when tuning.
    """
    rng = np.random.default_rng(seed)
    n = rows
    n_carriers, n_airports = 18, 120
    carrier_p = 1.0 / np.arange(1, n_carriers + 1) ** 0.8
    airport_p = 1.0 / np.arange(1, n_airports + 1) ** 1.1
    carrier = rng.choice(n_carriers, n, p=carrier_p / carrier_p.sum())
    origin = rng.choice(n_airports, n, p=airport_p / airport_p.sum())
    dest = (origin + rng.choice(n_airports - 1, n, p=airport_p[1:] / airport_p[1:].sum()) + 1) % (
        n_airports
    )
    month = rng.integers(1, 13, n)
    day_of_month = rng.integers(1, 29, n)
    day_of_week = rng.integers(1, 8, n)
    dep_hour = np.clip(rng.normal(13.5, 4.5, n), 5.0, 23.9)
    pair = (origin * 7919 + dest * 104_729) % 1000 / 1000.0
    distance = 120.0 + 2_600.0 * pair**1.5 + rng.normal(0, 30, n)
    winter = np.isin(month, [12, 1, 2]).astype(float)
    summer = np.isin(month, [6, 7, 8]).astype(float)
    weather = rng.gamma(1.5 + 1.5 * winter + 0.8 * summer, 1.0, n)
    taxi_out = rng.gamma(4.0, 4.0, n) + 3.0 * (origin < 10)
    load_factor = rng.beta(8, 2, n)
    aircraft_age = rng.uniform(0, 30, n)
    prior_delay = rng.exponential(12.0, n) * (rng.random(n) < 0.4)
    prior_delay[rng.random(n) < 0.05] = np.nan  # unknown incoming aircraft

    effects = np.random.default_rng(seed + 1)
    carrier_eff = effects.normal(0, 0.45, n_carriers)
    origin_eff = effects.normal(0, 0.35, n_airports)
    dest_eff = effects.normal(0, 0.25, n_airports)
    late = np.nan_to_num(prior_delay, nan=10.0)
    logit = (
        -2.3
        + 0.11 * (dep_hour - 12.0)
        + 0.5 * np.sin((month - 1) / 12.0 * 2 * np.pi + 1.0)
        + carrier_eff[carrier]
        + origin_eff[origin]
        + dest_eff[dest]
        + 0.45 * weather * winter
        + 0.25 * np.log1p(late)
        + 1.1 * (late > 30) * (dep_hour > 17)
        + 0.02 * (taxi_out - 16.0)
        + 0.9 * (load_factor > 0.93) * (day_of_week >= 5)
        - 0.3 * (distance > 1500) * (dep_hour < 9)
        + 0.004 * aircraft_age
        + 0.15 * np.cos(day_of_month / 28.0 * 2 * np.pi)
    )
    delayed = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    return pa.table(
        {
            "month": month,
            "day_of_month": day_of_month,
            "day_of_week": day_of_week,
            "dep_hour": np.round(dep_hour, 2),
            "carrier": pa.array([f"C{c:02d}" for c in carrier]),
            "origin": pa.array([f"A{a:03d}" for a in origin]),
            "dest": pa.array([f"A{a:03d}" for a in dest]),
            "distance": np.round(distance, 1),
            "taxi_out": np.round(taxi_out, 1),
            "weather": np.round(weather, 3),
            "load_factor": np.round(load_factor, 3),
            "aircraft_age": np.round(aircraft_age, 1),
            "prior_delay": pa.array(np.round(prior_delay, 1), from_pandas=True),
            TARGET: delayed.astype(np.int64),
        }
    )


# -- (a) overhead ------------------------------------------------------------------------------
def lgb_params(threads: int = 0) -> tuple[dict[str, Any], int]:
    """What the mlscale adapter passes LightGBM for its defaults, and its number of rounds."""
    model = LightGBMModel(task="binary", categorical=[])
    params = model.effective_params()
    rounds = int(params.pop("num_boost_round"))
    params |= {
        "objective": "binary",
        "metric": "binary_logloss",
        "seed": SEED,
        "deterministic": True,
        "verbose": -1,
    }
    if threads:
        params["num_threads"] = threads
    return params, rounds


def plain_fit(
    X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, cat: list[int], valid: bool
) -> float:
    """Fit and score the holdout; ``valid``: also track the holdout loss at every round on the
    rows the trainer tracks it on (at most ``CURVE_ROWS``, picked as it picks them)."""
    params, rounds = lgb_params()
    data = lgb.Dataset(X, label=y, categorical_feature=cat)
    valid_sets = None
    if valid:
        curve = np.arange(len(yt))
        if len(curve) > CURVE_ROWS:
            pick = np.random.default_rng(SEED).choice(len(curve), CURVE_ROWS, replace=False)
            curve = curve[np.sort(pick)]
        valid_sets = [data.create_valid(Xt[curve], label=yt[curve])]
    booster = lgb.train(params, data, rounds, valid_sets=valid_sets)
    return float(roc_auc_score(yt, booster.predict(Xt)))


def plain_end_to_end(path: Path, test_rows: np.ndarray) -> float:
    """Parquet file in, holdout AUC out, as a script would do it with pandas and LightGBM."""
    frame = pq.read_table(path).to_pandas()
    for column in ("carrier", "origin", "dest"):
        frame[column] = frame[column].astype("category")
    y = frame.pop(TARGET).to_numpy()
    test = np.zeros(len(frame), dtype=bool)
    test[test_rows] = True
    params, rounds = lgb_params()
    booster = lgb.train(params, lgb.Dataset(frame[~test], label=y[~test]), rounds)
    return float(roc_auc_score(y[test], booster.predict(frame[test])))


def bench_overhead(ws: Workspace, ref: str, path: Path, repeats: int) -> dict[str, Any]:
    """Each contender ``repeats`` times, interleaved; the minimum is the least disturbed run."""
    prepared = prepare(ws, _ref(ref), target=TARGET, model="lightgbm")
    split = holdout_split(prepared.y, test_size=0.2, seed=SEED, stratify=True)
    X, y, cat = prepared.X, prepared.y, prepared.signature.categorical_indices
    Xtr, ytr, Xte, yte = X[split.train], y[split.train], X[split.test], y[split.test]
    times: dict[str, list[float]] = {
        "plain fit": [],
        "plain fit + loss curve": [],
        "ws.train fit": [],
        "plain end-to-end": [],
        "ws.train end-to-end": [],
    }
    aucs: dict[str, float] = {}
    for i in range(repeats):
        for valid, key in ((False, "plain fit"), (True, "plain fit + loss curve")):
            started = time.perf_counter()
            aucs[key] = plain_fit(Xtr, ytr, Xte, yte, cat, valid)
            times[key].append(time.perf_counter() - started)

        started = time.perf_counter()
        aucs["plain end-to-end"] = plain_end_to_end(path, split.test)
        times["plain end-to-end"].append(time.perf_counter() - started)

        started = time.perf_counter()
        result = ws.train(ref, target=TARGET, name=f"overhead{i}", seed=SEED)
        times["ws.train end-to-end"].append(time.perf_counter() - started)
        times["ws.train fit"].append(result.run.env["fit_seconds"])
        aucs["ws.train"] = result.metrics["auc"]
        print(
            "  overhead repeat "
            + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items())
            + f"; cpu pressure {_pressure():.0%}",
            flush=True,
        )
    return {
        "min_s": {k: min(v) for k, v in times.items()},
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "auc": aucs,
        "rows_train": len(ytr),
    }


# -- (b), (c) tuning ---------------------------------------------------------------------------
def tuning_rows(ws: Workspace, ref: str) -> tuple[np.ndarray, ...]:
    """The rows ``ws.tune`` fits and scores trials on (same seed, same splits)."""
    prepared = prepare(ws, _ref(ref), target=TARGET, model="lightgbm")
    y = prepared.y
    outer = holdout_split(y, test_size=0.2, seed=SEED, stratify=True)
    inner = holdout_split(y[outer.train], test_size=0.2, seed=SEED, stratify=True)
    fit, valid = outer.train[inner.train], outer.train[inner.test]
    return (
        prepared.X[fit],
        y[fit],
        prepared.X[valid],
        y[valid],
        prepared.signature.categorical_indices,
    )


def plain_optuna(
    rows: tuple[np.ndarray, ...], space: Space, trials: int, n_jobs: int
) -> dict[str, Any]:
    """Plain Optuna as its documentation shows it: TPE, the same space, no pruning."""
    X, y, Xv, yv, cat = rows
    threads = max(1, 2 // n_jobs)

    def objective(trial: optuna.Trial) -> float:
        params = {name: dim.suggest(trial) for name, dim in space.dims.items()}
        rounds = params.pop("num_boost_round")
        base, _ = lgb_params(threads)
        booster = lgb.train(base | params, lgb.Dataset(X, label=y, categorical_feature=cat), rounds)
        return float(roc_auc_score(yv, booster.predict(Xv)))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    started_at = dt.datetime.now()
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=n_jobs)
    wall = time.perf_counter() - started
    return {
        "wall": wall,
        "best": study.best_value,
        "curve": _curve(study, started_at),
        "pressure": _pressure(),
    }


def mlscale_tune(ws: Workspace, ref: str, trials: int, **options: Any) -> dict[str, Any]:
    started_at = dt.datetime.now()
    started = time.perf_counter()
    result = ws.tune(ref, target=TARGET, trials=trials, seed=SEED, **options)
    wall = time.perf_counter() - started
    name = result.study
    study = optuna.load_study(study_name=name, storage=study_storage(ws, name).open())
    return {
        "wall": wall,
        "best": result.best_value,
        "curve": _curve(study, started_at),
        "pruned": result.pruned,
        "holdout_auc": result.model.metrics["auc"],
        "search_s": (max(t.datetime_complete for t in study.trials) - started_at).total_seconds(),
        "pressure": _pressure(),
    }


def _curve(study: optuna.Study, started_at: dt.datetime) -> list[tuple[float, float]]:
    """(seconds since the start, best value so far) at each completed trial."""
    points, best = [], -np.inf
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    for t in sorted(done, key=lambda t: t.datetime_complete):
        best = max(best, float(t.value))
        points.append(((t.datetime_complete - started_at).total_seconds(), best))
    return points


def reach(curve: list[tuple[float, float]], target: float) -> float | None:
    """When the best so far first came within TOLERANCE of ``target`` (None: never)."""
    return next((t for t, best in curve if best >= target - TOLERANCE), None)


_last_pressure: list[tuple[float, float]] = []


def _pressure() -> float:
    """Share of the time since the last call that some task here waited for a CPU (Linux PSI):
    how disturbed a measurement was by other work on the machine."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return float("nan")
    stalled = float(line.rsplit("total=", 1)[1]) / 1e6
    now = time.monotonic()
    share = float("nan")
    if _last_pressure:
        before_stalled, before = _last_pressure[-1]
        share = (stalled - before_stalled) / max(now - before, 1e-9)
    _last_pressure.append((stalled, now))
    return share


def _ref(ref: str) -> Any:
    from mlscale.refs import Ref

    return Ref.parse(ref)


# -- main ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="overhead measurements (median)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-tuning", action="store_true")
    parser.add_argument("--only", help="tuning contenders to run, separated by semicolons")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    root = Path(tempfile.mkdtemp(prefix="mlscale-bench-train-"))
    path = root / "flights.parquet"
    started = time.perf_counter()
    pq.write_table(make_flights(args.rows), path)
    ws = Workspace.init(root / "ws")
    ws.ingest(path, name="flights")
    ref = "flights@1"
    print(f"data: {args.rows:,} rows in {time.perf_counter() - started:.1f}s ({root})", flush=True)

    if not args.skip_overhead:
        _pressure()
        over = bench_overhead(ws, ref, path, args.repeats)
        print(f"\n(a) overhead: {over['rows_train']:,} training rows, {args.repeats} runs each")
        print(f"  {'contender':26} {'min':>7} {'median':>7}")
        for key in over["min_s"]:
            print(f"  {key:26} {over['min_s'][key]:6.2f}s {over['median_s'][key]:6.2f}s")
        for stat in ("min_s", "median_s"):
            m = over[stat]
            print(
                f"  ratios ({stat[:-2]}): fit-only {m['ws.train fit'] / m['plain fit']:.3f} "
                f"(vs plain with the same loss curve "
                f"{m['ws.train fit'] / m['plain fit + loss curve']:.3f}), end-to-end "
                f"{m['ws.train end-to-end'] / m['plain end-to-end']:.3f}"
            )
        print(f"  holdout AUC {over['auc']}", flush=True)

    if args.skip_tuning:
        return
    rows = tuning_rows(ws, ref)
    space = parse_space(BENCH_SPACE, "lightgbm", LightGBMModel)
    print(f"\ntuning: {len(rows[1]):,} fit rows, {len(rows[3]):,} validation rows, "
          f"{args.trials} trials", flush=True)  # fmt: skip

    def tune(pruner: str, **options: Any) -> dict[str, Any]:
        return mlscale_tune(ws, ref, args.trials, pruner=pruner, space=space, **options)

    # Pairs that are compared run one after the other, so that they see similar machine load.
    contenders: dict[str, Callable[[], dict[str, Any]]] = {
        "optuna n_jobs=1": lambda: plain_optuna(rows, space, args.trials, 1),
        "mlscale no pruning": lambda: tune("none"),
        "mlscale median": lambda: tune("median"),
        "mlscale hyperband": lambda: tune("hyperband", study="hyperband-1"),
        "optuna n_jobs=2": lambda: plain_optuna(rows, space, args.trials, 2),
        "mlscale median, parallel 2": lambda: tune("median", parallel=2, study="parallel"),
        "mlscale hyperband, parallel 2": lambda: tune("hyperband", parallel=2, study="hyperband"),
    }
    chosen = [c.strip() for c in args.only.split(";")] if args.only else list(contenders)
    results: dict[str, dict[str, Any]] = {}
    for name in chosen:
        _pressure()
        results[name] = contenders[name]()
        r = results[name]
        print(
            f"  {name}: {r['wall']:.1f}s, best {r['best']:.4f}, cpu pressure {r['pressure']:.0%}",
            flush=True,
        )

    plain = {k: v for k, v in results.items() if k.startswith("optuna")}
    if plain:
        best_plain_name = min(plain, key=lambda k: plain[k]["wall"])
        base = plain[best_plain_name]
        print(f"\n(b) against plain Optuna at its best n_jobs ({best_plain_name}: "
              f"{base['wall']:.1f}s, best AUC {base['best']:.4f})")  # fmt: skip
        _table(results, base)
        print("  targets: wall <= 0.5 of plain Optuna's, best AUC within 0.002 of its best")
        for name, r in results.items():
            if name.startswith("mlscale") and name != "mlscale no pruning":
                _verdict(name, r, base)
    if "mlscale no pruning" in results:
        base = results["mlscale no pruning"]
        print(
            f"\n(c) against mlscale without pruning ({base['wall']:.1f}s, best {base['best']:.4f})"
        )
        _table({k: v for k, v in results.items() if k.startswith("mlscale")}, base)
        print("  target: pruning alone, wall <= 0.5 of no pruning, best AUC within 0.002")
        for name in ("mlscale median", "mlscale hyperband"):
            if name in results:
                _verdict(name, results[name], base)


def _verdict(name: str, r: dict[str, Any], base: dict[str, Any]) -> None:
    ratio, delta = r["wall"] / base["wall"], r["best"] - base["best"]
    met = ratio <= 0.5 and delta >= -TOLERANCE
    print(f"  {name}: wall ratio {ratio:.2f}, AUC {delta:+.4f}: {'met' if met else 'MISSED'}")


def _table(results: dict[str, dict[str, Any]], base: dict[str, Any]) -> None:
    print(f"  {'contender':32} {'wall':>7} {'ratio':>6} {'best AUC':>9} {'delta':>7} "
          f"{'reach':>7} {'ratio':>6} {'pruned':>6}")  # fmt: skip
    for name, r in results.items():
        t = reach(r["curve"], base["best"])
        reach_s = "never" if t is None else f"{t:.1f}s"
        reach_ratio = "-" if t is None else f"{t / base['wall']:.2f}"
        print(
            f"  {name:32} {r['wall']:6.1f}s {r['wall'] / base['wall']:6.2f} {r['best']:9.4f} "
            f"{r['best'] - base['best']:+7.4f} {reach_s:>7} {reach_ratio:>6} "
            f"{r.get('pruned', '-')!s:>6}"
        )


if __name__ == "__main__":
    main()
