from pathlib import Path

import pytest
import yaml

from promml.exporter.config import ConfigError, WindowSpec, load_config, parse_config, window_name

MINIMAL = {
    "model_name": "credit-risk",
    "model_version": "1.0.0",
    "baseline": "baseline.json",
    "prediction_logs": "logs/predictions*.jsonl",
}


def test_minimal_config_gets_documented_defaults():
    config = parse_config(MINIMAL, Path("/etc/promml"))
    assert config.baseline == Path("/etc/promml/baseline.json")
    assert config.prediction_logs == ("/etc/promml/logs/predictions*.jsonl",)
    assert config.feedback_logs == ()
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 9102)
    assert (config.window_seconds, config.slot_seconds, config.recompute_interval_seconds) == (3600, 60, 15)
    assert config.checkpoint_path is None  # no checkpoint: every start reads the logs from their start
    assert config.checkpoint_interval_seconds == 60.0
    assert config.early_label_grace_seconds == 30.0
    assert config.max_future_seconds == 300.0
    assert config.follow_symlinks_out_of_log_dir is False


def test_full_config_from_file(tmp_path):
    (tmp_path / "exporter.yml").write_text(
        "model_name: m\nmodel_version: '2'\nbaseline: /data/b.json\n"
        "prediction_logs: [/logs/a.jsonl, /logs/b*.jsonl]\nfeedback_logs: /logs/feedback.jsonl\n"
        "listen: 127.0.0.1:9200\nwindow_seconds: 600\nslot_seconds: 10\nrecompute_interval_seconds: 5\n"
        "poll_interval_seconds: 0.5\nmax_pending_predictions: 1000\nearly_label_grace_seconds: 0\n"
        "checkpoint_interval_seconds: 5\n"
    )
    config = load_config(tmp_path / "exporter.yml")
    assert config.model_version == "2"
    assert config.prediction_logs == ("/logs/a.jsonl", "/logs/b*.jsonl")
    assert config.feedback_logs == ("/logs/feedback.jsonl",)
    assert (config.listen_host, config.listen_port, config.window_seconds, config.slot_seconds) == (
        "127.0.0.1", 9200, 600, 10,
    )
    assert (config.poll_interval_seconds, config.max_pending_predictions) == (0.5, 1000)
    assert config.early_label_grace_seconds == 0.0
    assert config.checkpoint_interval_seconds == 5.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"windw_seconds": 5}, "unknown key 'windw_seconds'; did you mean 'window_seconds'\\?"),
        ({"zzz": 5}, "unknown key 'zzz'; known keys: model_name, "),
        ({"windows": []}, "windows: expected a non-empty list"),
        ({"windows": [{"name": "1h"}]}, "windows\\[0\\].seconds: missing"),
        ({"windows": [{"seconds": 60, "secs": 1}]}, "windows\\[0\\]: unknown key 'secs'; did you mean 'seconds'"),
        ({"windows": [{"seconds": 60}, {"name": "1m", "seconds": 120}]}, "windows\\[1\\].name: '1m' names two"),
        ({"windows": [{"name": "1h", "seconds": 3600}, {"name": "hour", "seconds": 3600}]},
         "windows\\[1\\].seconds: 3600 s is already the length of window '1h'"),
        ({"windows": [{"seconds": 60}], "window_seconds": 60}, "either window_seconds or windows"),
        ({"windows": [{"seconds": 60}], "slot_seconds": 120}, "slot_seconds: expected at most the shortest window"),
        ({"label_ttl_seconds": 7200}, "label_ttl_seconds: expected at most the longest window \\(3600 s\\)"),
        ({"sample_size": 0}, "sample_size: expected a positive integer"),
        ({"positive_class": [1]}, "positive_class: expected a class"),
        ({"model_name": ""}, "model_name: expected a non-empty string"),
        ({"prediction_logs": []}, "prediction_logs: expected at least one"),
        ({"prediction_logs": [3]}, "prediction_logs: expected a path or glob"),
        ({"window_seconds": -1}, "window_seconds: expected a positive number"),
        ({"window_seconds": "1h"}, "window_seconds: expected a positive number"),
        ({"slot_seconds": 7200}, "slot_seconds: expected at most window_seconds"),
        ({"listen": "9102"}, "listen: expected HOST:PORT"),
        ({"listen": "0.0.0.0:99999"}, "listen: expected HOST:PORT"),
        ({"max_pending_predictions": 0}, "max_pending_predictions: expected a positive integer"),
        ({"checkpoint_path": ""}, "checkpoint_path: expected a non-empty string"),
        ({"checkpoint_path": ["a"]}, "checkpoint_path: expected a non-empty string"),
        ({"segments": {"region": 1}}, "segments: expected a list of feature names such as \\[region\\]"),
        ({"segments": ["region", ""]}, "segments: expected a list of feature names"),
        ({"segments": list("abcdef")}, "segments: expected at most 5 features, got 6"),
        ({"segments": ["region", "age", "region"]}, "segments: 'region' is listed twice"),
        ({"max_segment_values": 0}, "max_segment_values: expected a positive integer"),
        ({"min_segment_rows": 2.5}, "min_segment_rows: expected a positive integer"),
        ({"segment": ["region"]}, "unknown key 'segment'; did you mean 'segments'\\?"),
        ({"early_label_grace_seconds": -1}, "early_label_grace_seconds: expected a number of seconds, 0 or more"),
        ({"early_label_grace_seconds": True}, "early_label_grace_seconds: expected a number of seconds"),
        ({"follow_symlinks_out_of_log_dir": "yes"}, "follow_symlinks_out_of_log_dir: expected true or false"),
        ({"max_future_seconds": -1}, "max_future_seconds: expected a number of seconds, 0 or more"),
        ({"window_seconds": 86400 * 30, "slot_seconds": 60},
         "slot_seconds: the longest window \\(2592000 s\\) plus max_future_seconds \\(300\\) would need more than "
         "20000 slots of 60 s"),
        ({"window_seconds": 60 * 19_990, "slot_seconds": 60, "max_future_seconds": 600}, "would need more than 20000"),
        ({"checkpoint_interval_seconds": 0}, "checkpoint_interval_seconds: expected a positive number of seconds"),
    ],
)
def test_bad_values_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**MINIMAL, **change})


