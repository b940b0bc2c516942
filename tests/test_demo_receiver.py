"""The Slack/PagerDuty stand-in accepts what the real services accept and rejects what they reject."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from promml.demo.receiver import MessageStore, create_app

KEY = "k" * 32
TRIGGER = {
    "routing_key": KEY, "event_action": "trigger", "dedup_key": "abc",
    "payload": {"summary": "drift on income", "source": "prometheus", "severity": "critical"},
}


@pytest.fixture
def client() -> FlaskClient:
    return create_app().test_client()


def test_slack_message_is_stored(client: FlaskClient) -> None:
    answer = client.post("/slack/demo", json={"text": "DataDriftDetected income"})
    assert answer.status_code == 200 and answer.data == b"ok"
    messages = client.get("/api/messages?kind=slack").get_json()["messages"]
    assert [(m["kind"], m["path"], m["body"]) for m in messages] == [
        ("slack", "/slack/demo", {"text": "DataDriftDetected income"})
    ]


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"channel": "#x"}, [1, 2]])
def test_slack_rejects_a_message_without_content(client: FlaskClient, body: object) -> None:
    answer = client.post("/slack/demo", json=body)
    assert answer.status_code == 400
    assert client.get("/api/messages").get_json()["messages"] == []


def test_slack_accepts_attachments_only(client: FlaskClient) -> None:
    assert client.post("/slack/x", json={"attachments": [{"text": "t"}]}).status_code == 200


def test_pagerduty_trigger_and_resolve(client: FlaskClient) -> None:
    answer = client.post("/pagerduty/v2/enqueue", json=TRIGGER)
    assert answer.status_code == 202
    assert answer.get_json() == {"status": "success", "message": "Event processed", "dedup_key": "abc"}
    resolve = {"routing_key": KEY, "event_action": "resolve", "dedup_key": "abc"}
    assert client.post("/pagerduty/v2/enqueue", json=resolve).status_code == 202
    bodies = [m["body"] for m in client.get("/api/messages?kind=pagerduty").get_json()["messages"]]
    assert bodies == [TRIGGER, resolve]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"routing_key": "short"}, "routing_key"),
        ({"event_action": "explode"}, "event_action"),
        ({"payload": None}, "'payload' is required"),
        ({"payload": {"summary": "", "source": "p", "severity": "critical"}}, "payload.summary"),
        ({"payload": {"summary": "x" * 1025, "source": "p", "severity": "critical"}}, "longer than 1024"),
        ({"payload": {"summary": "s", "source": "p", "severity": "bad"}}, "payload.severity"),
        ({"payload": {"summary": "s", "severity": "info"}}, "payload.source"),
        ({"event_action": "resolve", "dedup_key": None}, "dedup_key"),
    ],
)
def test_pagerduty_rejects_invalid_events(client: FlaskClient, change: dict, error: str) -> None:
    answer = client.post("/pagerduty/v2/enqueue", json={**TRIGGER, **change})
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["status"] == "invalid event"
    assert any(error in message for message in body["errors"]), body
    assert client.get("/api/messages").get_json()["messages"] == []


def test_store_is_bounded() -> None:
    store = MessageStore(capacity=3)
    for index in range(5):
        store.add("slack", "/slack/x", {"text": str(index)})
    assert [m["body"]["text"] for m in store.list()] == ["2", "3", "4"]


def test_page_health_and_bad_kind(client: FlaskClient) -> None:
    client.post("/slack/demo", json={"text": "<b>hello</b>"})
    page = client.get("/")
    assert page.status_code == 200 and b"&lt;b&gt;hello" in page.data
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/api/messages?kind=email").status_code == 400
