#!/usr/bin/env python3
"""Checks of the operations files that promtool and the Kubernetes validator do not make.

Run by scripts/test-ops (with the Python of its virtualenv, which has PyYAML):

  opscheck.py metrics                 every metric name the alerts and the dashboard use, one a
                                      line (base names: no _bucket/_sum/_count; no recording-rule
                                      names, no `up`)
  opscheck.py dashboard OUT.yml       checks the dashboard JSON and writes its PromQL as
                                      recording rules to OUT.yml, for `promtool check rules`
  opscheck.py alerts                  every alert has severity, summary, description and runbook,
                                      its runbook anchor exists in docs/runbook.md, and
                                      alerts_test.yml fires it at least once and keeps it
                                      silent at least once
  opscheck.py kustomization DIR       every resource the kustomization lists exists
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "ops/prometheus/alerts.yml"
ALERT_TESTS = ROOT / "ops/prometheus/alerts_test.yml"
DASHBOARD = ROOT / "ops/grafana/dashboards/seatalloc.json"
RUNBOOK = ROOT / "docs/runbook.md"

# Grafana's variables, as a query over the last hour would expand them.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "${__rate_interval}": "5m",
    "$__interval": "1m",
    "${__interval}": "1m",
    "$__range": "1h",
    "${__range}": "1h",
}

# PromQL words that look like metric names: keywords and aggregation operators.
NOT_METRICS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "atan2", "inf", "nan", "sum", "min", "max", "avg", "group", "stddev",
    "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}


def fail(message):
    print(f"[ops] FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def rule_exprs():
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def dashboard_panels(dash):
    for panel in dash.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # panels of a collapsed row


def dashboard_exprs(dash):
    return [
        target["expr"]
        for panel in dashboard_panels(dash)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def expand_grafana(expr):
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    if "$" in expr:
        fail(f"unknown Grafana variable in {expr!r}")
    return expr


def metric_names(expr):
    """The metric names of a PromQL expression (a lexical scan: strings, label matchers, ranges
    and grouping lists removed, then every identifier that is not a function call or keyword)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"'(?:[^'\\]|\\.)*'", "''", e)
    e = re.sub(r"`[^`]*`", "``", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r" \1 ", e)
    names = set()
    for m in re.finditer(r"(?<![\w:.$])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()", e):
        name = m.group(1)
        if name.lower() in NOT_METRICS:
            continue
        names.add(name)
    return names


def base_name(name):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def cmd_metrics():
    dash = json.loads(DASHBOARD.read_text())
    exprs = rule_exprs() + [expand_grafana(e) for e in dashboard_exprs(dash)]
    names = set()
    for expr in exprs:
        names |= {base_name(n) for n in metric_names(expr)}
    for name in sorted(n for n in names if ":" not in n and n != "up"):
        print(name)


def cmd_dashboard(out):
    try:
        dash = json.loads(DASHBOARD.read_text())
    except json.JSONDecodeError as e:
        fail(f"{DASHBOARD}: not JSON: {e}")
    for key in ("title", "uid", "panels", "schemaVersion"):
        if key not in dash:
            fail(f"{DASHBOARD}: no {key}")
    ids = set()
    rules = []
    panels = 0
    for panel in dashboard_panels(dash):
        pid = panel.get("id")
        if pid in ids:
            fail(f"panel id {pid} twice")
        ids.add(pid)
        if "gridPos" not in panel:
            fail(f"panel {panel.get('title')!r}: no gridPos")
        if panel.get("type") == "row":
            continue
        panels += 1
        targets = [t for t in panel.get("targets", []) if t.get("expr", "").strip()]
        if not targets:
            fail(f"panel {panel.get('title')!r} has no target with an expression")
        uid = (panel.get("datasource") or {}).get("uid")
        if uid not in ("${datasource}", "prometheus"):
            fail(f"panel {panel.get('title')!r}: data source {uid!r}, not ${{datasource}} or prometheus")
        for target in targets:
            rules.append({
                "record": f"dashboard:panel{pid}_{target.get('refId', 'A')}:check",
                "expr": expand_grafana(target["expr"]),
            })
    variables = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
    if "datasource" not in variables:
        fail("the dashboard has no `datasource` variable")
    Path(out).write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
    print(f"[ops]   {panels} panels, {len(rules)} queries", file=sys.stderr)


def cmd_alerts():
    doc = yaml.safe_load(ALERTS.read_text())
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    tests = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    fired, silent = set(), set()
    for test in tests:
        for check in test.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = set()
    for alert in alerts:
        name = alert["alert"]
        if name in names:
            fail(f"alert {name} defined twice")
        names.add(name)
        if alert.get("labels", {}).get("severity") not in ("critical", "warning"):
            fail(f"{name}: severity must be critical or warning")
        annotations = alert.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            if not annotations.get(key, "").strip():
                fail(f"{name}: no {key} annotation")
        for anchor in re.findall(r"docs/runbook\.md#([a-z0-9-]+)", annotations["runbook"]):
            if anchor not in anchors:
                fail(f"{name}: docs/runbook.md has no section #{anchor}")
        if name not in fired:
            fail(f"{name}: no test in alerts_test.yml fires it")
        if name not in silent:
            fail(f"{name}: no test in alerts_test.yml keeps it silent")
    unknown = (fired | silent) - names
    if unknown:
        fail(f"alerts_test.yml tests unknown alerts: {sorted(unknown)}")
    print(f"[ops]   {len(alerts)} alerts, each with severity, summary, description, runbook, a test that fires it and one that keeps it silent", file=sys.stderr)


def cmd_kustomization(directory):
    directory = Path(directory)
    doc = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for resource in doc.get("resources", []):
        if not (directory / resource).is_file():
            fail(f"kustomization lists {resource}, which does not exist")
    listed = set(doc.get("resources", []))
    for path in sorted(directory.glob("*.yaml")):
        if path.name not in listed | {"kustomization.yaml", "secret.example.yaml"}:
            fail(f"{path.name} is not in the kustomization")


def main(argv):
    if not argv:
        fail(__doc__)
    command, args = argv[0], argv[1:]
    if command == "metrics":
        cmd_metrics()
    elif command == "dashboard" and len(args) == 1:
        cmd_dashboard(args[0])
    elif command == "alerts":
        cmd_alerts()
    elif command == "kustomization" and len(args) == 1:
        cmd_kustomization(args[0])
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
