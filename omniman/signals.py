"""Signals the kernel sends. Receivers must not raise; side effects belong in Directives."""

from django.dispatch import Signal

# Sent after the transaction that created an Order commits: ``order``.
order_created = Signal()
# Sent after the transaction that changed an Order's status commits: ``order``, ``from_status``, ``to_status``.
order_status_changed = Signal()
# Sent after the transaction that abandoned a Session commits: ``session``, ``actor``.
session_abandoned = Signal()
# Sent inside the enqueuing transaction, right after a Directive row is created: ``directive``.
# (omniman.engine dispatches the DISPATCH_ON_COMMIT topics from it: the models never import the engine.)
directive_enqueued = Signal()
# Sent inside the transaction that settled a Bill (payments cover its total): ``bill``, ``orders``, ``actor``.
# Receivers may enqueue Directives (they commit, or roll back, with the settle): the printing app's
# ``print.receipt``, the notifications app's receipt email. They must not raise.
bill_settled = Signal()
