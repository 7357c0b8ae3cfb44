"""The client's authentication: SigV4 against AWS's published vector and an independent
implementation of the algorithm, and bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from botocore.credentials import Credentials

from lambda_flow import ConfigurationError
from lambda_flow.client import BearerToken, SigV4Auth

# AWS's Signature Version 4 test suite, case "get-vanilla" (aws-sig-v4-test-suite).
VECTOR_CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
VECTOR_TIME = datetime(2015, 8, 30, 12, 36, 0)
VECTOR_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
    "SignedHeaders=host;x-amz-date, "
    "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
)


@pytest.fixture
def frozen_botocore_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    import botocore.auth

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: VECTOR_TIME)
    return VECTOR_TIME


def test_sigv4_matches_the_aws_test_suite_vector(frozen_botocore_clock: datetime) -> None:
    auth = SigV4Auth(region="us-east-1", service="service", credentials=VECTOR_CREDENTIALS)

    headers = auth.sign("GET", "https://example.amazonaws.com/", {}, b"")

    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["Authorization"] == VECTOR_AUTHORIZATION


# -- an independent SigV4 verifier (the algorithm as AWS documents it, without botocore) --------
def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _expected_signature(
    method: str, url: str, headers: dict[str, str], body: bytes, secret: str
) -> tuple[str, str]:
    """The SignedHeaders and Signature a verifier computes for the request as sent."""
    parts = urlsplit(url)
    lowered = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    lowered["host"] = parts.netloc
    authorization = lowered["authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    scope = authorization.split("Credential=")[1].split(",")[0].split("/", 1)[1]
    date, region, service, _ = scope.split("/")
    # Non-S3 services: each segment URI-encoded twice, i.e. the path as sent encoded once more.
    canonical_uri = quote(parts.path or "/", safe="/~")
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(parse_qsl(parts.query, keep_blank_values=True))
    )
    canonical = "\n".join(
        [
            method,
            canonical_uri,
            query,
            "".join(f"{name}:{lowered[name]}\n" for name in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            lowered["x-amz-date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return ";".join(signed), hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "https://abc123.execute-api.eu-west-1.amazonaws.com/workflows/greet/start", b"{}"),
        (
            "GET",
            "https://abc123.execute-api.eu-west-1.amazonaws.com/runs?workflow=a%20b&limit=2",
            b"",
        ),
        ("POST", "https://api.example.com/workflows/odd%20name/run?timeout=1000ms", b'{"x":1}'),
    ],
)
def test_sigv4_signatures_verify_independently(method: str, url: str, body: bytes) -> None:
    credentials = Credentials("AKIDEXAMPLE", "secret/key", token="session-token")
    auth = SigV4Auth(region="eu-west-1", credentials=credentials)

    headers = auth.sign(method, url, {"Content-Type": "application/json"}, body)

    signed, signature = _expected_signature(method, url, headers, body, "secret/key")
    assert headers["Authorization"].endswith(f"Signature={signature}")
    assert {"content-type", "host"} <= set(signed.split(";"))
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "session-token"


def test_sigv4_takes_the_region_from_the_api_url_or_the_session() -> None:
    class Session:
        def __init__(self, region: str | None) -> None:
            self.region = region

        def get_config_variable(self, name: str) -> Any:
            return self.region if name == "region" else None

        def get_credentials(self) -> Credentials:
            return VECTOR_CREDENTIALS

    from_url = SigV4Auth(session=Session("us-west-2"))
    headers = from_url.sign("GET", "https://x1.execute-api.ap-south-1.amazonaws.com/runs", {}, b"")
    assert "/ap-south-1/execute-api/" in headers["Authorization"]

    from_session = SigV4Auth(session=Session("us-west-2"))
    headers = from_session.sign("GET", "https://api.example.com/runs", {}, b"")
    assert "/us-west-2/execute-api/" in headers["Authorization"]

    with pytest.raises(ConfigurationError, match="region"):
        SigV4Auth(session=Session(None)).sign("GET", "https://api.example.com/runs", {}, b"")


def test_sigv4_without_credentials_is_a_configuration_error() -> None:
    class Session:
        def get_config_variable(self, name: str) -> Any:
            return "us-east-1"

        def get_credentials(self) -> None:
            return None

    with pytest.raises(ConfigurationError, match="credentials"):
        SigV4Auth(session=Session()).sign("GET", "https://api.example.com/runs", {}, b"")


def test_bearer_tokens_fixed_or_fresh_per_request() -> None:
    fixed = BearerToken("t0k").sign("GET", "https://x/runs", {"Accept": "application/json"}, b"")
    assert fixed == {"Accept": "application/json", "Authorization": "Bearer t0k"}

    tokens = iter(["one", "two"])
    fresh = BearerToken(lambda: next(tokens))
    assert fresh.sign("GET", "https://x/runs", {}, b"")["Authorization"] == "Bearer one"
    assert fresh.sign("GET", "https://x/runs", {}, b"")["Authorization"] == "Bearer two"
