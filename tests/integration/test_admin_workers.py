"""The dashboard says plainly when no directive worker processes the directives (a heartbeat row, not a guess)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from omniman.models import Directive, WorkerHeartbeat
from tests.integration.test_admin_review import make_user

pytestmark = pytest.mark.django_db

COMMAND = "python manage.py process_directives --watch"


@pytest.fixture
def manager(client):
    client.force_login(make_user("manager", groups=("manager",)))
    return client


def test_no_fresh_heartbeat_says_directives_are_not_processed_and_how_to_start_a_worker(manager):
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="box:41", host="box", pid=41, started_at=now - timedelta(hours=1),
                                   last_seen_at=now - timedelta(seconds=300), processed=9)
    response = manager.get("/admin/")
    warning = response.context["workers"]["warning"]
    assert warning.startswith("No directive worker has been seen for 30") and "directives are not being processed" in warning
    assert COMMAND in warning
    body = response.content.decode()
    assert 'id="worker-warning"' in body and "No directive worker has been seen for" in body and COMMAND in body


def test_a_fresh_heartbeat_shows_no_warning(manager):
    Directive.objects.enqueue("test.record", {})
    WorkerHeartbeat.objects.beat("box:42", processed=3)
    response = manager.get("/admin/")
    assert response.context["workers"]["warning"] == "" and response.context["workers"]["alive"] == 1
    body = response.content.decode()
    assert 'id="worker-warning"' not in body and "1 alive" in body


def test_never_a_worker_with_directives_waiting_says_so(manager):
    response = manager.get("/admin/")
    assert response.context["workers"]["warning"] == ""  # nothing waiting, no worker ever: nothing to say
    Directive.objects.enqueue("test.record", {})
    response = manager.get("/admin/")
    warning = response.context["workers"]["warning"]
    assert "No directive worker has run on this database — 1 directives are waiting" in warning and COMMAND in warning
    assert 'id="worker-warning"' in response.content.decode()
