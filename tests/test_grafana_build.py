"""The dashboards are built with grafana-foundation-sdk (grafana/generate.py), committed exactly as generated, and
read back whole by the SDK's own models; the SDK build is the one for the Grafana release that compose runs."""

from __future__ import annotations

import json
import re
import sys
from importlib import metadata
from typing import Any

import pytest
import tomllib
import yaml
from conftest import REPO_ROOT
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

sys.path.insert(0, str(REPO_ROOT / "grafana"))
import generate
import panels

plugins.register_default_plugins()  # so panels decode into their plugin's typed options and field config
DASHBOARDS_DIR = REPO_ROOT / "grafana" / "dashboards"


def committed(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS_DIR / name).read_text())


def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [panel for item in items for panel in [item, *walk(item.get("panels", []))]]


def test_every_committed_dashboard_is_generated() -> None:
    assert sorted(path.name for path in DASHBOARDS_DIR.glob("*.json")) == sorted(generate.DASHBOARDS)
    assert not (REPO_ROOT / "grafana" / "build.py").exists()


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_committed_json_is_what_the_generator_writes(name: str) -> None:
    text = (DASHBOARDS_DIR / name).read_text()
    assert text == panels.render(generate.DASHBOARDS[name]()), f"run `python grafana/generate.py` and commit {name}"


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_the_sdk_models_read_every_field_back(name: str) -> None:
    """Decoded into the SDK's dashboard model and encoded again, the file is unchanged: every field is one the
    schema knows, with a value of its type (a typo'd or misplaced option would be dropped and differ here)."""
    data = committed(name)
    model = Dashboard.from_json(data)
    assert json.loads(json.dumps(model, cls=JSONEncoder)) == data
    assert all(type(panel.options).__name__ == "Options" for panel in model.panels if panel.type_val != "row")


def test_the_sdk_is_the_build_for_the_pinned_grafana() -> None:
    """The SDK's release names encode the Grafana version (`<build>!<grafana version>`): the one installed and the
    one pinned in the dev extras are the build for the image in docker-compose.yml."""
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    grafana = re.fullmatch(r"grafana/grafana:(\d+\.\d+\.\d+)", compose["services"]["grafana"]["image"])
    assert grafana
    dev = tomllib.loads((REPO_ROOT / "exporter/pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    (pin,) = [requirement for requirement in dev if requirement.startswith("grafana-foundation-sdk")]
    pinned = re.fullmatch(r"grafana-foundation-sdk==(\d+)!(\d+\.\d+\.\d+)", pin)
    assert pinned, pin
    assert pinned.group(2) == grafana.group(1)
    assert metadata.version("grafana-foundation-sdk") == f"{pinned.group(1)}!{pinned.group(2)}"


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_schema_version_is_the_sdks(name: str) -> None:
    assert committed(name)["schemaVersion"] == Dashboard().schema_version


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_layout_never_overlaps_and_ids_count_up(name: str) -> None:
    cells: set[tuple[int, int]] = set()
    items = walk(committed(name)["panels"])
    for panel in items:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= panels.WIDTH, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))
    assert [panel["id"] for panel in items] == list(range(1, len(items) + 1))


def test_an_unknown_panel_kind_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown panel kind 'pie' of panel 'x'"):
        panels.build_panel(panels.Panel("x", "d", "short", [("up", "")], kind="pie"))
