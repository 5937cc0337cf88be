import pytest

from omniman.models import Directive

pytestmark = pytest.mark.django_db


def test_enqueue_with_dedupe_returns_the_active_row():
    first = Directive.objects.enqueue("stock.hold", {"a": 1}, dedupe_key="S:stock:1")
    again = Directive.objects.enqueue("stock.hold", {"a": 2}, dedupe_key="S:stock:1")
    other_topic = Directive.objects.enqueue("stock.release", {"a": 3}, dedupe_key="S:stock:1")
    assert again.pk == first.pk and again.payload == {"a": 1}
    assert other_topic.pk != first.pk
    assert (first.status, first.attempts) == ("queued", 0)
    # Once it is done, the same key enqueues a new row.
    Directive.objects.filter(pk=first.pk).update(status="done")
    later = Directive.objects.enqueue("stock.hold", {"a": 4}, dedupe_key="S:stock:1")
    assert later.pk != first.pk
    assert Directive.objects.filter(topic="stock.hold").count() == 2


def test_enqueue_without_dedupe_always_inserts():
    Directive.objects.enqueue("notify", {})
    Directive.objects.enqueue("notify", {})
    assert Directive.objects.filter(topic="notify").count() == 2


def test_enqueue_available_at():
    from datetime import timedelta

    from django.utils import timezone

    later = timezone.now() + timedelta(minutes=5)
    directive = Directive.objects.enqueue("x", {}, available_at=later)
    assert directive.available_at == later


def test_enqueue_needs_a_topic():
    with pytest.raises(ValueError):
        Directive.objects.enqueue("", {})
