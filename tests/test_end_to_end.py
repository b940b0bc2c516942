"""The whole path, for real: decorated predict -> logs -> exporter -> Prometheus -> Alertmanager -> receiver.

Prometheus and Alertmanager run as processes from the shipped config files, with only addresses, secret-file
paths and timings substituted (the promtool unit tests hold the shipped timings). The scenario is one story told
in order: normal traffic raises no drift alert; drifted traffic pages through PagerDuty and Slack naming the
feature, in one PagerDuty incident; normal traffic again resolves it; every link in those notifications opens;
every dashboard query returns data.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for as _wait_for
from grafana_queries import dashboard_queries, render_query, shorten_offsets

from promml.demo.stack import DEMO_PAGERDUTY_KEY, Ports, Stack, StackConfig, Timings
from promml.demo.traffic import TrafficGenerator

pytestmark = pytest.mark.e2e

ALERT = "DataDriftDetected"
HISTORY_COMPRESSION = 3600
"""The stack lives for minutes, so queries comparing with a day ago (`offset 1d`) look 24 s back instead."""
DRIFTED_FEATURES = {"income", "debt_ratio"}


wait_for = functools.partial(_wait_for, interval=0.5)
LINK = re.compile(r"https?://[^\s\"'<>|]+")


def links_in(value: Any) -> set[str]:
    """Every URL in the strings of a JSON value (a message body), however deep."""
    if isinstance(value, str):
        return set(LINK.findall(value))
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return set().union(set(), *(links_in(child) for child in children))


def get_json(url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return {"http_status": error.code, **json.loads(error.read() or b"{}")}


class Traffic(threading.Thread):
    """Sends demo traffic continuously; `drift` switches the distribution on the fly."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.generator = TrafficGenerator(url, rps=40, label_delay_seconds=0.3, seed=7)
        self.drift = False
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.generator.run_phase(drift=self.drift, duration_seconds=0.5)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Iterator[Stack]:
    config = StackConfig(
        repo_root=repo_root, workdir=tmp_path_factory.mktemp("stack"), ports=Ports.free(), timings=Timings.fast()
    )
    with Stack(config) as running:
        yield running


@pytest.fixture(scope="module")
def traffic(stack: Stack) -> Iterator[Traffic]:
    """Normal traffic for the whole module (dashboards need live series); tests may switch it to drift and back."""
    running = Traffic(stack.config.url(stack.config.ports.model_server))
    running.start()
    yield running
    running.stop()


class Live:
    """Queries against the running stack."""

    def __init__(self, stack: Stack) -> None:
        self.config = stack.config
        self.ports = stack.config.ports

    def url(self, port: int, path: str) -> str:
        return f"http://127.0.0.1:{port}{path}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = get_json(self.url(self.ports.prometheus, "/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
        assert answer.get("status") == "success", f"{promql!r} failed: {answer}"
        return answer["data"]["result"]

    def messages(self, kind: str) -> list[dict[str, Any]]:
        return get_json(self.url(self.ports.receiver, f"/api/messages?kind={kind}"))["messages"]

    def notifications(self, kind: str, *words: str) -> list[dict[str, Any]]:
        """Received messages of a kind whose JSON body mentions every word."""
        return [m for m in self.messages(kind) if all(word in json.dumps(m["body"]) for word in words)]


