"""CorePlexML Python SDK.

    from coreplexml import CorePlexClient
    client = CorePlexClient(base_url="http://127.0.0.1:8080", api_key="cpx_…")
    project = client.projects.create(name="churn")
"""

from . import webhooks
from ._objects import APIObject, Page
from ._version import __version__
from .client import DEFAULT_BASE_URL, CorePlexClient
from .exceptions import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectionError,
    CorePlexError,
    JobFailedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TimeoutError,
    ValidationError,
)

__all__ = [
    "__version__",
    "CorePlexClient",
    "DEFAULT_BASE_URL",
    "APIObject",
    "Page",
    "webhooks",
    "CorePlexError",
    "APIError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
    "ConnectionError",
    "TimeoutError",
    "JobFailedError",
]
