"""Container health check: exit 0 when the process answers its health URL with 2xx.

The URL is HOOKSTREAM_HEALTHCHECK_URL (default: the producer's /healthz); consumer containers
point it at their metrics port. Standard library only: it runs in the image's bare python.
"""

import os
import sys
import urllib.request

URL = os.environ.get("HOOKSTREAM_HEALTHCHECK_URL", "http://127.0.0.1:8000/healthz")

try:
    with urllib.request.urlopen(URL, timeout=2) as response:
        sys.exit(0 if 200 <= response.status < 300 else 1)
except OSError as exc:  # refused, timed out, or an HTTP error status
    print(f"unhealthy: {URL}: {exc}", file=sys.stderr)
    sys.exit(1)