def test_drift_alert_fires_routes_and_resolves(stack: Stack, traffic: Traffic) -> None:
    live = Live(stack)
    model = f"http://127.0.0.1:{live.ports.model_server}"
    try:
        # Normal phase: enough rows for the drift rule to judge, and no drift alert at any point.
        wait_for("a full window of normal traffic", lambda: live.query("ml_window_predictions >= 300"), 60)
        bad = get_json(f"{model}/predict", {"age": 30})
        assert bad["http_status"] == 400 and "missing feature(s)" in bad["error"]
        model_error = get_json(f"{model}/predict", {"age": 30.0, "income": -1.0, "debt_ratio": 0.1,
                                                    "num_accounts": 2, "region": "north"})
        assert model_error["http_status"] == 422
        time.sleep(3)
        assert live.query(f'max_over_time(ALERTS{{alertname="{ALERT}"}}[5m])') == []
        assert live.notifications("slack", ALERT) == []
        psi_normal = {r["metric"]["feature_name"]: float(r["value"][1]) for r in live.query("ml_drift_score")}
        assert set(psi_normal) >= DRIFTED_FEATURES | {"age", "num_accounts", "region"}
        assert max(psi_normal.values()) < 0.1, psi_normal

        # Drift phase: the alert pages (PagerDuty) and posts to Slack, naming the drifted feature.
        pagerduty_before_drift = len(live.messages("pagerduty"))  # the stack's own start may page with 3 s `for`s
        traffic.drift = True
        pages = wait_for(
            "a PagerDuty trigger", lambda: [m for m in live.notifications("pagerduty", ALERT)
                                            if m["body"]["event_action"] == "trigger"], 90,
        )
        slack = wait_for("a Slack message", lambda: live.notifications("slack", ALERT), 30)
        firing = {r["metric"]["feature_name"] for r in live.query(f'ALERTS{{alertname="{ALERT}",alertstate="firing"}}')}
        assert firing and firing <= DRIFTED_FEATURES, firing
        assert any(feature in json.dumps(slack[0]["body"]) for feature in firing)
        event = pages[0]["body"]
        assert event["routing_key"] == DEMO_PAGERDUTY_KEY
        assert (live.config.workdir / "alertmanager/secrets/pagerduty_routing_key").read_text().strip() == event[
            "routing_key"
        ]
        assert event["payload"]["severity"] == "critical"
        assert any(feature in json.dumps(event["payload"]) for feature in firing)
        # Warnings go to Slack only, and only while the shipped business hours are open: outside them Alertmanager
        # holds the accuracy warning (active, for slack-warning) and Slack gets nothing new. It never pages.
        from datetime import datetime, timezone

        import yaml
        from test_alertmanager_config import warning_hours_open

        shipped_alertmanager = yaml.safe_load((live.config.repo_root / "alertmanager/alertmanager.yml").read_text())

        def open_now() -> bool:
            return warning_hours_open(shipped_alertmanager, datetime.now(timezone.utc))

        def accuracy_warning_held() -> list[dict[str, Any]]:
            query = urllib.parse.urlencode({"filter": 'alertname="ModelAccuracyLow"', "active": "true"})
            held = get_json(live.url(live.ports.alertmanager, f"/api/v2/alerts?{query}"))
            return [a for a in held if [r["name"] for r in a["receivers"]] == ["slack-warning"]]

        for _ in range(2):  # the check takes seconds, so at most one edge of the interval can fall inside it
            opened = open_now()
            if opened:
                wait_for("the accuracy warning in Slack", lambda: live.notifications("slack", "ModelAccuracyLow"), 90)
            else:
                posted = len(live.notifications("slack", "ModelAccuracyLow"))
                wait_for("Alertmanager to hold the accuracy warning", accuracy_warning_held, 90)
                time.sleep(5)  # more than two group intervals of the fast timings: two flushes without a post
                assert accuracy_warning_held()
                assert len(live.notifications("slack", "ModelAccuracyLow")) == posted
            if open_now() == opened:
                break
        assert live.notifications("pagerduty", "ModelAccuracyLow") == []
        # One incident, one page: whatever else fired with the drift (score drift, the accuracy drop) rode along in
        # the same PagerDuty incident (one dedup key) or was inhibited.
        incidents = {m["body"]["dedup_key"]: m["body"]["payload"]["summary"]
                     for m in live.messages("pagerduty")[pagerduty_before_drift:]
                     if m["body"]["event_action"] == "trigger"}
        assert len(incidents) == 1, incidents

        # Back to normal: a resolved notification follows on both channels.
        traffic.drift = False
        wait_for(
            "a PagerDuty resolve", lambda: [m for m in live.notifications("pagerduty", ALERT)
                                            if m["body"]["event_action"] == "resolve"], 90,
        )
        wait_for("a resolved Slack message", lambda: live.notifications("slack", ALERT, "resolved"), 30)
    finally:
        traffic.drift = False


def test_every_link_in_a_notification_answers_200(stack: Stack) -> None:
    """Every link of every message delivered above (runbooks, dashboards, Alertmanager's own) opens: 200, after
    redirects. In this stack the links base is the receiver, which serves the runbooks and the dashboards' queries."""
    live = Live(stack)
    messages = live.messages("slack") + live.messages("pagerduty")
    assert messages, "the drift test delivers pages and posts first"
    links = links_in([message["body"] for message in messages])
    base = live.config.url(live.ports.receiver)
    assert f"{base}/docs/runbooks/{ALERT}.md" in links
    assert f"{base}/d/promml-model-overview?var-model=credit-risk&var-version=1.0.0" in links
    statuses = {}
    for link in sorted(links):
        try:
            with urllib.request.urlopen(link, timeout=10) as response:
                statuses[link] = response.status
        except urllib.error.HTTPError as error:
            statuses[link] = error.code
    assert statuses == dict.fromkeys(links, 200)


def test_every_target_is_scraped(stack: Stack) -> None:
    live = Live(stack)
    targets = get_json(live.url(live.ports.prometheus, "/api/v1/targets"))["data"]["activeTargets"]
    assert {t["labels"]["job"]: t["health"] for t in targets} == {
        "prometheus": "up", "alertmanager": "up", "model-server": "up", "promml-exporter": "up",
    }


def test_every_dashboard_query_returns_data(stack: Stack, traffic: Traffic, repo_root: Path) -> None:
    live = Live(stack)
    dashboards = sorted((repo_root / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    queries = [
        (f"{path.name}: {title}", shorten_offsets(
            render_query(expr, model="credit-risk", version="1.0.0", rate_interval="1m"), HISTORY_COMPRESSION))
        for path in dashboards
        for title, expr in dashboard_queries(json.loads(path.read_text()))
    ]
    assert queries

    def empty_queries() -> list[str]:
        return [f"{where}: {promql}" for where, promql in queries if not live.query(promql)]

    # Rates need two scrapes and accuracy needs labels, so give a fresh stack a little time before judging.
    try:
        wait_for("every dashboard query to return data", lambda: not empty_queries(), 60)
    except AssertionError:
        raise AssertionError("dashboard queries without data:\n" + "\n".join(empty_queries())) from None
