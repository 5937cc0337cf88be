"""Omniman's models: Channel, Session, Order (+ items, events), Directive, IdempotencyKey, WorkerHeartbeat, OperatorPin, Bill (+ payments, refunds, events), KitchenItem, SoldOut."""

from omniman.models.billing import Bill, BillEvent, Payment, Refund
from omniman.models.channel import Channel
from omniman.models.directive import Directive
from omniman.models.idempotency import IdempotencyKey
from omniman.models.kitchen import KitchenItem, SoldOut
from omniman.models.operator_pin import OperatorPin
from omniman.models.order import Order, OrderEvent, OrderItem
from omniman.models.session import CheckState, Session
from omniman.models.worker import WorkerHeartbeat

__all__ = ["Channel", "Session", "CheckState", "Order", "OrderItem", "OrderEvent", "Directive", "IdempotencyKey", "WorkerHeartbeat", "Bill", "BillEvent", "Payment", "Refund", "OperatorPin", "KitchenItem", "SoldOut"]
