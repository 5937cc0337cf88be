"""``/api/``: SPEC §8's paths. Only the schema and its docs page are public."""

from django.urls import path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from omniman.api import bills, floor, kitchen, shifts, views

app_name = "api"


class KeyConverter:
    """A session key, order ref or external id: no slash, no control character (no NUL reaches the database)."""

    regex = r"[^/\x00-\x1f\x7f]{1,128}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(KeyConverter, "apikey")

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("channels/", views.ChannelListView.as_view(), name="channel-list"),
    path("channels/<slug:code>/", views.ChannelDetailView.as_view(), name="channel-detail"),
    path("channels/<slug:code>/orders/", views.ExternalOrderView.as_view(), name="external-order"),
    path(
        "channels/<slug:code>/orders/<apikey:external_id>/status/",
        views.ExternalOrderStatusView.as_view(),
        name="external-order-status",
    ),
    path("channels/<slug:code>/floor/", floor.FloorView.as_view(), name="floor"),
    path("channels/<slug:code>/floor/placements/", floor.FloorPlacementsView.as_view(), name="floor-placements"),
    path("sessions/", views.SessionListView.as_view(), name="session-list"),
    path("sessions/<apikey:key>/", views.SessionDetailView.as_view(), name="session-detail"),
    path("sessions/<apikey:key>/modify/", views.SessionModifyView.as_view(), name="session-modify"),
    path("sessions/<apikey:key>/commit/", views.SessionCommitView.as_view(), name="session-commit"),
    path("sessions/<apikey:key>/resolve/", views.SessionResolveView.as_view(), name="session-resolve"),
    path("sessions/<apikey:key>/park/", views.SessionParkView.as_view(), name="session-park"),
    path("sessions/<apikey:key>/resume/", views.SessionResumeView.as_view(), name="session-resume"),
    path("sessions/<apikey:key>/close-table/", views.SessionCloseTableView.as_view(), name="session-close-table"),
    path("sessions/<apikey:key>/discounts/", views.SessionDiscountView.as_view(), name="session-discounts"),
    path(
        "sessions/<apikey:key>/adjustments/<apikey:adjustment_id>/",
        views.SessionAdjustmentView.as_view(),
        name="session-adjustment",
    ),
    path("sessions/<apikey:key>/transfer-lines/", floor.TransferLinesView.as_view(), name="session-transfer-lines"),
    path("sessions/<apikey:key>/move-tab/", floor.MoveTabView.as_view(), name="session-move-tab"),
    path("sessions/<apikey:key>/merge/", floor.MergeTabsView.as_view(), name="session-merge"),
    path("orders/", views.OrderListView.as_view(), name="order-list"),
    path("orders/<apikey:ref>/", views.OrderDetailView.as_view(), name="order-detail"),
    path("orders/<apikey:ref>/transition/", views.OrderTransitionView.as_view(), name="order-transition"),
    path("orders/<apikey:ref>/kitchen/", kitchen.OrderKitchenView.as_view(), name="order-kitchen"),
    path("orders/<apikey:ref>/kitchen/fire/", kitchen.OrderFireView.as_view(), name="order-kitchen-fire"),
    path("kitchen/bump/", kitchen.KitchenBumpView.as_view(), name="kitchen-bump"),
    path("kitchen/undo/", kitchen.KitchenUndoView.as_view(), name="kitchen-undo"),
    path("kitchen/acknowledge-void/", kitchen.KitchenAcknowledgeView.as_view(), name="kitchen-acknowledge-void"),
    path("kitchen/sold-out/", kitchen.KitchenSoldOutView.as_view(), name="kitchen-sold-out"),
    path("orders/<apikey:ref>/lines/<apikey:line_id>/void/", bills.OrderLineVoidView.as_view(), name="order-line-void"),
    path("bills/", bills.BillOpenView.as_view(), name="bill-open"),
    path("bills/<apikey:bill_ref>/", bills.BillDetailView.as_view(), name="bill-detail"),
    path("bills/<apikey:bill_ref>/payments/", bills.BillPaymentView.as_view(), name="bill-payments"),
    path("bills/<apikey:bill_ref>/split/", bills.BillSplitView.as_view(), name="bill-split"),
    path("bills/<apikey:bill_ref>/discounts/", bills.BillDiscountView.as_view(), name="bill-discounts"),
    path(
        "bills/<apikey:bill_ref>/adjustments/<apikey:adjustment_id>/",
        bills.BillAdjustmentView.as_view(),
        name="bill-adjustment",
    ),
    path("bills/<apikey:bill_ref>/write-off/", bills.BillWriteOffView.as_view(), name="bill-write-off"),
    path("payments/<int:payment_id>/refunds/", bills.PaymentRefundView.as_view(), name="payment-refunds"),
    path("registers/", shifts.RegisterListView.as_view(), name="register-list"),
    path("shifts/", shifts.ShiftOpenView.as_view(), name="shift-open"),
    path("shifts/<int:shift_id>/", shifts.ShiftDetailView.as_view(), name="shift-detail"),
    path("shifts/<int:shift_id>/cash-movements/", shifts.CashMovementView.as_view(), name="shift-cash-movements"),
    path("shifts/<int:shift_id>/close/", shifts.ShiftCloseView.as_view(), name="shift-close"),
    path("shifts/<int:shift_id>/z-report/", shifts.ZReportView.as_view(), name="shift-z-report"),
    re_path(r"^[\s\S]*\Z", views.UnknownPathView.as_view(), name="unknown"),
]
