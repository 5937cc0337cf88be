"""Every change goes through a service.

Each public method runs in one transaction, locks the row it changes
(``select_for_update``), re-reads it, compares, and only then writes.
"""

from omniman.services.commit import CommitService
from omniman.services.external import ExternalOrderService
from omniman.services.maintenance import MaintenanceService
from omniman.services.orders import OrderService
from omniman.services.sessions import ModifyService, ResolveService, SessionService, SessionWriteService
from omniman.services.tables import TableService

__all__ = [
    "SessionService",
    "ModifyService",
    "SessionWriteService",
    "ResolveService",
    "CommitService",
    "OrderService",
    "ExternalOrderService",
    "MaintenanceService",
    "TableService",
]
