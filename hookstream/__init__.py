"""Hookstream: signed webhooks into Kafka, consumed at least once by idempotent groups.

This package holds what the producer and the consumers share; it never imports either.
"""
