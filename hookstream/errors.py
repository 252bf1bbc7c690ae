"""The exception tree: one root, small specific subclasses.

Callers that only want to know "did Hookstream refuse this?" catch `HookstreamError`;
the CLI turns any of them into one line on stderr and a non-zero exit.
"""


class HookstreamError(Exception):
    """Root of every error Hookstream raises on purpose."""


class ConfigError(HookstreamError):
    """A setting is missing or malformed; the message names the variable and the fix."""


class SchemaError(HookstreamError):
    """An envelope could not be encoded or decoded against the event contract."""


class TopicError(HookstreamError):
    """A topic could not be created or inspected."""


class StateStoreUnavailable(HookstreamError):
    """The idempotency store (Redis, or the embedded SQLite file) did not answer in time."""


class SchemaRegistryUnavailable(HookstreamError):
    """The schema registry could not be reached: transient (retry), never poison."""
