"""Omniman's models: Channel, Session, Order (+ items, events), Directive, IdempotencyKey."""

from omniman.models.channel import Channel
from omniman.models.directive import Directive
from omniman.models.idempotency import IdempotencyKey
from omniman.models.order import Order, OrderEvent, OrderItem
from omniman.models.session import CheckState, Session

__all__ = ["Channel", "Session", "CheckState", "Order", "OrderItem", "OrderEvent", "Directive", "IdempotencyKey"]
