"""The configuration checks' judgements and messages: what is wrong, and what to change, named exactly."""

from __future__ import annotations

from collections import Counter

from promml.exporter.misconfiguration import features_message, log_path_problems, other_model_message


def test_a_glob_that_matches_nothing(tmp_path):
    pattern = str(tmp_path / "predictions*.jsonl")
    assert log_path_problems([pattern]) == {"no_log_files": (
        f"no file matches prediction_logs {pattern!r}: check the path (the model writes <log_dir>/predictions.jsonl, "
        "or predictions-<pid>.jsonl under a multiprocess server, at its first prediction)")}


def test_a_directory_is_named_with_the_pattern_to_give_instead(tmp_path):
    (tmp_path / "logs").mkdir()
    assert log_path_problems([str(tmp_path / "logs")]) == {"log_path_is_directory": (
        f"prediction_logs matches the directory {str(tmp_path / 'logs')!r}, which is not read: give the log files "
        f"inside it, e.g. prediction_logs: {str(tmp_path / 'logs' / 'predictions*.jsonl')!r}")}
    (tmp_path / "logs" / "predictions.jsonl").write_text("")
    assert set(log_path_problems([str(tmp_path / "logs"), str(tmp_path / "logs" / "*.jsonl")])) == {
        "log_path_is_directory"}  # a file is read, but the directory given too is not
    assert log_path_problems([str(tmp_path / "logs" / "*.jsonl")]) == {}


def test_other_models_are_named_most_frequent_first():
    seen = Counter({("credit-risk", "1.1"): 40, ("fraud", "3"): 2})
    assert other_model_message(("credit-risk", "1.10"), seen) == (
        "every prediction line read is for another model or version ('credit-risk 1.1', 'fraud 3'), none for the "
        "configured credit-risk 1.10: set model_name and model_version to what the model logs (as quoted strings)")


def test_features_read_instead_get_their_closest_baseline_name():
    baseline = ["mean_radius", "mean_texture", "worst area"]
    message = features_message(["mean_radius", "mean_texture"], {"mean radius", "mean texture", "zzz"}, baseline)
    assert message == (
        "baseline feature(s) 'mean_radius', 'mean_texture' are absent from every prediction line read; the lines "
        "have 'mean radius' (closest baseline name: 'mean_radius'), 'mean texture' (closest baseline name: "
        "'mean_texture'), 'zzz' instead: log the features under the baseline's names, or rebuild the baseline from "
        "the same columns")


def test_long_lists_are_cut_to_five_names():
    names = [f"f{i}" for i in range(8)]
    assert features_message(names, set(), names).startswith(
        "baseline feature(s) 'f0', 'f1', 'f2', 'f3', 'f4' and 3 more are absent")
