"""The model registry: governed alias moves and lineage.

Promote a version (optionally only if it beats the alias's holder on the same holdout rows), roll
an alias back, read every move (who, when, from, to, why), and trace a version back to its run
and dataset. :class:`mlscale.Workspace` offers ``promote`` and ``rollback`` on top of these.
"""

from mlscale.registry.aliases import current_actor, history, holder
from mlscale.registry.goals import HIGHER_IS_BETTER, TASK_METRICS, check_metric
from mlscale.registry.holdout import Holdout, load_holdout, score
from mlscale.registry.lineage import Lineage, lineage
from mlscale.registry.promote import Comparison, Promotion, compare, promote
from mlscale.registry.rollback import rollback

__all__ = [
    "HIGHER_IS_BETTER",
    "TASK_METRICS",
    "Comparison",
    "Holdout",
    "Lineage",
    "Promotion",
    "check_metric",
    "compare",
    "current_actor",
    "history",
    "holder",
    "lineage",
    "load_holdout",
    "promote",
    "rollback",
    "score",
]
