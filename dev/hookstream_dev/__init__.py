"""Real servers on this host without Docker, for tests, `make run`, `make run-shared` and the
benchmark: Kafka from its jars, and the shared stores. Not part of the runtime image."""
