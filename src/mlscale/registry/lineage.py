"""Where a model version comes from and where it has been: dataset -> run -> version -> aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlscale.refs import Ref
from mlscale.store.records import AliasEvent, DatasetVersion, ModelVersion, Run

if TYPE_CHECKING:
    from mlscale.workspace import Workspace


@dataclass(frozen=True)
class Lineage:
    """One model version with the dataset version and the run it came from, and its alias moves."""

    model: ModelVersion
    run: Run | None  # None: registered without a run
    dataset: DatasetVersion | None  # None: registered without a dataset
    moves: list[AliasEvent]  # moves of an alias to or from this version, oldest first

    @property
    def aliases(self) -> list[str]:
        """The aliases pointing at this version now."""
        return self.model.aliases

    def to_dict(self) -> dict[str, Any]:
        d, r = self.dataset, self.run
        return {
            "dataset": None
            if d is None
            else {
                "ref": d.ref,
                "source": d.source.get("uri"),
                "rows": d.num_rows,
                "content_hash": d.content_hash,
                "created_at": d.created_at.isoformat(),
            },
            "run": None
            if r is None
            else {
                "id": r.id,
                "kind": r.kind,
                "status": r.status,
                "params": r.params,
                "metrics": r.metrics,
                "artifacts": r.artifacts,
                "started_at": r.started_at.isoformat(),
                "duration_s": r.duration_s,
            },
            "model": self.model.ref,
            "aliases": self.aliases,
            "moves": [
                {
                    "alias": e.alias,
                    "from": e.from_version,
                    "to": e.to_version,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "reason": e.reason,
                }
                for e in self.moves
            ],
        }


def lineage(ws: Workspace, ref: str) -> Lineage:
    """The lineage of ``name@version`` or ``name@alias``."""
    model = ws.metadata.get_model_version(Ref.parse(ref))
    run = ws.metadata.get_run(model.run_id) if model.run_id is not None else None
    dataset_ref = (run.dataset if run is not None else None) or model.dataset
    dataset = ws.metadata.get_dataset_version(Ref.parse(dataset_ref)) if dataset_ref else None
    moves = [
        e
        for e in ws.metadata.alias_history(model.name)
        if model.version in (e.from_version, e.to_version)
    ]
    return Lineage(model, run, dataset, moves)
