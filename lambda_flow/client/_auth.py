"""How the client proves who it is: SigV4 (IAM), a bearer token (JWT), or nothing (local)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..core import ConfigurationError

__all__ = ["Auth", "BearerToken", "SigV4Auth"]

_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")
"""An API Gateway default endpoint, whose host names the region."""


class Auth(Protocol):
    """Adds credentials to a request just before it is sent."""

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """The headers to send: ``headers`` plus whatever proves the caller's identity.

        Args:
            method: the HTTP method.
            url: the full URL, query included, exactly as it will be requested.
            headers: the request's headers so far.
            body: the exact bytes of the body (``b""`` without one).
        """
        ...


class BearerToken:
    """``Authorization: Bearer <token>``, for an API deployed with ``AuthMode=JWT``.

    Args:
        token: the token, or a function returning a fresh one for every request (to follow
            expiring tokens, e.g. from Cognito).
    """

    def __init__(self, token: str | Callable[[], str]) -> None:
        self._token = token

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """``headers`` with the bearer token."""
        token = self._token() if callable(self._token) else self._token
        return {**headers, "Authorization": f"Bearer {token}"}


class SigV4Auth:
    """AWS Signature Version 4 by botocore, for an API deployed with ``AuthMode=IAM``.

    Credentials come from botocore's usual chain (environment, profile, SSO, instance or task
    role) and are re-read for every request, so refreshed credentials are picked up.

    Args:
        region: the API's region; by default the one in an ``execute-api`` URL, else the
            session's configured region.
        service: the signing name (``execute-api`` for API Gateway).
        session: a ``botocore.session.Session`` to take credentials and region from (a new one
            by default); ``boto3.Session()._session`` works too.
        credentials: botocore credentials to use instead of the session's.

    Raises:
        ConfigurationError: botocore is not installed (``pip install 'lambda-flow[aws]'``).
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        service: str = "execute-api",
        session: Any = None,
        credentials: Any = None,
    ) -> None:
        try:
            import botocore.session
        except ImportError:  # pragma: no cover - botocore comes with the aws extra
            raise ConfigurationError(
                "SigV4Auth needs botocore: pip install 'lambda-flow[aws]'"
            ) from None
        self._session = session or botocore.session.Session()
        self._credentials = credentials
        self.region = region
        self.service = service

    def _region_for(self, url: str) -> str:
        if self.region:
            return self.region
        match = _EXECUTE_API_HOST.match(urlsplit(url).hostname or "")
        region = match.group(1) if match else self._session.get_config_variable("region")
        if not region:
            raise ConfigurationError(
                "SigV4Auth needs a region: pass region=..., set AWS_REGION, or use the API's "
                "execute-api URL"
            )
        return str(region)

    def sign(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """``headers`` with ``Authorization``, ``X-Amz-Date`` (and a session token) added.

        Raises:
            ConfigurationError: no AWS credentials were found, or no region.
        """
        from botocore.auth import SigV4Auth as Signer
        from botocore.awsrequest import AWSRequest

        credentials = self._credentials or self._session.get_credentials()
        if credentials is None:
            raise ConfigurationError(
                "SigV4Auth found no AWS credentials (environment, profile or role)"
            )
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        Signer(credentials.get_frozen_credentials(), self.service, self._region_for(url)).add_auth(
            request
        )
        return dict(request.headers.items())
