"""The webhook producer: verify, validate, publish to Kafka, answer only after the ack."""
