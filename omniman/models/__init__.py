"""Omniman's models: Channel, Session, Order (+ items, events), Directive, IdempotencyKey, WorkerHeartbeat, OperatorPin, Bill (+ payments, refunds, events), the floor plan, KitchenItem, SoldOut, Register, Shift (+ cash movements, events)."""

from omniman.models.billing import Bill, BillEvent, Payment, Refund
from omniman.models.channel import Channel
from omniman.models.directive import Directive
from omniman.models.floor import GRID_COLUMNS, GRID_ROWS, FloorArea, FloorTable, TableMove
from omniman.models.idempotency import IdempotencyKey
from omniman.models.kitchen import KitchenItem, SoldOut
from omniman.models.operator_pin import OperatorPin
from omniman.models.order import Order, OrderEvent, OrderItem
from omniman.models.shifts import MAIN_REGISTER, CashMovement, Register, Shift, ShiftEvent
from omniman.models.rows import ModelRows, first_with_channel, insert_rows, kept_per_connection, save_fields
from omniman.models.session import CheckState, Session, empty_sessions
from omniman.models.worker import WorkerHeartbeat

__all__ = ["Channel", "Session", "CheckState", "Order", "OrderItem", "OrderEvent", "Directive", "IdempotencyKey", "WorkerHeartbeat", "Bill", "BillEvent", "Payment", "Refund", "OperatorPin", "FloorArea", "FloorTable", "TableMove", "GRID_COLUMNS", "GRID_ROWS", "empty_sessions", "KitchenItem", "SoldOut", "Register", "Shift", "CashMovement", "ShiftEvent", "MAIN_REGISTER", "ModelRows", "first_with_channel", "kept_per_connection", "insert_rows", "save_fields"]
