"""Directive handlers for the engine's reliability tests (registered by the test app)."""

from __future__ import annotations

import os
import threading
import time


class Record:
    """Writes one Execution row per run: duplicates and losses become countable."""

    topic = "test.record"

    def handle(self, *, message, ctx):
        from tests.testapp.models import Execution

        Execution.objects.create(directive_id=message.pk, attempt=ctx["attempt"], worker_pid=os.getpid())


class SleepAfterWrite:
    """Writes its row, then sleeps ``payload["sleep"]`` seconds on the attempts in ``payload["slow_attempts"]``.

    In-process tests may instead make it wait on ``gate`` (released by the test).
    """

    topic = "test.sleep"
    gate: threading.Event | None = None
    started = threading.Event()

    def handle(self, *, message, ctx):
        from tests.testapp.models import Execution

        Execution.objects.create(directive_id=message.pk, attempt=ctx["attempt"], worker_pid=os.getpid())
        if ctx["attempt"] in message.payload.get("slow_attempts", [1]):
            self.started.set()
            if self.gate is not None:
                self.gate.wait(timeout=30)
            else:
                time.sleep(float(message.payload.get("sleep", 30)))


class AlwaysFails:
    """Fails every run; counts its runs in memory (its writes roll back with it)."""

    topic = "test.fail"
    runs: list[tuple[int, int]] = []

    def handle(self, *, message, ctx):
        from tests.testapp.models import Execution

        self.runs.append((message.pk, ctx["attempt"]))
        Execution.objects.create(directive_id=message.pk, attempt=ctx["attempt"], worker_pid=os.getpid())
        raise ConnectionError(f"gateway unreachable (attempt {ctx['attempt']})")


class RecordInBatch(Record):
    """``Record``, declared ``database_only``: claimed and marked done inside the engine's batch transaction."""

    topic = "test.record-batch"
    database_only = True


class FailsInBatch(AlwaysFails):
    """``AlwaysFails``, declared ``database_only``."""

    topic = "test.fail-batch"
    database_only = True
    runs: list[tuple[int, int]] = []


class SleepInBatch:
    """``database_only``: writes its row, then sleeps ``payload["sleep"]`` seconds when it runs in the
    process ``payload["sleep_in_pid"]`` (a worker the test kills mid-handler)."""

    topic = "test.sleep-batch"
    database_only = True

    def handle(self, *, message, ctx):
        from tests.testapp.models import Execution

        Execution.objects.create(directive_id=message.pk, attempt=ctx["attempt"], worker_pid=os.getpid())
        if message.payload.get("sleep_in_pid") == os.getpid():
            time.sleep(float(message.payload.get("sleep", 30)))


class EnqueueInBatch:
    """``database_only``: enqueues one ``test.record-batch`` directive per run (a handler that enqueues)."""

    topic = "test.enqueue-batch"
    database_only = True

    def handle(self, *, message, ctx):
        from omniman.models import Directive

        Directive.objects.enqueue(RecordInBatch.topic, {"from": message.pk})


HANDLERS = [Record(), SleepAfterWrite(), AlwaysFails(), RecordInBatch(), FailsInBatch(), SleepInBatch(), EnqueueInBatch()]
