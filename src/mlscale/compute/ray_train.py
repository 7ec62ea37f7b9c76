"""Data-parallel GBDT training on Ray Train: LightGBM and XGBoost, each worker on a shard of rows.

The driver splits the training rows into one shard per worker (row ``i`` to worker
``i % workers``) and puts them in Ray's object store; every worker also gets the whole
validation set, so its per-iteration loss is the same on every worker. Inside each worker the
model's own adapter trains as it does locally, with the library's distributed mode switched on:
LightGBM's data-parallel tree learner over the network Ray Train sets up
(``ray.train.lightgbm.get_network_params``), XGBoost's collective, which ``XGBoostTrainer``
opens around the training function. The result is the same adapter type, so the model saves,
loads and serves as any other version.

Rank 0 reports once, at the end, with the model and its validation curve in the checkpoint.
Ray Train's per-round report callback would make every boosting round wait for the
controller's poll (about 2 s a tree), and this training cannot be stopped early or pruned
mid-way: ``on_iteration`` is told of each round's loss after training, for progress only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mlscale.compute.ray_errors import mlscale_cause
from mlscale.errors import UserError
from mlscale.models.base import BaseModel, IterationCallback, adapter_class

#: Models that train data-parallel on Ray.
DISTRIBUTED_MODELS = ("lightgbm", "xgboost")

_MODEL_FILE = "model.bin"
_CURVES_FILE = "curves.json"


def check_distributed(model: str, workers: int = 2) -> None:
    """A UserError unless ``model`` trains on Ray with ``workers`` workers."""
    if model not in DISTRIBUTED_MODELS:
        raise UserError(
            f"model {model!r} does not train on Ray; --backend ray trains "
            f"{' and '.join(DISTRIBUTED_MODELS)} (or use --backend local)"
        )
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")


def fit_distributed(
    adapter: BaseModel,
    X: np.ndarray,
    y: np.ndarray,
    *,
    num_classes: int,
    seed: int,
    valid: tuple[np.ndarray, np.ndarray] | None = None,
    on_iteration: IterationCallback | None = None,
    init_from: BaseModel | None = None,
    workers: int = 2,
    address: str | None = None,
    storage: Path | None = None,
) -> BaseModel:
    """``adapter.fit(X, y, ...)`` data-parallel on ``workers`` Ray Train workers; returns ``adapter``.

    Takes the arguments of :meth:`BaseModel.fit`, plus the number of workers, the Ray address
    (see :func:`mlscale.compute.ray.connect`) and a folder for Ray Train's run state and the
    checkpoint the model comes back in (default: a temporary folder; on a cluster of several
    machines it must be one they all mount, such as the workspace's). Afterwards
    ``adapter.booster_`` is the trained booster and ``adapter.curves_`` its validation loss per
    round.
    """
    from mlscale.compute.ray import connect

    check_distributed(adapter.flavor, workers)
    if len(y) < workers:
        raise UserError(f"{len(y)} training rows cannot be shared by {workers} workers")
    ray = connect(address, num_cpus=max(os.cpu_count() or 1, workers))
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < workers:
        # Ray Train would wait for the missing CPUs for ever.
        raise UserError(f"--workers {workers} needs {workers} CPUs; the Ray cluster has {cpus}")
    config = {
        "flavor": adapter.flavor,
        "task": adapter.task,
        "categorical": adapter.categorical,
        "params": adapter.params,
        "num_classes": num_classes,
        "seed": seed,
        "shards": [ray.put((X[i::workers], y[i::workers])) for i in range(workers)],
        "valid": None if valid is None else ray.put(valid),
        "init": None if init_from is None else init_from.save(),
    }
    model_bytes, curves = _run(ray, adapter.flavor, config, workers, storage)
    fitted = type(adapter).load(model_bytes, task=adapter.task, categorical=adapter.categorical)
    adapter.booster_ = fitted.booster_  # type: ignore[attr-defined]
    adapter.curves_ = curves
    if on_iteration is not None:
        for step, loss in enumerate(curves.get("valid_loss", []), start=1):
            on_iteration(step, {"valid_loss": loss})
    return adapter


def _run(
    ray: Any, flavor: str, config: dict[str, Any], workers: int, storage: Path | None
) -> tuple[bytes, dict[str, list[float]]]:
    """Run the Ray Train job; return rank 0's model bytes and curves."""
    from ray.train import RunConfig, ScalingConfig

    if flavor == "lightgbm":
        from ray.train.lightgbm import LightGBMTrainer as Trainer
    else:
        from ray.train.xgboost import XGBoostTrainer as Trainer

    # Ray Train keeps its run state and the checkpoint under storage_path: a folder of ours,
    # removed afterwards, instead of ~/ray_results.
    with tempfile.TemporaryDirectory(prefix="mlscale-ray-train-", dir=storage) as folder:
        trainer = Trainer(
            _train_loop,
            train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=workers),
            run_config=RunConfig(storage_path=folder, name=f"mlscale-{flavor}"),
        )
        try:
            result = trainer.fit()
        except ray.train.TrainingFailedError as exc:
            cause = mlscale_cause(exc)
            if cause is None:
                raise
            raise cause from None
        with result.checkpoint.as_directory() as checkpoint:
            model_bytes = Path(checkpoint, _MODEL_FILE).read_bytes()
            curves = json.loads(Path(checkpoint, _CURVES_FILE).read_text())
    return model_bytes, curves


def _train_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: fit on this worker's shard, rank 0 reports the model at the end."""
    import ray
    import ray.train

    rank = ray.train.get_context().get_world_rank()
    X, y = ray.get(config["shards"][rank])
    valid = None if config["valid"] is None else ray.get(config["valid"])
    cls = adapter_class(config["flavor"])
    params = dict(config["params"])
    if config["flavor"] == "lightgbm":
        from ray.train.lightgbm import get_network_params

        # "data": each worker builds histograms of its own rows and they are summed over the
        # network; pre_partition: the rows are already split (LightGBM would split them again).
        params |= get_network_params() | {"tree_learner": "data", "pre_partition": True}
    adapter = cls(task=config["task"], categorical=config["categorical"], params=params)
    init = config["init"]
    init_from = None if init is None else cls.load(init, **_kinds(config))
    adapter.fit(
        X,
        y,
        num_classes=config["num_classes"],
        seed=config["seed"],
        valid=valid,
        init_from=init_from,
    )
    rounds = len(adapter.curves_.get("valid_loss", []))
    if rank != 0:
        ray.train.report({"rounds": rounds}, checkpoint=None)
        return
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, _MODEL_FILE).write_bytes(adapter.save())
        Path(folder, _CURVES_FILE).write_text(json.dumps(adapter.curves_))
        checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report({"rounds": rounds}, checkpoint=checkpoint)


def _kinds(config: dict[str, Any]) -> dict[str, Any]:
    return {"task": config["task"], "categorical": config["categorical"]}
