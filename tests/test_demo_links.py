"""What notification links open on the demo receiver: rendered runbooks, and dashboards (Grafana or a query page)."""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from flask import Flask

from promml.demo.links import LinkTargets, blueprint, fill_variables

RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
DASHBOARDS = REPO_ROOT / "grafana" / "dashboards"


def client(targets: LinkTargets):
    app = Flask("t")
    app.register_blueprint(blueprint(targets))
    return app.test_client()


@pytest.mark.parametrize("path", sorted(RUNBOOKS.glob("*.md")), ids=lambda path: path.stem)
def test_every_runbook_is_served_as_html(path: Path) -> None:
    response = client(LinkTargets(runbooks_dir=RUNBOOKS)).get(f"/docs/runbooks/{path.name}")
    assert (response.status_code, response.mimetype) == (200, "text/html")
    page = response.get_data(as_text=True)
    heading = next(line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#"))
    assert f"<title>{html.escape(heading, quote=False)}</title>" in page
    assert re.search(r"<h1[^>]*>", page)
    if "```" in path.read_text():
        assert "<pre><code" in page  # fenced code blocks become code, not paragraphs


def test_runbook_index_lists_every_runbook() -> None:
    page = client(LinkTargets(runbooks_dir=RUNBOOKS)).get("/docs/runbooks/").get_data(as_text=True)
    assert re.findall(r'href="([^"]+)"', page) == sorted(path.name for path in RUNBOOKS.glob("*.md"))


@pytest.mark.parametrize("name", ["Nope.md", "..%2Falerting.md", ".hidden.md", "DataDriftDetected", "x.md.bak"])
def test_no_runbook_outside_the_directory_or_missing(name: str) -> None:
    assert client(LinkTargets(runbooks_dir=RUNBOOKS)).get(f"/docs/runbooks/{name}").status_code == 404


def test_without_a_runbooks_dir_runbooks_are_404_saying_what_to_set() -> None:
    response = client(LinkTargets()).get("/docs/runbooks/DataDriftDetected.md")
    assert response.status_code == 404
    assert "--runbooks-dir" in response.get_data(as_text=True)


def test_dashboards_redirect_to_grafana_with_their_variables() -> None:
    targets = LinkTargets(grafana_url="http://127.0.0.1:3000/")
    response = client(targets).get("/d/promml-model-overview?var-model=credit-risk&var-version=1.0.0")
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "http://127.0.0.1:3000/d/promml-model-overview?var-model=credit-risk&var-version=1.0.0")
    assert client(targets).get("/d/promml-drift/drift").headers["Location"] == "http://127.0.0.1:3000/d/promml-drift/drift"


def test_without_grafana_a_dashboard_is_its_queries_opened_in_prometheus() -> None:
    targets = LinkTargets(dashboards_dir=DASHBOARDS, prometheus_url="http://127.0.0.1:9090")
    response = client(targets).get("/d/promml-model-overview?var-model=credit-risk&var-version=1.0.0")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    dashboard = json.loads((DASHBOARDS / "model-overview.json").read_text())
    links = [html.unescape(href) for href in re.findall(r'href="([^"]+)"', page)]
    exprs = [urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["g0.expr"][0] for link in links]
    expected = [
        target["expr"].replace("$model", "credit-risk").replace("$version", "1.0.0")
        .replace("$__rate_interval", "1m").replace("$__range", "1h")
        for item in dashboard["panels"] for panel in [item, *item.get("panels", [])]
        for target in panel.get("targets", [])
    ]
    assert exprs == expected
    assert all(link.startswith("http://127.0.0.1:9090/graph?") for link in links)
    assert "<h3>Firing alerts</h3>" in page


def test_an_unknown_dashboard_or_no_source_is_404() -> None:
    targets = LinkTargets(dashboards_dir=DASHBOARDS, prometheus_url="http://127.0.0.1:9090")
    assert client(targets).get("/d/nope").status_code == 404
    response = client(LinkTargets()).get("/d/promml-model-overview")
    assert response.status_code == 404 and "--grafana-url" in response.get_data(as_text=True)


def test_fill_variables_leaves_unknown_ones() -> None:
    assert fill_variables('x{a="$model", b="${version}"}[$__rate_interval] $other',
                          {"model": "m", "version": "1", "__rate_interval": "1m"}) == 'x{a="m", b="1"}[1m] $other'
