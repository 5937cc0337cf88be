from django.contrib import admin

from omniman.admin.base import ReadOnlyAdmin
from omniman.contrib.payment.models import MockTransaction


@admin.register(MockTransaction)
class MockTransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "reference", "amount_q", "currency", "status", "error_code", "transaction_id")
    list_filter = ("kind", "status")
    search_fields = ("reference", "transaction_id", "payment_id", "idempotency_key")
    date_hierarchy = "created_at"
