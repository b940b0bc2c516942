"""Whether the exporter measures anything: the ways a running, "ready" exporter can be blind, named and explained.

Why: every one of these leaves the process up and scraped while no drift or accuracy series is ever computed for
the model (a glob that matches nothing, a directory given as the log, a `model_version` other than the one the
model logs, feature names other than the baseline's), and nothing else would say so. The service judges them at
every recompute, from the paths and from the lines read since the last one; each holds until lines show
otherwise, and is reported as a log line, a `/readyz` check and `ml_exporter_misconfiguration{reason}`.
"""

from __future__ import annotations

import difflib
import glob
import os
from collections import Counter
from collections.abc import Iterable, Sequence

NO_LOG_FILES = "no_log_files"
LOG_PATH_IS_DIRECTORY = "log_path_is_directory"
OTHER_MODEL_ONLY = "other_model_only"
FEATURES_MISMATCH = "features_mismatch"
REASONS = (NO_LOG_FILES, LOG_PATH_IS_DIRECTORY, OTHER_MODEL_ONLY, FEATURES_MISMATCH)
"""Every reason, each exported as 0 or 1 so a query or dashboard sees the reasons that do not hold too."""

REPORT_AGAIN_SECONDS = 600.0
"""A lasting problem is logged when it appears and again every 10 minutes, so a log read at any time shows it."""

MAX_NAMED = 5
"""Names (models, features) quoted in one message: enough to recognise the mistake, short enough to read."""


def _some(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(repr(name) for name in names[:MAX_NAMED])
    return shown + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")


def log_path_problems(patterns: Sequence[str]) -> dict[str, str]:
    """`no_log_files` when no file matches the prediction log patterns, `log_path_is_directory` when one matches
    a directory (a directory is never read), each with what to change."""
    matches = [path for pattern in patterns for path in sorted(glob.glob(pattern))]
    directories = [path for path in matches if os.path.isdir(path)]
    problems = {}
    if directories:
        example = os.path.join(directories[0], "predictions*.jsonl")
        problems[LOG_PATH_IS_DIRECTORY] = (
            f"prediction_logs matches the directory {_some(directories)}, which is not read: give the log files "
            f"inside it, e.g. prediction_logs: {example!r}"
        )
    if len(directories) == len(matches) and not directories:
        problems[NO_LOG_FILES] = (
            f"no file matches prediction_logs {_some(patterns)}: check the path (the model writes "
            "<log_dir>/predictions.jsonl, or predictions-<pid>.jsonl under a multiprocess server, at its first "
            "prediction)"
        )
    return problems


def other_model_message(model: tuple[str, str], seen: Counter[tuple[str, str]]) -> str:
    """Every line read was another model's: which ones, and the keys to change."""
    found = _some(f"{name} {version}" for (name, version), _ in seen.most_common())
    return (f"every prediction line read is for another model or version ({found}), none for the configured "
            f"{model[0]} {model[1]}: set model_name and model_version to what the model logs (as quoted strings)")


def features_message(absent: Sequence[str], unknown: Iterable[str], baseline: Sequence[str]) -> str:
    """Baseline features never read, and the names read instead with their closest baseline names."""
    hints = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(name, baseline, n=1, cutoff=0.6)
        hints.append(f"{name!r} (closest baseline name: {close[0]!r})" if close else repr(name))
    message = f"baseline feature(s) {_some(absent)} are absent from every prediction line read"
    if hints:
        shown = ", ".join(hints[:MAX_NAMED]) + (f" and {len(hints) - MAX_NAMED} more" if len(hints) > MAX_NAMED
                                                else "")
        message += f"; the lines have {shown} instead"
    return message + ": log the features under the baseline's names, or rebuild the baseline from the same columns"
