"""The demo's feedback token: read from a mounted file or the environment, compared in constant time."""

from __future__ import annotations

from promml.demo.auth import bearer_matches, feedback_token_from_env


def test_the_token_comes_from_a_file_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMML_FEEDBACK_TOKEN_FILE", raising=False)
    monkeypatch.delenv("PROMML_FEEDBACK_TOKEN", raising=False)
    assert feedback_token_from_env() is None
    monkeypatch.setenv("PROMML_FEEDBACK_TOKEN", "from-env")
    assert feedback_token_from_env() == "from-env"
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv("PROMML_FEEDBACK_TOKEN_FILE", str(tmp_path / "empty"))
    assert feedback_token_from_env() is None


def test_only_the_exact_bearer_header_matches():
    assert bearer_matches("Bearer s3cret", "s3cret")
    assert not any(bearer_matches(header, "s3cret") for header in ("", "s3cret", "Bearer s3cre", "bearer s3cret",
                                                                   "Bearer s3cret ", "Basic s3cret"))
