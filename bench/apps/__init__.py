"""The apps Hookstream is measured against, each written out plainly as a user would.

Every app reads the same variables the Hookstream producer reads (FASTIO_WEBHOOK_SECRET,
KAFKA_BOOTSTRAP_SERVERS, HOOKSTREAM_TOPIC) through `hookstream.settings`, listens on the
address the harness gives it, and answers POST /webhooks/fastio signed in the Fast.io hex form.
"""
