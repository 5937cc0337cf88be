"""Every change goes through a service.

Each public method runs in one transaction, locks the row it changes
(``select_for_update``), re-reads it, compares, and only then writes.

The public surface is ``__all__`` below (and the ``omniman.services.events``
module): the operator app, the API, the admin and the contrib apps import
from ``omniman.services`` only, never from its modules (import-linter's
"private modules" contract in pyproject.toml enforces it).
"""

from omniman.services.adjustments import AdjustmentService
from omniman.services.audit import AUDIT_KINDS, AuditEntry, audit_entries
from omniman.services.billing import BillService, BillView, PaymentResult, PaymentService, bill_view, day_totals, find_bill
from omniman.services._common import find_session, new_session_key
from omniman.services.commit import CommitService
from omniman.services.floor import (
    FloorMove, FloorPlanService, FloorService, FloorState, TableState, floor_tables, floor_version, open_bill_credits,
    table_owed,
)
from omniman.services.external import ExternalOrderService, external_session_key, status_map
from omniman.services.kitchen import KitchenResult, KitchenService, order_kitchen, sold_out_skus
from omniman.services.kitchen import order_path as kitchen_order_path
from omniman.services.maintenance import MaintenanceService
from omniman.services.ops import MAX_NAME_LENGTH, MAX_SKU_LENGTH, OPS, RESERVED_DATA_KEYS, RESERVED_META_KEYS, find_line
from omniman.services.orders import OrderService, apply_auto_transition, lock_order
from omniman.services.reports import (
    REPORTS, Column, Period, Report, adjustments_by_actor, kitchen_times, sales_by_category, sales_by_channel, sales_by_day,
    kpi_summaries, kpi_summary, sales_by_hour, sales_by_method, sales_by_product, sales_by_staff, sales_summary,
)
from omniman.services.reports import period as report_period
from omniman.services.reports import report as build_report
from omniman.services.receipts import customer_of, order_receipt, receipt_data
from omniman.services.sessions import ModifyService, ResolveService, SessionService, SessionWriteService, require_rev
from omniman.services.shifts import (
    Z_REPORT_TOPIC, ShiftService, ZReportEmailHandler, current_shift, denominations, difference_threshold_q, find_register,
    find_shift, register_code_for, registers, shift_bills, shift_detail, shift_screen, z_report,
)
from omniman.services.tables import TableService, orders_of_handle_today

__all__ = [
    # Use cases.
    "SessionService",
    "ModifyService",
    "SessionWriteService",
    "ResolveService",
    "CommitService",
    "OrderService",
    "ExternalOrderService",
    "MaintenanceService",
    "TableService",
    "KitchenService",
    "KitchenResult",  # what a kitchen move did: the order and the items it moved
    "sold_out_skus",  # the SKUs the kitchen marked sold out ("86"), one query
    "order_kitchen",  # an order and its kitchen items (not_found)
    "kitchen_order_path",  # the order moves a kitchen item state asks for (the board checks a bump before offering it)
    "AdjustmentService",
    "BillService",
    "PaymentService",
    "PaymentResult",  # what PaymentService.tender returns: payment, bill, idempotent
    # Bills: reads (selectors) for the screens, the API and the dashboard.
    "find_bill",  # a bill by ref (not_found), optionally row-locked
    "bill_view",  # a bill with its orders, lines, adjustments, payments, refunds and splits (fixed query count)
    "BillView",
    "day_totals",  # the day's sales, payments by method, tips, change, refunds (fixed query count)
    # Shifts and cash control (docs/api/shifts.rst).
    "ShiftService",  # open, cash_in, cash_out, close
    "current_shift",  # a register's open shift, or None
    "find_shift",  # a shift by id (shift_not_found), optionally row-locked
    "find_register",  # an active register by code (register_not_found)
    "registers",  # the active registers, each with its open shift
    "shift_detail",  # a shift with its cash movements and events
    "shift_screen",  # what the POS shift screen shows for a register
    "register_code_for",  # which register a channel's payments go to (the tender's, the channel's, "main")
    "denominations",  # the notes and coins a register's count form offers
    "difference_threshold_q",  # the drawer difference a cashier may close with alone
    "shift_bills",  # the bills a shift closed (its last payment is in the shift)
    "z_report",  # the shift's Z-report (fixed query count)
    "Z_REPORT_TOPIC",
    "ZReportEmailHandler",  # shift.z_report: emails the Z-report to the managers
    # The manager's audit trail (docs/api/audit.rst): price overrides, discounts, voids, cancellations, refunds, write-offs.
    "audit_entries",
    "AuditEntry",
    "AUDIT_KINDS",
    # Reports (docs/api/reports.rst): selectors over a Period, each compared with the previous period.
    "Period",
    "report_period",  # a valid Period from dates or a preset (invalid_period)
    "Report",
    "Column",
    "REPORTS",  # name -> selector
    "build_report",  # the report called name over a period (not_found)
    "kpi_summary",  # the report cards' figures of sales_summary, in SQL aggregates
    "kpi_summaries",  # kpi_summary of several periods (a period and the previous one) in the same queries
    "sales_summary",  # the period's money: day_totals over a date range (fixed query count)
    "sales_by_hour",
    "sales_by_day",
    "sales_by_channel",
    "sales_by_product",
    "sales_by_category",
    "sales_by_method",
    "sales_by_staff",
    "kitchen_times",
    "adjustments_by_actor",
    "FloorService",  # transfer lines, move a tab, merge tabs (docs/api/floor.rst)
    "FloorPlanService",  # the floor plan editor's placements
    # Reads and guards the layers above share with the services.
    "find_session",  # a session by key and channel (session_not_found), optionally row-locked
    "new_session_key",  # a fresh key (SESSION_KEY_PREFIX + random): a screen mints one for a basket to come
    "require_rev",  # stale_rev unless the caller saw the session's current rev
    "status_map",  # a channel's external → internal status names (ingestion)
    "external_session_key",  # the session key of an external order (channel, external id)
    "orders_of_handle_today",  # a handle's (a table's) orders since local midnight, oldest first
    "floor_tables",  # the map of a table channel (FloorState of AreaState/TableState)
    "floor_version",  # changes whenever the map would (the screens' polling)
    "table_owed",  # what a table owes now: the one computation the map, the tables list and the tab show
    "open_bill_credits",  # the open bills' adjustments less their payments (table_owed's credits)
    "FloorMove",
    "FloorState",
    "TableState",
    # The op vocabulary of modify_session (SPEC §5) and its bounds.
    "OPS",
    "MAX_SKU_LENGTH",
    "MAX_NAME_LENGTH",
    "RESERVED_DATA_KEYS",
    "RESERVED_META_KEYS",
    # The one order lock and the one automatic move, for services outside the kernel (contrib apps).
    "lock_order",  # an order's row, locked, with its channel (not_found, or the caller's error)
    "apply_auto_transition",  # order_flow.auto_transitions[key], if the flow allows it now
    "find_line",  # a session's stored line (unknown_line_id)
    # Receipts (omniman.receipts.Receipt): a bill's receipt (or its preview), an order's bill preview.
    "receipt_data",
    "order_receipt",
    "customer_of",  # the first customer (name, email) a bill's orders carry
]
