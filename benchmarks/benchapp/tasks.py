"""The same no-op job for procrastinate and for django-tasks (database backend)."""

from django_tasks import task as django_task

from procrastinate.contrib.django import app as procrastinate_app


@procrastinate_app.task(name="bench.noop")
def procrastinate_noop(i: int = 0) -> None:
    return None


@django_task()
def django_tasks_noop(i: int = 0) -> None:
    return None
