"""The workspace: the one entry point the CLI, the server and the Python API go through."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlscale.config import CONFIG_FILE, DEFAULT_CONFIG, STATE_DIR, Config
from mlscale.errors import UserError, WorkspaceNotFoundError
from mlscale.refs import Ref, check_name

if TYPE_CHECKING:
    from mlscale.data.ingest import IngestResult
    from mlscale.models.predictor import Predictor
    from mlscale.monitor.drift import DriftReport
    from mlscale.monitor.retrain import RetrainDecision
    from mlscale.registry.promote import Promotion
    from mlscale.store.artifacts import ArtifactStore
    from mlscale.store.metadata import BaseMetadataStore
    from mlscale.store.records import AliasEvent, DatasetVersion, ModelVersion, Run
    from mlscale.train.trainer import TrainResult
    from mlscale.tune.tuner import TuneResult


class Workspace:
    """A folder with ``mlscale.toml``: its metadata store, artifact store and the verbs on them.

    >>> import tempfile
    >>> ws = Workspace.init(tempfile.mkdtemp())
    >>> ws.models()
    []
    """

    def __init__(self, config: Config) -> None:
        self.config = config

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".") -> Workspace:
        """Create (or reopen) a workspace in ``path``."""
        root = Path(path).resolve()
        if root.exists() and not root.is_dir():
            raise UserError(f"cannot create a workspace in {root}: it is a file")
        (root / STATE_DIR).mkdir(parents=True, exist_ok=True)
        config_path = root / CONFIG_FILE
        if not config_path.exists():
            tmp = config_path.with_suffix(".toml.tmp")
            tmp.write_text(DEFAULT_CONFIG, encoding="utf-8")
            os.replace(tmp, config_path)
        workspace = cls(Config.load(root))
        workspace.metadata  # noqa: B018 - creates the database and runs migrations now
        return workspace

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        """Open the workspace at ``path``, ``$MLSCALE_WORKSPACE``, or the nearest parent of cwd."""
        if path is None and os.environ.get("MLSCALE_WORKSPACE"):
            path = os.environ["MLSCALE_WORKSPACE"]
        if path is not None:
            root = Path(path).resolve()
            if not (root / CONFIG_FILE).is_file():
                raise WorkspaceNotFoundError(
                    f"{root} is not an mlscale workspace (no {CONFIG_FILE}); "
                    f"create one with: mlscale init {path}"
                )
            return cls(Config.load(root))
        start = Path.cwd().resolve()
        for candidate in (start, *start.parents):
            if (candidate / CONFIG_FILE).is_file():
                return cls(Config.load(candidate))
        raise WorkspaceNotFoundError(
            f"no mlscale workspace in {start} or its parents (no {CONFIG_FILE}); "
            "create one with `mlscale init`, or pass --workspace DIR"
        )

    @property
    def root(self) -> Path:
        return self.config.root

    @cached_property
    def metadata(self) -> BaseMetadataStore:
        from mlscale.store.sql import SqlMetadataStore

        return SqlMetadataStore(self.config.db_url)

    @cached_property
    def artifacts(self) -> ArtifactStore:
        from mlscale.store.artifacts import ArtifactStore

        return ArtifactStore(self.config.artifacts)

    def scratch_dir(self) -> Path:
        """A folder for staging files before they are committed to the artifact store."""
        path = self.root / STATE_DIR / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- data -------------------------------------------------------------------------------
    def ingest(self, source: Any, *, name: str, **options: Any) -> IngestResult:
        """Read a file, folder or source into a new version of dataset ``name`` (or the same one)."""
        from mlscale.data.ingest import ingest

        return ingest(self, source, name=check_name(name, "dataset name"), **options)

    def dataset(self, ref: str) -> DatasetVersion:
        return self.metadata.get_dataset_version(Ref.parse(ref))

    def datasets(self) -> list[DatasetVersion]:
        return self.metadata.list_datasets()

    # -- models -----------------------------------------------------------------------------
    def train(self, dataset: str, *, target: str, **options: Any) -> TrainResult:
        """Fit a model on ``dataset`` (``name@version``), evaluate it and register a version."""
        from mlscale.train.trainer import train

        return train(self, Ref.parse(dataset), target=target, **self._compute(options))

    def run(self, id_or_prefix: str) -> Run:
        """The run with this id, or the one run whose id starts with it (like a git commit)."""
        from mlscale.reports.runs import find_run

        return find_run(self.metadata, id_or_prefix)

    def runs(self, limit: int = 50, *, kind: str | None = None) -> list[Run]:
        """The newest runs, newest first; a study's trials only with ``kind="trial"``."""
        from mlscale.reports.runs import top_level_runs

        return top_level_runs(self.metadata, limit, kind)

    def tune(self, dataset: str, *, target: str, **options: Any) -> TuneResult:
        """Search hyperparameters on ``dataset`` and register the best trial as a model version.

        Options: ``model``, ``trials``, ``parallel``, ``timeout``, ``sampler``, ``pruner``,
        ``space`` (a YAML file), ``study``, ``metric``, ``seed``, ``name``, ``backend``,
        ``address`` (see :func:`mlscale.tune.tuner.tune`). Interrupted, the same call resumes.
        """
        from mlscale.tune.tuner import tune

        return tune(self, Ref.parse(dataset), target=target, **self._compute(options))

    def model(self, ref: str) -> ModelVersion:
        return self.metadata.get_model_version(Ref.parse(ref))

    def models(self) -> list[ModelVersion]:
        return self.metadata.list_models()

    def promote(
        self,
        name: str,
        version: int,
        *,
        alias: str = "production",
        require_better: str | None = None,
        min_delta: float = 0.0,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Promotion:
        """Point ``name@alias`` at ``version``, recording who (default: ``$MLSCALE_USER``) and why.

        With ``require_better="auc"`` (or any metric of the model's task) the version must beat
        the alias's current holder on its own holdout rows by at least ``min_delta``, else a
        UserError shows both figures and nothing moves.
        """
        from mlscale.registry.promote import promote

        return promote(
            self,
            name,
            version,
            alias=alias,
            require_better=require_better,
            min_delta=min_delta,
            actor=actor,
            reason=reason,
        )

    def rollback(
        self,
        name: str,
        *,
        alias: str = "production",
        actor: str | None = None,
        reason: str | None = None,
    ) -> AliasEvent:
        """Move ``name@alias`` back to where it was before its last move (itself recorded)."""
        from mlscale.registry.rollback import rollback

        return rollback(self, name, alias, actor=actor, reason=reason)

    def predictor(self, ref: str) -> Predictor:
        """Load a model version, verified by hash, ready to predict."""
        from mlscale.models.predictor import Predictor

        return Predictor.load(self, self.model(ref))

    def predict(
        self,
        ref: str,
        source: str | os.PathLike[str],
        output: str | os.PathLike[str],
        *,
        backend: str | None = None,
        address: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Score a CSV or Parquet file in batches into a Parquet file.

        ``workers=N`` predicts in N local processes (default 1: one process, reading, predicting
        and writing overlapped). ``backend="ray"`` scores on Ray Data (the cluster at
        ``address``, or Ray started here) with the same output; see
        :func:`mlscale.compute.ray.predict_file_ray` for its options.
        """
        from mlscale.compute import check_backend

        where = self._compute({"backend": backend, "address": address})
        backend, address = where["backend"], where["address"]
        if check_backend(backend, address) == "ray":
            from mlscale.compute.ray import predict_file_ray

            version = self.model(ref)
            return predict_file_ray(
                self, version, Path(source), Path(output), address=address, **options
            )
        from mlscale.models.batch import predict_file
        from mlscale.models.batch_workers import VersionRef
        from mlscale.models.predictor import Predictor

        version = self.model(ref)
        exact = VersionRef(str(self.root), version.ref)  # what worker processes load
        return predict_file(
            Predictor.load(self, version), Path(source), Path(output), version=exact, **options
        )

    def _compute(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with ``backend`` and the Ray ``address`` taken from the workspace's
        configuration (``[compute]``, ``$MLSCALE_BACKEND``) where the caller gave none."""
        if options.get("backend") is None:
            options = options | {"backend": self.config.backend}
        if options["backend"] == "ray" and options.get("address") is None:
            options = options | {"address": self.config.ray_address}
        return options

    def drift(self, ref: str, source: str | os.PathLike[str]) -> DriftReport:
        """Per-feature drift of a file against the model version's training profile."""
        from mlscale.monitor.drift import drift_for_file

        return drift_for_file(self, self.model(ref), Path(source))

    def retrain(self, name: str, *, on: str = "manual", **options: Any) -> RetrainDecision:
        """Retrain model ``name`` if trigger ``on`` (manual, drift, schedule) fires, and move
        its alias to the challenger only if it beats the champion; the decision is a run.

        Options: ``alias``, ``data``, ``metric``, ``min_delta``, ``incremental``, ``canary``,
        ``params``, ``dry_run``, ``window``, ``drift_share``, ``interval`` (see
        :func:`mlscale.monitor.retrain.retrain`).
        """
        from mlscale.monitor.retrain import retrain

        return retrain(self, name, on=on, **options)
