from django.db import models


class Execution(models.Model):
    """One row per handler execution, written in the handler's transaction."""

    directive_id = models.BigIntegerField(db_index=True)
    attempt = models.PositiveIntegerField()
    worker_pid = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
