#!/usr/bin/env bash
# `make run`: the local broker, the topics, then the producer and every consumer group in the
# foreground under honcho (prefixed logs). Ctrl-C stops the processes, then the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export HOOKSTREAM_DATA_DIR=${HOOKSTREAM_DATA_DIR:-./data}
mkdir -p "$HOOKSTREAM_DATA_DIR"

# The producer fails closed without a secret. For local use, make one once and keep it,
# so `hookstream send` (which reads the same variable) signs what the producer accepts.
if [ -z "${FASTIO_WEBHOOK_SECRET:-}${FASTIO_WEBHOOK_SECRET_FILE:-}" ]; then
  secret_file="$HOOKSTREAM_DATA_DIR/dev-fastio-secret"
  [ -s "$secret_file" ] || "$BIN/python" -c 'import secrets; print(secrets.token_hex(32))' >"$secret_file"
  export FASTIO_WEBHOOK_SECRET_FILE="$secret_file"
fi

"$BIN/hookstream" kafka start
trap '"$BIN/hookstream" kafka stop' EXIT
"$BIN/hookstream" topics create

cat <<BANNER

  Hookstream is starting.
    POST webhooks to   http://127.0.0.1:8000/webhooks/fastio   (also /webhook/fastio)
    try it:            FASTIO_WEBHOOK_SECRET_FILE=$FASTIO_WEBHOOK_SECRET_FILE .venv/bin/hookstream send
    producer metrics   http://127.0.0.1:8000/metrics
    consumer metrics   indexer :9101  notifier :9102  archiver :9103  (/metrics)
    search the index:  HOOKSTREAM_DATA_DIR=$HOOKSTREAM_DATA_DIR .venv/bin/hookstream search <text>
  Ctrl-C stops everything.

BANNER
"$BIN/honcho" start -f Procfile
