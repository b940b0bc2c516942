"""The picture a person reads first: per alert that fired, the signal it watches with its thresholds, the
scenario's events and the alert's episodes shaded, under the model's prediction rate."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from .run import BacktestResult, Signal

SEVERITY_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e"}
EVENT_COLOUR = "#7f7f7f"
MAX_SERIES_PER_PANEL = 6
"""More lines than this make a panel unreadable: the ones reaching highest are drawn."""

_HIDDEN_LABELS = ("__name__", "job", "model_name", "model_version")


def _times(points: list[tuple[float, float]]) -> list[datetime]:
    return [datetime.fromtimestamp(t, timezone.utc) for t, _ in points]


def _legend(labels: dict[str, str], common: dict[str, str]) -> str:
    """The labels that tell this series from the others of its panel."""
    shown = {k: v for k, v in labels.items() if k not in _HIDDEN_LABELS and common.get(k) != v}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "value"


def _common(series: list) -> dict[str, str]:
    if not series:
        return {}
    items = set(series[0].labels.items())
    for item in series[1:]:
        items &= set(item.labels.items())
    return dict(items) if len(series) > 1 else {}


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def _clip(axis, values: list[float], thresholds: list[float]) -> None:
    """A y range that shows the thresholds and the 99th percentile of the values: one outlier (a window of three
    rows at start-up) must not flatten the rest."""
    import numpy as np

    finite = np.asarray([v for v in values if np.isfinite(v)])
    if not len(finite):
        return
    top = max(float(np.quantile(finite, 0.99)) * 1.15, *(t * 1.3 for t in thresholds))
    bottom = min(0.0, float(finite.min()))
    if top > bottom:
        axis.set_ylim(bottom, top)


def plot(result: BacktestResult, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    panels: dict[str, list[Signal]] = {}
    for signal in result.signals:
        panels.setdefault(signal.alertname, []).append(signal)
    rows = 1 + len(panels)
    figure, axes = plt.subplots(rows, 1, figsize=(14, 2.4 + 2.3 * rows), sharex=True, squeeze=False)
    axes = axes[:, 0]
    first = axes[0]
    for series in result.volume:
        first.plot(_times(series.points), [v for _, v in series.points], color="#1f77b4", linewidth=1)
    first.set_ylabel("predictions/s")
    first.set_title(f"promml backtest: {result.scenario.name}, {_utc(result.start):%Y-%m-%d %H:%M} to "
                    f"{_utc(result.end):%Y-%m-%d %H:%M} UTC", loc="left", fontsize=11)
    for axis in axes:
        for event in result.scenario.events:
            axis.axvspan(_utc(max(event.start, result.start)), _utc(min(event.end, result.end)), color=EVENT_COLOUR,
                         alpha=0.12, linewidth=0)
    for event in result.scenario.events:
        if event.start <= result.end:
            first.annotate(f" {event.name}", (_utc(max(event.start, result.start)), 0.04),
                           xycoords=("data", "axes fraction"), fontsize=8, color="#404040", va="bottom", ha="left")
    for axis, (name, signals) in zip(axes[1:], panels.items(), strict=True):
        series = signals[0].series
        series = sorted(series, key=lambda s: max((v for _, v in s.points), default=0), reverse=True)
        common = _common(series)
        for item in series[:MAX_SERIES_PER_PANEL]:
            axis.plot(_times(item.points), [v for _, v in item.points], linewidth=1,
                      label=_legend(item.labels, common))
        for signal in signals:
            if signal.threshold is not None:
                axis.axhline(signal.threshold, color=SEVERITY_COLOURS.get(signal.severity, "black"), linestyle="--",
                             linewidth=1, label=f"{signal.severity} > {signal.threshold:g}")
        for episode in result.episodes:
            if episode.alertname == name:
                axis.axvspan(_utc(episode.start), _utc(episode.end if episode.end is not None else result.end),
                             color=SEVERITY_COLOURS.get(episode.severity, "#9467bd"), alpha=0.18, linewidth=0)
        _clip(axis, [v for item in series for _, v in item.points],
              [s.threshold for s in signals if s.threshold is not None])
        axis.set_ylabel(name, fontsize=9)
        expr = signals[0].expr if len(signals[0].expr) < 130 else signals[0].expr[:127] + "..."
        axis.set_title(expr, loc="left", fontsize=8, family="monospace", color="#404040")
        axis.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=timezone.utc))
    axes[-1].set_xlabel("UTC; grey: scenario events; red/orange: critical/warning episodes")
    first.legend(["predictions/s, all replicas"], loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7,
                 frameon=False)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
