"""One error family. Every facteur error carries a `reason` that is safe to log and to show an
operator: it never holds a token, a secret or a raw request body.

Kept free of imports, so that decisions, adapters and flows can all raise and catch these
without loading any client: a flow catches ArgoError without importing `requests`.
"""

from __future__ import annotations


class FacteurError(Exception):
    """Something facteur could not do. `reason` is one safe line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


# -- start-up ---------------------------------------------------------------------------------


class ConfigError(FacteurError):
    """A setting is missing or invalid. The reason is one line naming keys and variables."""


class CatalogError(ConfigError):
    """The catalog file is unreadable or breaks Discord's limits."""


# -- input from callers ----------------------------------------------------------------------


class SignatureError(FacteurError):
    """The request is not signed by Discord, or not recently."""


class InvalidInteraction(FacteurError):
    """The body is signed but is not an interaction (or event) facteur can read."""


class InvalidReport(FacteurError):
    """A status callback body breaks the contract; the reason names the problem."""


class InvalidNudge(FacteurError):
    """An ApiServerSource event (a nudge) that is not a well-formed reference to a workflow; the
    reason names the problem, never a value."""


class NotRecoverable(FacteurError):
    """A workflow lacks facteur's labels and annotations, or carries them malformed, so no
    session can be rebuilt from it; the reason names what is wrong (never a value)."""


class EventRejected(FacteurError):
    """An incoming event is unauthenticated or not one we handle. Carries the HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


# -- peers -------------------------------------------------------------------------------------


class ArgoError(FacteurError):
    """A call to Argo failed. `transient` says whether a later attempt may succeed."""

    # True on ArgoTLSError: facteur's own TLS settings are wrong, Argo refused nothing.
    tls_misconfigured = False

    def __init__(self, reason: str, *, status: int | None = None, transient: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.transient = transient

    def __str__(self) -> str:
        where = f"HTTP {self.status}: " if self.status is not None else ""
        return f"argo: {where}{self.reason}"


class ArgoTLSError(ArgoError):
    """No TLS session with the Argo Server: its certificate is not trusted, or the handshake
    failed. An operator's fix (argo.ca_file, argo.server_url), never transient."""

    tls_misconfigured = True


class DiscordError(FacteurError):
    """Discord did not take the message."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.args = (status, reason)  # both, so the error pickles and unpickles

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, reason={self.reason!r})"


class TokenRejected(DiscordError):
    """The interaction token was refused (expired, or the interaction is gone)."""


class SessionStoreError(FacteurError):
    """Redis could not be reached or answered an error."""


class SinkError(FacteurError):
    """The sink (K_SINK) did not accept the event."""
