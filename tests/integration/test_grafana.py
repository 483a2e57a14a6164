"""docs/grafana/dcmwatch.json queries only what the daemon exports: every metric name in every
PromQL expression of the dashboard (panels and template variables) is a sample name scraped from
a real `dcmwatch run` with `[metrics]` on. A renamed metric, or a panel written for a metric
that was never exported, leaves an empty graph in production; here it fails."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from dcmwatch.testing import write_series
from tests.conftest import DaemonProcess, write_config

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "dcmwatch.json"

#: PromQL words that are not metric names: functions, aggregations, keywords.
PROMQL_WORDS = frozenset({
    "sum", "avg", "min", "max", "count", "rate", "irate", "increase", "delta", "deriv",
    "histogram_quantile", "by", "without", "on", "ignoring", "group_left", "group_right", "and",
    "or", "unless", "offset", "bool", "label_values", "topk", "bottomk", "abs", "clamp_min",
    "clamp_max", "time", "vector", "scalar", "avg_over_time", "max_over_time", "min_over_time",
    "absent", "changes", "resets", "sort", "sort_desc",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring)\s*\([^)]*\)")
_WORD = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def _queries(node: Any) -> list[str]:
    """Every PromQL expression in the dashboard: panel targets' `expr`, variables' `query`."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                out.append(value)
            elif key == "query" and isinstance(value, dict) and isinstance(value.get("query"), str):
                out.append(value["query"])
            elif key == "definition" and isinstance(value, str):
                out.append(value)
            else:
                out.extend(_queries(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_queries(item))
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: what is left once strings, label matchers,
    ranges, grouping clauses, numbers and PromQL's own words are taken out."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*\w+\s*\)", r" \1 ", text)
    return {w for w in _WORD.findall(text) if w not in PROMQL_WORDS}


def test_the_name_finder_finds_names() -> None:
    """The oracle itself: it sees metrics inside functions and not labels, ranges or words."""
    expr = ('histogram_quantile(0.95, sum by (le) (rate(dcmwatch_latency_seconds_bucket'
            '{instance=~"$instance"}[5m]))) / on (instance) up')
    assert metric_names(expr) == {"dcmwatch_latency_seconds_bucket", "up"}
    assert metric_names("label_values(dcmwatch_queue_depth, instance)") == {"dcmwatch_queue_depth"}


def test_every_dashboard_query_names_an_exported_metric(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = _queries(dashboard)
    assert len(queries) >= 10
    cfg = write_config(tmp_path, "\n[metrics]\nenabled = true\nport = 0\n")
    d = DaemonProcess(cfg, tmp_path)
    try:
        d.start()
        port = d.wait_event("metrics.started")[0]["port"]
        for f in write_series(tmp_path / "src", 2, rows=16, columns=16):
            f.rename(d.inbox / f.name)
        (tmp_path / "junk.dcm").write_bytes(b"junk" * 64)
        (tmp_path / "junk.dcm").rename(d.inbox / "junk.dcm")
        d.wait_event("file.processed", count=2)
        d.wait_event("file.quarantined")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        assert d.stop() == 0
    finally:
        d.kill()
    exported = {re.split(r"[{ ]", line, maxsplit=1)[0]
                for line in text.splitlines() if line and not line.startswith("#")}
    assert "dcmwatch_latency_seconds_bucket" in exported
    missing = {}
    for expr in queries:
        names = metric_names(expr)
        assert names, f"names no metric: {expr}"
        if names - exported:
            missing[expr] = sorted(names - exported)
    assert missing == {}, f"queries naming metrics the daemon does not export: {missing}"
