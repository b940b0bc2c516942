"""The demo's shared secret for `POST /feedback`: read by the model server, which requires it, and by the traffic
generator, which sends it.

Why a token at all: prediction ids are unguessable, but an id is no credential: whoever learns one could label the
prediction, and the first label wins. An endpoint that takes labels must know who sends them; a bearer token from a
mounted secret file is the simplest way that works behind any proxy (docs/instrumentation.md, Security).
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

FEEDBACK_TOKEN_ENV = "PROMML_FEEDBACK_TOKEN"
FEEDBACK_TOKEN_FILE_ENV = "PROMML_FEEDBACK_TOKEN_FILE"


def feedback_token_from_env() -> str | None:
    """The token `/feedback` requires: the content of `$PROMML_FEEDBACK_TOKEN_FILE` (a mounted secret), else
    `$PROMML_FEEDBACK_TOKEN`; None when neither is set."""
    path = os.environ.get(FEEDBACK_TOKEN_FILE_ENV)
    token = Path(path).read_text(encoding="utf-8").strip() if path else os.environ.get(FEEDBACK_TOKEN_ENV, "")
    return token or None


def bearer_matches(authorization: str, token: str) -> bool:
    """Does an `Authorization` header carry `Bearer <token>`? Compared in constant time, so that the answer's timing
    does not leak the token."""
    return hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode())
