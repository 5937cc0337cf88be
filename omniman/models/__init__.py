"""Omniman's models: Channel, Session, Order (+ items, events), Directive, IdempotencyKey, WorkerHeartbeat, KitchenItem, SoldOut."""

from omniman.models.channel import Channel
from omniman.models.directive import Directive
from omniman.models.idempotency import IdempotencyKey
from omniman.models.kitchen import KitchenItem, SoldOut
from omniman.models.order import Order, OrderEvent, OrderItem
from omniman.models.session import CheckState, Session
from omniman.models.worker import WorkerHeartbeat

__all__ = ["Channel", "Session", "CheckState", "Order", "OrderItem", "OrderEvent", "Directive", "IdempotencyKey", "WorkerHeartbeat", "KitchenItem", "SoldOut"]
