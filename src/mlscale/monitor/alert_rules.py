"""Alert rules: ``monitor.yaml`` in the workspace, read with every problem's file and line.

A rules file looks like this (only ``rules`` is required)::

    repeat: 4h                  # re-send a firing alert this often (default: only on change)
    webhooks:
      - url: https://hooks.example.com/mlscale
        headers: {Authorization: "Bearer ${HOOK_TOKEN}"}   # ${VAR}: from the environment
        tries: 5                # then the delivery is recorded as failed
        timeout: 5              # seconds per try
        backoff: 1              # seconds before the 2nd try, doubling after each
    rules:
      - name: features-drifted
        metric: drift.share_drifted
        op: ">"                 # quoted: a bare > starts a YAML block
        threshold: 0.3
        window: 1h              # the window each value is computed on
        for: 3                  # consecutive windows over the threshold before it fires
        models: [loans]         # default: every registered model
        severity: critical      # info, warning (default), critical
      - name: auc-dropped
        metric: performance.auc
        below: 0.75             # shorthand for op: "<", threshold: 0.75 (also: above)

Metrics (:data:`METRICS`): ``traffic.rows``; ``drift.share_drifted``, ``drift.drifted``,
``drift.feature.<name>.<psi|js|ks|wasserstein|score|chi_square>``, ``drift.output.<name>.<...>``;
``quality.missing_rate`` (mean over features), ``quality.violations``,
``quality.feature.<name>.<missing_rate|out_of_range_rate|unseen_rate|violations>``;
``performance.<auc|accuracy|log_loss|rmse|mae|r2|coverage|labelled>`` and
``performance.estimated_<auc|accuracy|log_loss>``.

>>> config = loads_alert_config("rules:\\n  - {name: quiet, metric: traffic.rows, below: 1}\\n")
>>> config.rules[0].describe()
'traffic.rows < 1 for 1 window of 1h'
>>> loads_alert_config("rules:\\n  - {name: x, metric: drift.share, above: 1}\\n", "monitor.yaml")
Traceback (most recent call last):
...
mlscale.monitor.alert_rules.AlertRulesError: monitor.yaml, line 2: rule 'x': unknown metric 'drift.share'; did you mean 'drift.share_drifted'?
"""

from __future__ import annotations

import difflib
import operator
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from mlscale.data.contract_reader import ContractReader
from mlscale.errors import ConfigError, UserError
from mlscale.monitor.windows import parse_duration
from mlscale.refs import check_name

RULES_FILE = "monitor.yaml"
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
SEVERITIES = ("info", "warning", "critical")
DRIFT_STATS = ("psi", "js", "ks", "wasserstein", "score", "chi_square")
QUALITY_STATS = ("missing_rate", "out_of_range_rate", "unseen_rate", "violations")
PERFORMANCE = ("auc", "accuracy", "log_loss", "rmse", "mae", "r2", "coverage", "labelled")
ESTIMATED = ("auc", "accuracy", "log_loss")
#: Every metric without a column name; ``<family>.feature.<name>.<stat>`` adds per-column ones.
METRICS = (
    "traffic.rows",
    "drift.share_drifted",
    "drift.drifted",
    "quality.missing_rate",
    "quality.violations",
    *(f"performance.{m}" for m in PERFORMANCE),
    *(f"performance.estimated_{m}" for m in ESTIMATED),
)
_TOP_KEYS = ("repeat", "webhooks", "rules")
_RULE_KEYS = ("name", "metric", "op", "threshold", "above", "below", "window", "for", "models",
              "severity", "repeat", "description")  # fmt: skip
