"""Reading runs for people: find one by an id prefix, pick its key figures, line several up.

The CLI (``mlscale runs``) and the pages share these, so a table and a page say the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from mlscale.errors import NotFoundError, UserError
from mlscale.reports.html import text

if TYPE_CHECKING:
    from mlscale.store.artifacts import ArtifactStore
    from mlscale.store.metadata import BaseMetadataStore
    from mlscale.store.records import Run

#: Metrics shown first, in this order, when a run has them (the rest follow by name).
PREFERRED_METRICS = ("auc", "accuracy", "log_loss", "rmse", "mae", "r2")
#: Metrics where a smaller value is the better one; every other metric is better when larger.
LOWER_IS_BETTER = frozenset(
    {"log_loss", "rmse", "mae", "mse", "brier", "ece", "loss", "valid_loss", "error"}
)
SHORT_ID = 8
_SCAN = 1_000_000  # the store has no prefix query: a prefix is matched against every run id


def find_run(store: BaseMetadataStore, id_or_prefix: str) -> Run:
    """The run whose id is ``id_or_prefix`` or the one run whose id starts with it (like git).

    An unknown or ambiguous prefix is a :class:`NotFoundError` / :class:`UserError` that lists
    the candidates.
    """
    wanted = id_or_prefix.strip().lower()
    if not wanted:
        raise UserError("expected a run id or the start of one, got an empty string")
    try:
        return store.get_run(wanted)
    except NotFoundError:
        pass
    runs = store.list_runs(_SCAN)
    matches = [r for r in runs if r.id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        newest = ", ".join(short_id(r.id) for r in runs[:5])
        known = f"newest runs: {newest}" if runs else "no runs yet; train a model first"
        raise NotFoundError(f"no run id starts with {id_or_prefix!r} ({known})")
    listed = "; ".join(f"{r.id} ({describe(r)})" for r in matches[:10])
    more = f" and {len(matches) - 10} more" if len(matches) > 10 else ""
    raise UserError(
        f"run prefix {id_or_prefix!r} is ambiguous: {len(matches)} runs match: {listed}{more}; "
        "give more characters"
    )


def top_level_runs(store: BaseMetadataStore, limit: int, kind: str | None = None) -> list[Run]:
    """The newest ``limit`` runs that are not trials of a study (unless ``kind`` asks for them)."""
    if kind is not None:
        return store.list_runs(limit, kind=kind)
    asked = limit
    while True:
        runs = store.list_runs(asked)
        kept = [r for r in runs if r.parent_id is None]
        if len(kept) >= limit or len(runs) < asked:
            return kept[:limit]
        asked *= 4  # trials crowded the page out: look further back


def trials(store: BaseMetadataStore, run: Run) -> list[Run]:
    """The child runs of ``run`` (a tuning study's trials), oldest first."""
    return list(reversed(store.list_runs(_SCAN, parent_id=run.id)))


def short_id(run_id: str) -> str:
    """
    >>> short_id("3f2a9c1be07d4c0e")
    '3f2a9c1b'
    """
    return run_id[:SHORT_ID]


def describe(run: Run) -> str:
    """A few words that tell runs apart: kind, model and dataset.

    >>> from datetime import datetime
    >>> from mlscale.store.records import Run
    >>> r = Run("ab", "train", "finished", {"model": "lightgbm"}, {}, "loans@1", {},
    ...         datetime(2025, 1, 1), None, None)
    >>> describe(r)
    'train lightgbm on loans@1'
    """
    words = [run.kind]
    if run.params.get("model"):
        words.append(str(run.params["model"]))
    if run.dataset:
        words.append(f"on {run.dataset}")
    return " ".join(words)


def ordered_metrics(names: Iterable[str]) -> list[str]:
    """Metric names, the preferred ones first and each ``<m>_std`` right after its ``<m>``.

    >>> ordered_metrics(["r2", "zeta", "auc_std", "auc", "rmse"])
    ['auc', 'auc_std', 'rmse', 'r2', 'zeta']
    """
    names = set(names)
    base = sorted(
        (n for n in names if not (n.endswith("_std") and n[:-4] in names)),
        key=lambda n: (PREFERRED_METRICS.index(n) if n in PREFERRED_METRICS else 99, n),
    )
    out = []
    for n in base:
        out.append(n)
        if f"{n}_std" in names:
            out.append(f"{n}_std")
    return out


def key_metrics(run: Run, count: int = 3) -> list[tuple[str, float]]:
    """The run's ``count`` headline metrics (no spreads), for one line of a table."""
    names = [n for n in ordered_metrics(run.metrics) if not n.endswith("_std")]
    return [(n, run.metrics[n]) for n in names[:count]]


def better(metric: str, a: float, b: float) -> bool:
    """Whether ``a`` beats ``b`` on ``metric``.

    >>> better("auc", 0.9, 0.8), better("rmse", 0.9, 0.8)
    (True, False)
    """
    return a < b if metric in LOWER_IS_BETTER else a > b


def flat_params(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys; lists stay whole (a feature list is one value).

    >>> flat_params({"model": "lightgbm", "hyperparameters": {"num_leaves": 31}})
    {'model': 'lightgbm', 'hyperparameters.num_leaves': 31}
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            out |= flat_params(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def param_rows(runs: Sequence[Run]) -> list[tuple[str, list[Any], bool]]:
    """``(param, value per run, differs)`` over the union of the runs' params, in first-seen order.

    A param a run lacks is None for it.
    """
    flat = [flat_params(r.params) for r in runs]
    keys: dict[str, None] = {}
    for f in flat:
        keys |= dict.fromkeys(f)
    rows = []
    for key in keys:
        values = [f.get(key) for f in flat]
        differs = len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1
        rows.append((key, values, differs))
    return rows


def environment_rows(run: Run) -> list[tuple[str, str]]:
    """What the run ran on, as label/value text: Python, host, CPU, GPU, git, memory and time."""
    env = run.env
    rows: list[tuple[str, str]] = []
    if env.get("python"):
        rows.append(("python", str(env["python"])))
    if env.get("platform"):
        rows.append(("platform", str(env["platform"])))
    if env.get("host"):
        rows.append(("host", str(env["host"])))
    if env.get("cpus") or env.get("cpu"):
        cpu = env.get("cpu") or ""
        rows.append(("cpu", f"{env.get('cpus') or '?'} × {cpu}".strip(" ×")))
    if "gpus" in env:
        rows.append(("gpus", ", ".join(env["gpus"]) or "none"))
    if "git" in env:
        git = env["git"]
        rows.append(
            (
                "git",
                "not a git checkout"
                if not git
                else git["commit"] + (" (dirty)" if git.get("dirty") else ""),
            )
        )
    if env.get("peak_rss_mib") is not None:
        rows.append(("peak memory", f"{env['peak_rss_mib']:,.0f} MiB"))
    if env.get("fit_seconds") is not None:
        rows.append(("fit time", seconds(env["fit_seconds"])))
    if run.duration_s is not None:
        rows.append(("wall time", seconds(run.duration_s)))
    if env.get("packages"):
        rows.append(("packages", ", ".join(f"{k} {v}" for k, v in env["packages"].items())))
    known = {"python", "platform", "host", "cpus", "cpu", "gpus", "git", "peak_rss_mib"}
    known |= {"fit_seconds", "packages", "model_version"}
    rows += [(k, text(v)) for k, v in env.items() if k not in known]
    return rows


def seconds(value: float | None) -> str:
    """
    >>> seconds(0.42), seconds(75.0), seconds(7384.0), seconds(None)
    ('0.42s', '1m 15s', '2h 03m', '')
    """
    if value is None:
        return ""
    if value < 60:
        return f"{value:.2f}s" if value < 10 else f"{value:.1f}s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def load_json(artifacts: ArtifactStore, run: Run, name: str) -> Any | None:
    """The run's JSON artifact ``name`` (verified by hash), or None when the run has none."""
    sha = run.artifacts.get(name)
    if sha is None:
        return None
    return json.loads(artifacts.get_bytes(sha))


def loss_curves(curves: dict[str, Any] | None) -> list[tuple[str, list[float]]]:
    """``(label, valid_loss per iteration)`` from a run's ``curves`` artifact (one per fold).

    >>> loss_curves({"valid_loss": [0.6, 0.5]})
    [('valid_loss', [0.6, 0.5])]
    >>> loss_curves({"folds": [{"valid_loss": [0.6]}, {}, {"valid_loss": [0.7]}]})
    [('fold 1', [0.6]), ('fold 3', [0.7])]
    """
    if not curves:
        return []
    if "folds" in curves:
        return [
            (f"fold {i}", list(fold["valid_loss"]))
            for i, fold in enumerate(curves["folds"], start=1)
            if fold and fold.get("valid_loss")
        ]
    return [(k, list(v)) for k, v in curves.items() if isinstance(v, list) and v]
