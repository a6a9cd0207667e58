"""Verifying the signature of CorePlexML webhook notifications, for the code that receives them.

A webhook channel's notifications are JSON POSTs with these headers:

- ``X-CorePlex-Timestamp``: when it was sent, in Unix seconds;
- ``X-CorePlex-Signature``: ``v1=`` followed by the hex HMAC-SHA256 of ``"<timestamp>.<raw body>"``
  keyed with the channel's signing secret;
- ``X-CorePlex-Event`` (``alert.firing``, ``alert.resolved``, ``deployment.rolled_back`` …) and
  ``X-CorePlex-Delivery`` (the delivery id; a retried delivery keeps its id, so receivers can drop
  repeats).

Check the signature over the exact bytes received, before parsing them::

    from coreplexml.webhooks import verify_signature

    ok = verify_signature(
        secret=WEBHOOK_SECRET,                               # from alert.signing_secrets at creation
        timestamp=request.headers["X-CorePlex-Timestamp"],
        body=request.get_data(),                             # raw bytes, not re-serialised JSON
        signature=request.headers["X-CorePlex-Signature"],
    )
    if not ok:
        abort(401)
"""

import hashlib
import hmac
import time
from typing import Optional, Union

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "EVENT_HEADER", "DELIVERY_HEADER", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-CorePlex-Signature"
TIMESTAMP_HEADER = "X-CorePlex-Timestamp"
EVENT_HEADER = "X-CorePlex-Event"
DELIVERY_HEADER = "X-CorePlex-Delivery"

_SCHEME = "v1="


def _bytes(value: Union[str, bytes, bytearray, memoryview]) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def sign(secret: Union[str, bytes], timestamp: Union[int, str], body: Union[str, bytes]) -> str:
    """The ``X-CorePlex-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds):
    ``"v1=" + hex(HMAC-SHA256(secret, f"{timestamp}.{body}"))``."""
    message = str(timestamp).strip().encode("ascii") + b"." + _bytes(body)
    return _SCHEME + hmac.new(_bytes(secret), message, hashlib.sha256).hexdigest()


def verify_signature(
    secret: Union[str, bytes],
    timestamp: Union[int, str],
    body: Union[str, bytes],
    signature: str,
    tolerance_secs: Optional[float] = 300,
    *,
    now: Optional[float] = None,
) -> bool:
    """Whether a webhook notification is genuine and recent.

    Args:
        secret: the channel's signing secret (``alert.signing_secrets[i].secret`` when it was generated,
            or the ``secret`` you gave the channel).
        timestamp: the ``X-CorePlex-Timestamp`` header (Unix seconds).
        body: the request body exactly as received (bytes; a ``str`` is encoded as UTF-8).
        signature: the ``X-CorePlex-Signature`` header. Several comma-separated ``v1=…`` values are
            accepted (any one matching is enough).
        tolerance_secs: the largest accepted difference between ``timestamp`` and now, against replays
            of old notifications; ``None`` skips the check.
        now: the current Unix time to compare with (default: the system clock).

    Returns ``True`` when a signature matches (compared in constant time) and the timestamp is within
    the tolerance, ``False`` otherwise — including for malformed headers.
    """
    if not secret or signature is None or timestamp is None:
        return False
    ts_text = str(timestamp).strip()
    try:
        ts = int(ts_text)
    except ValueError:
        return False
    if tolerance_secs is not None:
        current = time.time() if now is None else now
        if abs(current - ts) > tolerance_secs:
            return False
    expected = sign(secret, ts_text, body)
    matched = False
    for candidate in str(signature).split(","):
        candidate = candidate.strip()
        if not candidate.startswith(_SCHEME):
            continue
        # Keep comparing after a match so the time taken does not depend on which candidate matched.
        matched |= hmac.compare_digest(candidate.lower(), expected)
    return matched