def test_missing_keys_and_bad_documents():
    with pytest.raises(ConfigError, match="missing required key\\(s\\): baseline, prediction_logs"):
        parse_config({"model_name": "m", "model_version": "1"})
    with pytest.raises(ConfigError, match="YAML mapping"):
        parse_config(["a"])


def test_unreadable_or_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yml")
    (tmp_path / "bad.yml").write_text("model_name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yml")


def test_checkpoint_path_is_resolved_against_the_config_folder():
    assert parse_config({**MINIMAL, "checkpoint_path": "state/checkpoint.json"}, Path("/etc/promml")).checkpoint_path \
        == Path("/etc/promml/state/checkpoint.json")
    assert parse_config({**MINIMAL, "checkpoint_path": "/var/lib/promml/c.json"}).checkpoint_path == Path(
        "/var/lib/promml/c.json"
    )


def test_windows_labels_and_defaults():
    config = parse_config({**MINIMAL, "windows": [{"name": "1h", "seconds": 3600}, {"seconds": 86400}],
                           "label_ttl_seconds": 7200, "positive_class": "yes"})
    assert config.windows == (WindowSpec("1h", 3600.0), WindowSpec("24h", 86400.0))
    assert (config.window_seconds, config.longest_window_seconds, config.label_ttl) == (3600, 86400, 7200)
    assert (config.sample_size, config.positive_class) == (1000, "yes")
    legacy = parse_config({**MINIMAL, "window_seconds": 300})
    assert legacy.windows == (WindowSpec("5m", 300.0),) and legacy.label_ttl == 300


@pytest.mark.parametrize(("seconds", "name"), [(300, "5m"), (3600, "1h"), (86400, "24h"), (90, "90s"), (0.5, "0.5s")])
def test_window_names(seconds, name):
    assert window_name(seconds) == name


def test_segments_and_their_defaults():
    assert (parse_config(MINIMAL).segments, parse_config(MINIMAL).max_segment_values,
            parse_config(MINIMAL).min_segment_rows) == ((), 20, 30)
    config = parse_config({**MINIMAL, "segments": ["region", "age"], "max_segment_values": 5, "min_segment_rows": 100})
    assert (config.segments, config.max_segment_values, config.min_segment_rows) == (("region", "age"), 5, 100)
    assert parse_config({**MINIMAL, "segments": "region"}).segments == ("region",)


def test_text_with_no_utf8_form_is_rejected(tmp_path):
    """YAML's surrogate escapes give lone surrogates (PyYAML keeps even a pair as two halves): as a label they
    would make every scrape fail."""
    path = tmp_path / "exporter.yml"
    for text, where in (('model_name: "\\ud800"', "model_name"), ('windows: [{name: "\\ud83d\\ude00", seconds: 60}]',
                                                                    "windows[0].name")):
        path.write_text(f"model_version: '1'\nbaseline: b.json\nprediction_logs: p.jsonl\n{text}\n")
        with pytest.raises(ConfigError, match=rf"^{where.replace('[', '.').replace(']', '.')}: text .* has no UTF-8"):
            load_config(path)


@pytest.mark.parametrize("text", ["1.10", "2", "0.9"])
def test_a_version_yaml_reads_as_a_number_is_an_error_that_says_to_quote_it(tmp_path, text):
    """YAML reads `model_version: 1.10` as the number 1.1: taking its text would name another version."""
    (tmp_path / "exporter.yml").write_text(f"model_name: m\nmodel_version: {text}\nbaseline: b.json\n"
                                           "prediction_logs: p.jsonl\n")
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "exporter.yml")
    assert str(raised.value) == (
        f"model_version: expected a string, but YAML read {yaml.safe_load(text)!r} as a number (`1.10` would "
        f'become 1.1): quote it exactly as the model logs it, e.g. model_version: "{yaml.safe_load(text)}"')
    (tmp_path / "exporter.yml").write_text(f"model_name: m\nmodel_version: '{text}'\nbaseline: b.json\n"
                                           "prediction_logs: p.jsonl\n")
    assert load_config(tmp_path / "exporter.yml").model_version == text
