"""One family that cannot be written is left out and counted; every other family is served."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from promml.exporter.safe_exposition import SafeExposition


class Families:
    def __init__(self, bad_label: str) -> None:
        self.bad_label = bad_label

    def collect(self):
        good = GaugeMetricFamily("good_first", "Served.", labels=["x"])
        good.add_metric(["a"], 1.0)
        yield good
        bad = GaugeMetricFamily("bad", "Cannot be encoded.", labels=["x"])
        bad.add_metric([self.bad_label], 2.0)
        yield bad
        last = GaugeMetricFamily("good_last", "Served too.")
        last.add_metric([], 3.0)
        yield last


def samples(text: bytes) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode()) for s in family.samples}


def test_a_bad_family_is_dropped_and_counted_per_scrape():
    exposition = SafeExposition(Families("\ud800"), ("model_name",), ("m",))
    first = samples(exposition.render())
    assert first == {
        ("good_first", (("x", "a"),)): 1.0,
        ("good_last", ()): 3.0,
        ("ml_exporter_exposition_errors_total", (("family", "bad"), ("model_name", "m"))): 1.0,
    }
    assert samples(exposition.render())[
        ("ml_exporter_exposition_errors_total", (("family", "bad"), ("model_name", "m")))] == 2.0


def test_without_errors_the_output_is_the_plain_text_format():
    exposition = SafeExposition(Families("fine"), ("model_name",), ("m",))
    assert samples(exposition.render()) == {
        ("good_first", (("x", "a"),)): 1.0, ("bad", (("x", "fine"),)): 2.0, ("good_last", ()): 3.0,
    }
    assert exposition.errors == {}
