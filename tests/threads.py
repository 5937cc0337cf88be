"""Real threads for the concurrency tests (PostgreSQL): start together, close their connections."""

from __future__ import annotations

import threading

from django.db import connections

from omniman.exceptions import OmnimanError

THREADS = 16


def run_together(worker, count: int = THREADS) -> list[tuple[str, object]]:
    """Start ``count`` threads at one barrier; return each one's ``("ok", value)`` or ``("error", code)``.

    A thread that crashes (anything but an ``OmnimanError``) or hangs fails the test.
    """
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def target(index):
        try:
            barrier.wait(timeout=30)
            results[index] = ("ok", worker(index))
        except OmnimanError as exc:
            results[index] = ("error", exc.code)
        except Exception as exc:  # noqa: BLE001 - reported to the test below
            results[index] = ("crash", repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    crashes = [r for r in results if r is None or r[0] == "crash"]
    assert not crashes, crashes
    return results
