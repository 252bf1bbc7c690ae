"""Consumer groups on one at-least-once runtime: indexer, notifier, archiver."""
