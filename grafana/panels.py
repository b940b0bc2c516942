"""The promml dashboards' conventions, built with Grafana's own dashboards-as-code library (grafana-foundation-sdk).

Why a layer over the SDK: seven dashboards share variables, datasource, layout and panel conventions (every panel
has a description, a unit, and thresholds where an alert watches the signal). A panel is written as a `Panel`
spec of a few lines; `build_panel` turns it into the SDK's builder for its kind, and `dashboard` lays the panels out
left to right, top to bottom, and wraps them in the shared dashboard settings. The SDK produces schema-valid JSON
by construction; its build is pinned (exporter/pyproject.toml) to the Grafana release in docker-compose.yml.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import bargauge, heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models import heatmap as heatmap_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
WIDTH = 24
MODEL = 'model_name="$model", model_version="$version"'
PRIMARY = ("and on (instance, model_name, model_version, window) "
           f"model_window:ml_window_prediction_rows:primary{{{MODEL}}}")
"""Appended to a `window`-labelled selector: keeps each exporter's primary window only, as the alerts judge it
(recording.yml), so a panel draws one line per feature and exporter however many windows are configured."""
FLEET_PRIMARY = ("and on (model_name, model_version, window) "
                 f"model_window:ml_window_prediction_rows:primary{{{MODEL}}}")
"""The same for the fleet-wide recording rules, which have no `instance`: the window that is primary."""


@dataclass
class Panel:
    """One panel: the fields every panel needs, and the few that vary."""

    title: str
    description: str
    unit: str
    queries: list[tuple[str, str]]  # (expr, legend)
    kind: str = "timeseries"  # timeseries, stat, bargauge or heatmap
    width: int = 12
    height: int = 8
    thresholds: list[tuple[str, float]] = field(default_factory=list)  # (colour, from value), after the base
    base_color: str = "green"
    minimum: float | None = None
    maximum: float | None = None
    decimals: float | None = None
    stack: bool = False
    bars: bool = False
    instant: bool = False
    interval: str | None = None
    thresholds_style: str | None = None
    """How a time series draws its thresholds; default: dashed lines when there are thresholds, else none."""
    legend_calcs: list[str] = field(default_factory=list)
    legend_table: bool = False
    graph_mode: str = "area"  # stat: a sparkline behind the value, or "none"
    overrides: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)
    """(query refId, [(property, value)]): settings for one query's series only."""
    mappings: dict[str, str] = field(default_factory=dict)  # value -> text
    time_from: str | None = None  # a relative time range of the panel's own, e.g. "now/d"
    y_axis: tuple[str, str] | None = None  # heatmap: (label, unit) of the bucket axis; default: no label, `unit`


@dataclass
class Row:
    title: str
    collapsed: list[Panel | Any] = field(default_factory=list)
    """Panels hidden in the row until it is opened; an open row (empty list) is followed by its panels."""


@dataclass
class Custom:
    """A panel written directly with the SDK, for the rare kind `Panel` does not cover (e.g. a table)."""

    builder: Any
    width: int
    height: int


def thresholds(steps: list[tuple[str, float]], base_color: str = "green") -> dashboard_builders.ThresholdsConfig:
    return dashboard_builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(
        [models.Threshold(color=base_color, value=None)]
        + [models.Threshold(color=colour, value=value) for colour, value in steps])


def query(expr: str, legend: str, ref_id: str, *, instant: bool = False, interval: str | None = None,
          format_val: prometheus_models.PromQueryFormat | None = None) -> prometheus.Dataquery:
    target = (prometheus.Dataquery().datasource(DATASOURCE).editor_mode(prometheus_models.QueryEditorMode.CODE)
              .expr(expr).legend_format(legend).ref_id(ref_id))
    target = target.instant() if instant else target.range()
    if interval:
        target = target.interval(interval)
    if format_val is not None:
        target = target.format(format_val)
    return target


def reduce_last() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def _timeseries(panel: Panel) -> timeseries.Panel:
    style = panel.thresholds_style or ("dashed" if panel.thresholds else "off")
    legend = (common_builders.VizLegendOptions().show_legend(True).calcs(panel.legend_calcs)
              .display_mode(common.LegendDisplayMode.TABLE if panel.legend_table else common.LegendDisplayMode.LIST)
              .placement(common.LegendPlacement.BOTTOM))
    return (
        timeseries.Panel()
        .color_scheme(dashboard_builders.FieldColor().mode(models.FieldColorModeId.PALETTE_CLASSIC))
        .draw_style(common.GraphDrawStyle.BARS if panel.bars else common.GraphDrawStyle.LINE)
        .fill_opacity(60 if panel.bars else 10).line_width(1).show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(common_builders.StackingConfig().group("A").mode(
            common.StackingMode.NORMAL if panel.stack else common.StackingMode.NONE))
        .thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode(style)))
        .legend(legend)
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                 .sort(common.SortOrder.DESCENDING))
    )


def _heatmap(panel: Panel) -> heatmap.Panel:
    label, unit = panel.y_axis or ("", panel.unit)
    return (
        heatmap.Panel().calculate(False).cell_gap(1)
        .color(heatmap.HeatmapColorOptions().mode(heatmap_models.HeatmapColorMode.SCHEME).scheme("Oranges")
               .steps(64))
        .y_axis(heatmap.YAxisConfig().axis_placement(common.AxisPlacement.LEFT).axis_label(label).unit(unit))
        .mode(common.TooltipDisplayMode.SINGLE).show_legend()
        .scale_distribution(common_builders.ScaleDistributionConfig().type(common.ScaleDistribution.LINEAR))
        .hide_from(common_builders.HideSeriesConfig().legend(False).tooltip(False).viz(False))
    )


