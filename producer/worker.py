"""The producer's gunicorn worker: gevent's, whose graceful stop ends idle keep-alive connections.

At a stop, gunicorn's gevent worker waits until every connection's greenlet has ended, or for
`graceful_timeout`. A connection kept alive between requests (a gateway keeps its upstream
connections open for minutes) has nothing left to answer, yet its greenlet waits for a next
request until `keepalive` (75 s). So one idle connection made every stop run to the timeout,
and the master's SIGKILL, at that same timeout, came before `worker_exit` could deliver what
librdkafka still held and write the dedupe store's last acks. Here a connection waiting for its
next request is ended when the stop begins; a request being read or answered finishes as before
(gunicorn then closes its connection).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker


class ProducerWorker(GeventWorker):
    def init_process(self) -> None:
        self._idle: dict[Any, gevent.Timeout] = {}  # greenlet waiting for a next request -> its wait
        super().init_process()

    @contextlib.contextmanager
    def timeout_ctx(self) -> Iterator[None]:
        """gunicorn's keep-alive loop waits for a connection's next request inside this."""
        wait = gevent.Timeout(self.cfg.keepalive if self.alive else 0, False)
        current = gevent.getcurrent()
        self._idle[current] = wait
        try:
            with wait:  # ends quietly when it expires: the loop closes the connection
                yield
        finally:
            self._idle.pop(current, None)

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)  # stops accepting
        gevent.spawn(self._end_idle)  # not from the signal handler itself

    def _end_idle(self) -> None:
        for greenlet, wait in list(self._idle.items()):
            greenlet.kill(wait, block=False)  # as if its keep-alive had run out
