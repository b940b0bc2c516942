"""What the links in the demo's notifications open: the runbooks and the dashboards, served by the demo receiver.

Every link in a notification starts with one base, the `promml.links.base` template of
alertmanager/templates/promml.tmpl; in the compose stack and in `make demo` that base is the receiver:

- `/docs/runbooks/<Alert>.md`: the runbook, rendered to HTML from docs/runbooks/ (an alert's `runbook_url`
  annotation is that path, relative to the base).
- `/d/<uid>?var-model=...&var-version=...`: the dashboard. With Grafana's address (the compose stack), a redirect
  to the same path on Grafana; without it (`make demo` runs no Grafana), a page listing the dashboard's panels,
  each query a link to Prometheus' graph page for the link's model and version.
"""

from __future__ import annotations

import html
import json
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import markdown
from flask import Blueprint, Response, redirect, request

RUNBOOKS_PATH = "/docs/runbooks"
RUNBOOK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.md")
"""A runbook file name: no directories, so a link cannot read outside the runbooks directory."""
GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
PROMETHEUS_RANGE = "1h"
"""The graph range a dashboard page opens Prometheus on; `$__range` and the rate intervals are filled in to match."""
RANGE_VALUES = {"__rate_interval": "1m", "__interval": "1m", "__range": PROMETHEUS_RANGE}


@dataclass(frozen=True)
class LinkTargets:
    """Where the receiver finds what links point to; a part left unset answers 404 saying what is missing."""

    runbooks_dir: Path | None = None
    grafana_url: str | None = None
    """Grafana as the people who get the notifications reach it; `/d/...` redirects there when set."""
    dashboards_dir: Path | None = None
    prometheus_url: str | None = None


def _page(title: str, body: str) -> Response:
    return Response(f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>{body}",
                    mimetype="text/html")


def _not_found(message: str) -> Response:
    return Response(message + "\n", status=404, mimetype="text/plain")


def render_runbook(path: Path) -> Response:
    """The Markdown runbook as an HTML page titled by its first heading."""
    text = path.read_text(encoding="utf-8")
    heading = next((line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")), path.stem)
    return _page(heading, markdown.markdown(text, extensions=["fenced_code", "tables"]))


def fill_variables(expr: str, values: dict[str, str]) -> str:
    """A dashboard query with Grafana's variables replaced as Grafana would; unknown variables are left as they
    are (Prometheus then names them in its parse error)."""
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0))

    return GRAFANA_VARIABLE.sub(substitute, expr)


def _panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [panel for item in items for panel in [item, *_panels(item.get("panels", []))]]


def dashboard_page(dashboard: dict[str, Any], values: dict[str, str], prometheus_url: str) -> Response:
    """The dashboard's panels in order, each with its description and its queries opened in Prometheus."""
    sections = []
    for panel in _panels(dashboard.get("panels", [])):
        if panel.get("type") == "row":
            sections.append(f"<h2>{html.escape(panel.get('title', ''))}</h2>")
            continue
        queries = []
        for target in panel.get("targets", []):
            if not target.get("expr"):
                continue
            expr = fill_variables(target["expr"], values)
            graph = urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": PROMETHEUS_RANGE})
            queries.append(f'<li><a href="{html.escape(prometheus_url)}/graph?{html.escape(graph)}">'
                           f"<code>{html.escape(expr)}</code></a></li>")
        sections.append(f"<h3>{html.escape(panel.get('title', ''))}</h3>"
                        f"<p>{html.escape(panel.get('description', ''))}</p><ul>{''.join(queries)}</ul>")
    title = dashboard.get("title", "dashboard")
    intro = ("<p>Grafana is not part of this stack: here are the dashboard's panels, each query opened in "
             "Prometheus.</p>")
    return _page(title, f"<h1>{html.escape(title)}</h1>{intro}{''.join(sections)}")


def find_dashboard(directory: Path, uid: str) -> dict[str, Any] | None:
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        if dashboard.get("uid") == uid:
            return dashboard
    return None


def blueprint(targets: LinkTargets) -> Blueprint:
    """The routes links open, to register on the receiver's app."""
    links = Blueprint("links", __name__)

    @links.get(f"{RUNBOOKS_PATH}/")
    def runbook_index() -> Response:
        if targets.runbooks_dir is None:
            return _not_found("this receiver serves no runbooks (start it with --runbooks-dir)")
        names = sorted(path.name for path in targets.runbooks_dir.glob("*.md"))
        items = "".join(f'<li><a href="{html.escape(name)}">{html.escape(name[:-3])}</a></li>' for name in names)
        return _page("Runbooks", f"<h1>Runbooks</h1><ul>{items}</ul>")

    @links.get(f"{RUNBOOKS_PATH}/<name>")
    def runbook(name: str) -> Response:
        if targets.runbooks_dir is None:
            return _not_found("this receiver serves no runbooks (start it with --runbooks-dir)")
        path = targets.runbooks_dir / name
        if not RUNBOOK_NAME.fullmatch(name) or not path.is_file():
            return _not_found(f"no runbook {name!r}")
        return render_runbook(path)

    @links.get("/d/<uid>")
    @links.get("/d/<uid>/<slug>")
    def dashboard(uid: str, slug: str = "") -> Any:
        if targets.grafana_url:
            query = request.query_string.decode("ascii", "replace")
            return redirect(f"{targets.grafana_url.rstrip('/')}{request.path}{'?' + query if query else ''}")
        if targets.dashboards_dir is None or targets.prometheus_url is None:
            return _not_found("this receiver knows no Grafana (--grafana-url) and no dashboards (--dashboards-dir "
                              "with --prometheus-url)")
        found = find_dashboard(targets.dashboards_dir, uid)
        if found is None:
            return _not_found(f"no dashboard with uid {uid!r}")
        values = {name[len("var-"):]: value for name, value in request.args.items() if name.startswith("var-")}
        return dashboard_page(found, {**RANGE_VALUES, **values}, targets.prometheus_url.rstrip("/"))

    return links