def _stat(panel: Panel) -> stat.Panel:
    return (
        stat.Panel().color_scheme(dashboard_builders.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode(panel.graph_mode))
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME).reduce_options(reduce_last())
    )


def _bargauge(panel: Panel) -> bargauge.Panel:
    return (
        bargauge.Panel().color_scheme(dashboard_builders.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .display_mode(common.BarGaugeDisplayMode.GRADIENT).orientation(common.VizOrientation.HORIZONTAL)
        .show_unfilled(True).reduce_options(reduce_last())
    )


KINDS = {"timeseries": _timeseries, "heatmap": _heatmap, "stat": _stat, "bargauge": _bargauge}


def build_panel(panel: Panel) -> Any:
    """The SDK builder of one panel (without its place on the grid and its id, which `dashboard` sets)."""
    if panel.kind not in KINDS:
        raise ValueError(f"unknown panel kind {panel.kind!r} of panel {panel.title!r}")
    builder = KINDS[panel.kind](panel).title(panel.title).description(panel.description).datasource(DATASOURCE)
    builder = builder.unit(panel.unit)
    if panel.kind != "heatmap":
        builder = builder.thresholds(thresholds(panel.thresholds, panel.base_color)).mappings([
            models.ValueMap(options={value: models.ValueMappingResult(text=text, index=index)
                                     for index, (value, text) in enumerate(panel.mappings.items())})
        ] if panel.mappings else [])
    if panel.minimum is not None:
        builder = builder.min(panel.minimum)
    if panel.maximum is not None:
        builder = builder.max(panel.maximum)
    if panel.decimals is not None:
        builder = builder.decimals(panel.decimals)
    if panel.time_from:
        builder = builder.time_from(panel.time_from).hide_time_override(True)
    for ref_id, properties in panel.overrides:
        builder = builder.override_by_query(ref_id, [models.DynamicConfigValue(id_val=name, value=value)
                                                     for name, value in properties])
    format_val = prometheus_models.PromQueryFormat.HEATMAP if panel.kind == "heatmap" else None
    return builder.targets([
        query(expr, legend, chr(ord("A") + index), instant=panel.instant, interval=panel.interval,
              format_val=format_val)
        for index, (expr, legend) in enumerate(panel.queries)
    ])


def _variables() -> list[Any]:
    def by_query(name: str, label: str, definition: str) -> dashboard_builders.QueryVariable:
        return (dashboard_builders.QueryVariable(name).label(label).datasource(DATASOURCE).query(definition)
                .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(models.VariableSort.ALPHABETICAL_ASC)
                .include_all(False).multi(False))

    return [
        dashboard_builders.DatasourceVariable("datasource").label("Data source").type("prometheus")
        .include_all(False).multi(False),
        by_query("model", "Model", "label_values(ml_predictions_total, model_name)"),
        by_query("version", "Version", 'label_values(ml_predictions_total{model_name="$model"}, model_version)'),
    ]


def _place(builder: Any, panel_id: int, x: int, y: int, width: int, height: int) -> Any:
    return builder.id(panel_id).grid_pos(models.GridPos(h=height, w=width, x=x, y=y))


def _size(item: Panel | Custom) -> tuple[int, int]:
    return item.width, item.height


def _builder(item: Panel | Custom) -> Any:
    return item.builder if isinstance(item, Custom) else build_panel(item)


def dashboard(uid: str, title: str, description: str, items: list[Panel | Row | Custom], *,
              time_from: str = "now-6h", links: bool = True) -> dashboard_builders.Dashboard:
    """The dashboard builder: items laid out left to right, top to bottom; a Row starts a new line. Ids count up
    from 1 in that order; a collapsed row's panels are laid out below it as they will be once it is opened."""
    built = (
        dashboard_builders.Dashboard(title).uid(uid).description(description).tags(["promml", "ml-monitoring"])
        .readonly().tooltip(models.DashboardCursorSync.CROSSHAIR).refresh("30s").time(time_from, "now")
        .timezone("browser").fiscal_year_start_month(0).week_start("").version(1)
        .annotation(dashboard_builders.AnnotationQuery().built_in(1).name("Annotations & Alerts")
                    .datasource(models.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                    .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)").type("dashboard"))
        .variables(_variables())
    )
    if links:
        built = built.link(dashboard_builders.DashboardLink("promml dashboards")
                           .type(models.DashboardLinkType.DASHBOARDS).tags(["promml"]).as_dropdown(True)
                           .include_vars(True).keep_time(True))
    x, y, line_height, panel_id = 0, 0, 0, 1

    def lay_out(item: Panel | Custom) -> Any:
        nonlocal x, y, line_height, panel_id
        width, height = _size(item)
        if x + width > WIDTH:
            x, y, line_height = 0, y + line_height, 0
        placed = _place(_builder(item), panel_id, x, y, width, height)
        x, line_height, panel_id = x + width, max(line_height, height), panel_id + 1
        return placed

    for item in items:
        if isinstance(item, Row):
            y += line_height
            row = (dashboard_builders.Row(item.title).id(panel_id).collapsed(bool(item.collapsed))
                   .grid_pos(models.GridPos(h=1, w=WIDTH, x=0, y=y)))
            x, y, line_height, panel_id = 0, y + 1, 0, panel_id + 1
            for hidden in item.collapsed:
                row = row.with_panel(lay_out(hidden))
            built = built.with_row(row)
            continue
        built = built.with_panel(lay_out(item))
    return built


def render(built: dashboard_builders.Dashboard) -> str:
    """The dashboard's JSON, as committed under grafana/dashboards/."""
    return json.dumps(built.build(), cls=JSONEncoder, indent=2) + "\n"
