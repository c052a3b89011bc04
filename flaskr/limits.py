"""Bounded work: at most a few costly jobs (password hashes, image re-encodes) at once."""

import threading
from contextlib import contextmanager

from werkzeug.exceptions import ServiceUnavailable

# How long a request waits for a free slot before it is told to come back.
DEFAULT_WAIT_SECONDS = 3
# What a refused request is told to wait; a slot usually frees within a second or two.
RETRY_AFTER_SECONDS = 5


class Slots:
    """A fixed number of slots for one kind of costly work, shared by a process's threads.

    Work beyond the slots waits up to `wait` seconds, then is refused with 503 and
    Retry-After, so a flood queues briefly instead of holding every worker thread.
    """

    def __init__(self, count, what, wait=DEFAULT_WAIT_SECONDS):
        self.semaphore = threading.BoundedSemaphore(count)
        self.what = what
        self.wait = wait

    @contextmanager
    def held(self):
        """Hold one slot for the block; raise ServiceUnavailable when none frees in time."""
        if not self.semaphore.acquire(timeout=self.wait):
            raise ServiceUnavailable(
                f"The server is busy {self.what}. Please try again in a few seconds.",
                retry_after=RETRY_AFTER_SECONDS,
            )
        try:
            yield
        finally:
            self.semaphore.release()
