"""``Directive.objects.enqueue_many``: one INSERT, the answers of one ``enqueue`` per item."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman.models import Directive
from omniman.signals import directive_enqueued

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def announced():
    seen = []
    directive_enqueued.connect(lambda sender, directive, **kw: seen.append(directive.pk), weak=False, dispatch_uid="t-many")
    yield seen
    directive_enqueued.disconnect(dispatch_uid="t-many")


def test_new_directives_are_one_insert_in_order(announced):
    items = [("a.one", {"n": 1}, "k1"), ("b.two", {"n": 2}, "k2"), ("c.three", {"n": 3}, "")]
    with CaptureQueriesContext(connection) as ctx:
        directives = Directive.objects.enqueue_many(items)
    assert len(ctx.captured_queries) == 1
    rows = list(Directive.objects.order_by("id").values_list("pk", "topic", "payload", "dedupe_key", "status", "attempts"))
    assert rows == [
        (directives[0].pk, "a.one", {"n": 1}, "k1", "queued", 0),
        (directives[1].pk, "b.two", {"n": 2}, "k2", "queued", 0),
        (directives[2].pk, "c.three", {"n": 3}, "", "queued", 0),
    ]
    assert announced == [d.pk for d in directives]
    assert all(not d._state.adding for d in directives)


def test_an_active_duplicate_is_returned_and_not_announced(announced):
    existing = Directive.objects.enqueue("a.one", {"n": 0}, dedupe_key="k1")
    done = Directive.objects.enqueue("b.two", {"n": 0}, dedupe_key="k2")
    Directive.objects.filter(pk=done.pk).update(status="done")  # finished: no longer dedupes
    announced.clear()
    directives = Directive.objects.enqueue_many([("a.one", {"n": 1}, "k1"), ("b.two", {"n": 2}, "k2"), ("a.one", {"n": 3}, "k1")])
    assert directives[0].pk == existing.pk == directives[2].pk
    assert directives[1].pk != done.pk
    assert Directive.objects.get(pk=existing.pk).payload == {"n": 0}
    assert Directive.objects.get(pk=directives[1].pk).payload == {"n": 2}
    assert Directive.objects.count() == 3
    assert announced == [directives[1].pk]


def test_an_item_repeated_in_the_batch_is_the_first_row(announced):
    directives = Directive.objects.enqueue_many([("t", {"n": 1}, "same"), ("t", {"n": 2}, "same"), ("t", {"n": 3}, "")])
    assert directives[0].pk == directives[1].pk != directives[2].pk
    assert list(Directive.objects.order_by("id").values_list("payload", flat=True)) == [{"n": 1}, {"n": 3}]
    assert announced == [directives[0].pk, directives[2].pk]


def test_a_topic_is_required():
    with pytest.raises(ValueError):
        Directive.objects.enqueue_many([("a", {}, "k"), ("", {}, "")])
    assert Directive.objects.count() == 0
