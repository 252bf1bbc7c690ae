"""Errors of the development servers; the CLI prints any `HookstreamError` as one line."""

from hookstream.errors import HookstreamError


class DevServerError(HookstreamError):
    """A development server could not be fetched, started or stopped."""


class LocalKafkaError(DevServerError):
    """The local Kafka broker could not be resolved, formatted, started or stopped."""


class MissingToolError(DevServerError):
    """Java, Maven or a Debian package is not installed (or too old) for a local server."""
