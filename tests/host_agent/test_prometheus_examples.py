"""The host's Prometheus side, checked by Prometheus's own promtool: the /metrics text of a real host
(every family present at 0 from the start), the example alert rules (syntax and a unit test with
synthetic series) and the Grafana dashboard's queries (valid PromQL over metrics the host exports)."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from host_agent.service import HostService
from mqtt_schema import REJECT_REASONS
from tests.conftest import Mosquitto

pytestmark = pytest.mark.needs("promtool", "mosquitto")
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "prometheus"
MakeHost = Callable[..., HostService]


def promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd)


def scrape(host: HostService) -> str:
    url = host.dashboard_url
    assert url is not None
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text: str = resp.read().decode()
        return text


def test_a_fresh_hosts_metrics_pass_promtool_and_every_counter_starts_at_zero(
        mosquitto: Mosquitto, make_host: MakeHost) -> None:
    text = scrape(make_host(mosquitto.url))
    res = promtool("check", "metrics", stdin=text)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not (res.stdout + res.stderr).strip(), res.stdout + res.stderr  # not even a lint warning
    for reason in (*REJECT_REASONS, "internal-error"):
        assert f'hsc_host_messages_rejected_total{{reason="{reason}"}} 0' in text
    for kind in ("state", "metrics", "event", "minute"):
        assert f'hsc_host_messages_accepted_total{{kind="{kind}"}} 0' in text
    for kind in ("event", "minute"):
        assert f'hsc_host_messages_duplicate_total{{kind="{kind}"}} 0' in text
    assert "hsc_host_alerts_fired_total{rule=\"desk-offline\"} 0" in text


def test_the_example_alert_rules_are_valid_and_fire_as_their_unit_test_says() -> None:
    res = promtool("check", "rules", "headset-coach.rules.yml", cwd=EXAMPLES)
    assert res.returncode == 0 and "SUCCESS: 7 rules found" in res.stdout, res.stdout + res.stderr
    res = promtool("test", "rules", "headset-coach.rules.test.yml", cwd=EXAMPLES)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_grafana_dashboards_queries_are_valid_promql_over_exported_metrics(
        mosquitto: Mosquitto, make_host: MakeHost, tmp_path: Path) -> None:
    dash = json.loads((EXAMPLES / "headset-coach.grafana.json").read_text(encoding="utf-8"))
    assert dash["uid"] and dash["title"] and dash["panels"]
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    # Grafana's variables, as Grafana substitutes them, then each query as a recording rule
    rules = "groups:\n  - name: dashboard\n    rules:\n" + "".join(
        f"      - record: dashboard:q{i}\n        expr: {json.dumps(e.replace('$__rate_interval', '5m').replace('$instance', '.*'))}\n"
        for i, e in enumerate(exprs))
    (tmp_path / "dashboard.rules.yml").write_text(rules, encoding="utf-8")
    res = promtool("check", "rules", str(tmp_path / "dashboard.rules.yml"))
    assert res.returncode == 0 and f"SUCCESS: {len(exprs)} rules found" in res.stdout, res.stdout + res.stderr
    exported = set(re.findall(r"^# TYPE (\w+) ", scrape(make_host(mosquitto.url)), re.M))
    used = {re.sub(r"_(bucket|sum|count)$", "", m) for e in exprs for m in re.findall(r"\bhsc_host_\w+", e)}
    rule_text = (EXAMPLES / "headset-coach.rules.yml").read_text(encoding="utf-8")
    used |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\bhsc_host_\w+", rule_text)}
    assert used and used <= exported, used - exported
