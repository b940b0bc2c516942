"""The dashboards written as code are committed exactly as grafana/build.py generates them."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from conftest import REPO_ROOT

spec = importlib.util.spec_from_file_location("grafana_build", REPO_ROOT / "grafana" / "build.py")
build = importlib.util.module_from_spec(spec)
sys.modules["grafana_build"] = build  # dataclasses look their module up while the class is built
spec.loader.exec_module(build)


@pytest.mark.parametrize("name", sorted(build.DASHBOARDS))
def test_committed_json_is_what_the_builder_generates(name: str) -> None:
    committed = (REPO_ROOT / "grafana" / "dashboards" / name).read_text()
    assert committed == build.render(build.DASHBOARDS[name]), f"run `python grafana/build.py` and commit {name}"


def test_layout_never_overlaps() -> None:
    for make in build.DASHBOARDS.values():
        cells = set()
        for panel in make()["panels"]:
            grid = panel["gridPos"]
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, panel["title"]
                    cells.add((x, y))
            assert grid["x"] + grid["w"] <= build.WIDTH
