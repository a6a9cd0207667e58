"""Exceptions raised by the CorePlexML SDK.

Every error the server returns has the body ``{"error": {"code", "message", "details"}}``; the SDK turns
it into one of the classes below, chosen by HTTP status, so callers can write
``except NotFoundError`` instead of looking at status codes. The server's ``code``, ``message`` and
``details`` are kept on the exception.
"""

import builtins
from typing import Any, Dict, Optional

__all__ = [
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


class CorePlexError(Exception):
    """Base class of every error raised by the SDK.

    Attributes:
        status: HTTP status of the response (``None`` when no response arrived).
        code: the server's snake_case error code, e.g. ``"validation_failed"``.
        message: what is wrong and how to fix it, as the server said it.
        details: structured details from the server (a dict, possibly empty).
        method, url: the request that failed, when there was one.
        response: the ``requests.Response``, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        code: Optional[str] = None,
        details: Optional[Dict[str, Any]] = None,
        method: Optional[str] = None,
        url: Optional[str] = None,
        response: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details = details if details is not None else {}
        self.method = method
        self.url = url
        self.response = response

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.code:
            parts.append(self.code)
        prefix = " ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r})"
        )


class APIError(CorePlexError):
    """The server answered with an error status."""


class BadRequestError(APIError):
    """400: the request could not be understood."""


class AuthenticationError(APIError):
    """401: the API key is missing, unknown or revoked."""


class PermissionDeniedError(APIError):
    """403: the key is valid but its role does not allow this."""


class NotFoundError(APIError):
    """404: no such resource, or it belongs to another organization."""


class ConflictError(APIError):
    """409: the request conflicts with the current state (e.g. a forbidden lifecycle transition)."""


class PayloadTooLargeError(APIError):
    """413: the uploaded file is larger than the server accepts."""


class ValidationError(APIError):
    """422: the input was understood but is invalid; ``message`` names the field (and line)."""


class RateLimitError(APIError):
    """429: too many requests."""


class ServerError(APIError):
    """5xx: the server failed; this is a server bug or an outage."""


class ConnectionError(CorePlexError, builtins.ConnectionError):  # noqa: A001 - deliberate name
    """The server could not be reached (refused, reset, DNS, or a request timeout)."""


class TimeoutError(CorePlexError, builtins.TimeoutError):  # noqa: A001 - deliberate name
    """Waiting for background work (a job, a dataset profile) took longer than allowed."""


class JobFailedError(CorePlexError):
    """Background work the SDK waited for ended ``failed`` or ``cancelled``.

    ``job`` holds the final job (or dataset version) object.
    """

    def __init__(self, message: str, *, job: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.job = job


_BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
}


def error_class_for_status(status: int) -> type:
    """The exception class for an HTTP error status."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return APIError


def error_from_response(response: Any, method: Optional[str] = None) -> APIError:
    """Builds the typed exception for an error ``requests.Response``."""
    status = response.status_code
    code = None
    message = None
    details: Dict[str, Any] = {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = err.get("code")
        message = err.get("message")
        if isinstance(err.get("details"), dict):
            details = err["details"]
    if not message:
        text = (response.text or "").strip()
        message = text[:500] if text else (response.reason or f"HTTP {status}")
    cls = error_class_for_status(status)
    return cls(
        message,
        status=status,
        code=code,
        details=details,
        method=method,
        url=getattr(response, "url", None),
        response=response,
    )