_WEBHOOK_KEYS = ("url", "headers", "tries", "timeout", "backoff")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class AlertRulesError(ConfigError):
    """A rules file with problems; one ``file, line N: ...`` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Metric(NamedTuple):
    """A parsed metric selector: ``drift.feature.age.psi`` -> (drift, feature, age, psi)."""

    family: str  # traffic | drift | quality | performance
    scope: str  # "" for the whole window, "feature" or "output" for one column
    column: str
    stat: str

    def __str__(self) -> str:
        parts = [self.family, self.scope, self.column, self.stat]
        return ".".join(p for p in parts if p)


def parse_metric(text: str) -> Metric:
    """The selector ``text`` parsed, or a ConfigError naming the metrics there are.

    >>> parse_metric("drift.feature.proba.1.psi")
    Metric(family='drift', scope='feature', column='proba.1', stat='psi')
    >>> str(parse_metric("performance.estimated_auc"))
    'performance.estimated_auc'
    """
    if text in METRICS:
        family, _, stat = text.partition(".")
        return Metric(family, "", "", stat)
    family, _, rest = text.partition(".")
    scope, _, rest = rest.partition(".")
    column, _, stat = rest.rpartition(".")
    stats = {"drift": DRIFT_STATS, "quality": QUALITY_STATS}.get(family)
    if stats is not None and scope in ("feature", "output") and column:
        if stat in stats:
            return Metric(family, scope, column, stat)
        raise ConfigError(
            f"unknown statistic {stat!r} in metric {text!r}; expected one of {', '.join(stats)}"
        )
    close = difflib.get_close_matches(text, METRICS, n=1, cutoff=0.6)
    hint = (
        f"; did you mean {close[0]!r}?"
        if close
        else f"; expected one of {', '.join(METRICS)}, or drift|quality.feature.<name>.<stat>"
    )
    raise ConfigError(f"unknown metric {text!r}{hint}")


@dataclass(frozen=True)
class Rule:
    """One alert rule: ``metric op threshold`` in ``for_windows`` consecutive windows."""

    name: str
    metric: Metric
    op: str
    threshold: float
    window: str = "1h"
    for_windows: int = 1
    models: tuple[str, ...] = ()  # empty: every registered model
    severity: str = "warning"
    repeat: str | None = None  # re-send a firing alert this often; None: only on change
    description: str = ""
    line: int = 0

    @property
    def window_s(self) -> int:
        return parse_duration(self.window)

    @property
    def repeat_s(self) -> int | None:
        return None if self.repeat is None else parse_duration(self.repeat)

    def breaches(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "metric": str(self.metric), "op": self.op,
            "threshold": self.threshold, "window": self.window, "for": self.for_windows,
            "models": list(self.models), "severity": self.severity, "repeat": self.repeat,
            "description": self.description, "line": self.line,
        }  # fmt: skip

    def describe(self) -> str:
        windows = "window" if self.for_windows == 1 else "consecutive windows"
        return (
            f"{self.metric} {self.op} {self.threshold:g} "
            f"for {self.for_windows} {windows} of {self.window}"
        )


@dataclass(frozen=True)
class Webhook:
    """Where alert events are POSTed as JSON."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    tries: int = 5
    timeout_s: float = 5.0
    backoff_s: float = 1.0

    @property
    def name(self) -> str:
        """The URL without credentials or query, safe to store and show."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class AlertConfig:
    """The rules and webhooks of a workspace; ``path`` is where they were read from."""

    rules: tuple[Rule, ...] = ()
    webhooks: tuple[Webhook, ...] = ()
    path: str | None = None

    def rules_for(self, model: str) -> list[Rule]:
        return [r for r in self.rules if not r.models or model in r.models]


def rules_path(root: str | os.PathLike[str]) -> Path:
    """Where a workspace keeps its rules: ``monitor.yaml`` beside ``mlscale.toml``."""
    return Path(root) / RULES_FILE


def load_alert_config(path: str | os.PathLike[str]) -> AlertConfig:
    """Read a rules file; a missing one means no rules (an empty config that names the path)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return AlertConfig(path=str(path))
    except OSError as exc:
        raise AlertRulesError([f"{path}: cannot read the rules: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AlertRulesError([f"{path}, line {line}: not UTF-8 text"]) from None
    return loads_alert_config(text, path)


def loads_alert_config(text: str, path: str | os.PathLike[str] = "<string>") -> AlertConfig:
    """Parse and check rules YAML; every problem is reported with ``path`` and its line."""
    where = str(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise AlertRulesError([f"{where}, line {line}: invalid YAML: {exc.problem}"]) from None
    reader = _RulesReader()
    config = reader.config(root, where)
    if reader.errors or config is None:
        lines = sorted(reader.errors, key=lambda error: error[0])
        raise AlertRulesError([f"{where}, line {line}: {message}" for line, message in lines])
    return config


class _RulesReader(ContractReader):
    """The contract reader's line-aware helpers (mapping, text, number...) applied to rules."""

    def config(self, root: Node | None, where: str) -> AlertConfig | None:
        if root is None or (isinstance(root, ScalarNode) and not root.value):
            self.errors.append((1, "the rules file is empty; expected 'rules:'"))
            return None
        top = self.mapping(root, "the rules file", _TOP_KEYS)
        if top is None:
            return None
        repeat = self.duration(top["repeat"][1], "repeat") if "repeat" in top else None
        webhooks = self.webhooks(top["webhooks"][1]) if "webhooks" in top else []
        if "rules" not in top:
            self.error(root, "rules is missing; list the rules under 'rules:'")
            return None
        rules = self.rules(top["rules"][1], repeat)
        return AlertConfig(tuple(rules), tuple(webhooks), where)

    def rules(self, node: Node, repeat: str | None) -> list[Rule]:
        if not isinstance(node, SequenceNode):
            self.error(node, "rules must be a list of rules ('- name: ...')")
            return []
        out: list[Rule] = []
        first: dict[str, int] = {}
        for item in node.value:
            name = _name_of(item)
            if name is not None:
                if name in first:
                    self.error(item, f"rule {name!r} appears twice (first at line {first[name]})")
                    continue
                first[name] = item.start_mark.line + 1
            rule = self.rule(item, repeat)
            if rule is not None:
                out.append(rule)
        return out

    def rule(self, node: Node, repeat: str | None) -> Rule | None:
        fields = self.mapping(node, "each rule", _RULE_KEYS)
        if fields is None:
            return None
        name = self.text(fields["name"][1], "rule name") if "name" in fields else None
        if name is None:
            if "name" not in fields:
                self.error(node, "each rule needs a name")
            return None
        what = f"rule {name!r}"
        errors = len(self.errors)
        metric = None
        if "metric" not in fields:
            self.error(node, f"{what}: metric is missing (e.g. metric: drift.share_drifted)")
        else:
            text = self.text(fields["metric"][1], f"{what}: metric")
            if text is not None:
                try:
                    metric = parse_metric(text.strip())
                except ConfigError as exc:
                    self.error(fields["metric"][1], f"{what}: {exc}")
        op, threshold = self.condition(node, fields, what)
        window = (
            self.duration(fields["window"][1], f"{what}: window") if "window" in fields else "1h"
        )
        count = self.count(fields["for"][1], f"{what}: for") if "for" in fields else 1
        models: tuple[str, ...] = ()
        if "models" in fields:
            listed = self.text_list(fields["models"][1], f"{what}: models", single=True)
            for model, item in listed or []:
                try:
                    models += (check_name(model.strip(), "model name"),)
                except UserError as exc:
                    self.error(item, f"{what}: models: {exc}")
        severity = "warning"
        if "severity" in fields:
            text = self.text(fields["severity"][1], f"{what}: severity")
            if text is not None and self.choice_ok(
                text, fields["severity"][1], f"{what}: severity", SEVERITIES
            ):
                severity = text
        if "repeat" in fields:
            repeat = self.duration(fields["repeat"][1], f"{what}: repeat")
        description = ""
        if "description" in fields:
            description = self.text(fields["description"][1], f"{what}: description") or ""
        if len(self.errors) > errors or metric is None or op is None or threshold is None:
            return None
        return Rule(
            name=name, metric=metric, op=op, threshold=threshold, window=window or "1h",
            for_windows=count or 1, models=models, severity=severity, repeat=repeat,
            description=description, line=node.start_mark.line + 1,
        )  # fmt: skip

    def condition(
        self, node: Node, fields: dict[str, tuple[ScalarNode, Node]], what: str
    ) -> tuple[str | None, float | None]:
        given = [k for k in ("op", "above", "below") if k in fields]
        if len(given) != 1:
            found = f"found {', '.join(given)}" if given else "found none"
            self.error(node, f"{what}: give op and threshold, or above, or below ({found})")
            return None, None
        if given[0] in ("above", "below"):
            value = self.number(fields[given[0]][1], f"{what}: {given[0]}")
            return (">" if given[0] == "above" else "<"), value
        op_node = fields["op"][1]
        op = self.text(op_node, f"{what}: op", allow_empty=True)
        if op is not None and op.strip() not in OPERATORS:
            hint = ""
            if isinstance(op_node, ScalarNode) and op_node.style in (">", "|"):
                hint = ' (a bare > or | starts a YAML block: quote it, op: ">")'
            self.error(
                op_node,
                f"{what}: op must be one of {', '.join(OPERATORS)}, found {op.strip()!r}{hint}",
            )
            op = None
        if "threshold" not in fields:
            self.error(node, f"{what}: threshold is missing")
            return None, None
        threshold = self.number(fields["threshold"][1], f"{what}: threshold")
        return (op.strip() if op is not None else None), threshold

    def duration(self, node: Node, what: str) -> str | None:
        text = self.text(node, what)
        if text is None:
            return None
        if what.endswith("repeat") and text.strip() == "never":
            return None
        try:
            parse_duration(text)
        except ConfigError as exc:
            self.error(node, f"{what}: {exc}")
            return None
        return text.strip()

    def count(self, node: Node, what: str) -> int | None:
        value = self.number(node, what)
        if value is None:
            return None
        if not float(value).is_integer() or value < 1:
            self.error(
                node, f"{what} must be a whole number of windows, 1 or more; found {value:g}"
            )
            return None
        return int(value)

    def webhooks(self, node: Node) -> list[Webhook]:
        if not isinstance(node, SequenceNode):
            self.error(node, "webhooks must be a list ('- url: https://...')")
            return []
        out = []
        for item in node.value:
            fields = self.mapping(item, "each webhook", _WEBHOOK_KEYS)
            if fields is None:
                continue
            if "url" not in fields:
                self.error(item, "each webhook needs a url")
                continue
            url = self.expand(fields["url"][1], "webhook url")
            if url is not None and urlsplit(url).scheme not in ("http", "https"):
                self.error(
                    fields["url"][1],
                    f"webhook url must start with http:// or https://, found {url!r}",
                )
                url = None
            headers: dict[str, str] = {}
            if "headers" in fields:
                for key, (_, value_node) in (
                    self.mapping(fields["headers"][1], "webhook headers") or {}
                ).items():
                    value = self.expand(value_node, f"webhook header {key!r}")
                    if value is not None:
                        headers[key] = value
            tries = self.count(fields["tries"][1], "webhook tries") if "tries" in fields else 5
            timeout = self.positive(fields, "timeout", 5.0)
            backoff = self.positive(fields, "backoff", 1.0)
            if (
                url is not None
                and tries is not None
                and timeout is not None
                and backoff is not None
            ):
                out.append(Webhook(url, headers, tries, timeout, backoff))
        return out

    def positive(
        self, fields: dict[str, tuple[ScalarNode, Node]], key: str, default: float
    ) -> float | None:
        if key not in fields:
            return default
        value = self.number(fields[key][1], f"webhook {key}")
        if value is not None and value <= 0:
            self.error(
                fields[key][1], f"webhook {key} must be more than 0 seconds, found {value:g}"
            )
            return None
        return value

    def expand(self, node: Node, what: str) -> str | None:
        """``node``'s text with ``${VAR}`` taken from the environment (secrets stay out of the
        file); an unset variable is an error naming it."""
        text = self.text(node, what)
        if text is None:
            return None
        missing = [m.group(1) for m in _ENV.finditer(text) if m.group(1) not in os.environ]
        if missing:
            self.error(node, f"{what}: environment variable {missing[0]} is not set")
            return None
        return _ENV.sub(lambda m: os.environ[m.group(1)], text)


def _name_of(node: Node) -> str | None:
    """The ``name`` written in a rule's mapping, if any, before the rule is checked."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if (
                isinstance(key, ScalarNode)
                and key.value == "name"
                and isinstance(value, ScalarNode)
            ):
                return value.value
    return None
