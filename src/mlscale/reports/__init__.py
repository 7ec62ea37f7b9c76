"""Pages for people: self-contained HTML with plots drawn on the server as inline SVG.

``evaluation_page`` shows one run (its evaluation plots, learning curve, params and environment),
``runs_page`` compares several; ``find_run`` resolves a run id or a unique prefix of one.
"""

from mlscale.reports.compare import runs_page
from mlscale.reports.evaluation import evaluation_page
from mlscale.reports.html import write_page
from mlscale.reports.runs import find_run, load_json

__all__ = ["evaluation_page", "find_run", "load_json", "runs_page", "write_page"]
