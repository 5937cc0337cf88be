from django.urls import path

from omniman.web import basket, bill, floor, pos, receipts, shifts

app_name = "pos"

S = "<slug:channel_code>/s/<str:session_key>/"
L = S + "lines/<str:line_id>/"
B = "<slug:channel_code>/bills/<str:bill_ref>/"

urlpatterns = [
    path("", pos.index, name="index"),
    path("me/pin/", pos.my_pin, name="my_pin"),
    # The device's shift (two segments under me/: no channel code can shadow them).
    path("me/shift/", shifts.shift_view, name="shift"),
    path("me/shift/open/", shifts.open_shift, name="shift_open"),
    path("me/shift/banner/", shifts.shift_banner, name="shift_banner"),
    path("me/shift/<int:shift_id>/cash/", shifts.cash_move, name="shift_cash"),
    path("me/shift/<int:shift_id>/close/", shifts.close_shift, name="shift_close"),
    path("me/shift/<int:shift_id>/z-report/", shifts.z_report_view, name="z_report"),
    path("me/shift/<int:shift_id>/z-report.pdf", shifts.z_report_pdf_view, name="z_report_pdf"),
    path("<slug:channel_code>/", pos.channel_view, name="channel"),
    path("<slug:channel_code>/open/", pos.open_session, name="open"),
    path("<slug:channel_code>/new/", basket.new_basket, name="new"),
    path("<slug:channel_code>/sold-out/", pos.sold_out, name="sold_out"),
    path("<slug:channel_code>/new/search/", basket.new_search, name="new_search"),
    path("<slug:channel_code>/new/add/", basket.new_add, name="new_add"),
    path("<slug:channel_code>/new/options/", basket.new_options, name="new_options"),
    path("<slug:channel_code>/floor/", floor.floor_view, name="floor"),
    path("<slug:channel_code>/floor/poll/", floor.floor_poll, name="floor_poll"),
    path("<slug:channel_code>/floor/edit/", floor.floor_edit, name="floor_edit"),
    path(S, pos.session_view, name="session"),
    path(S + "search/", pos.search, name="search"),
    path(S + "add/", pos.add_item, name="add"),
    path(S + "options/", pos.options, name="options"),
    path(S + "customer/", pos.customer, name="customer"),
    path(S + "resolve/", pos.resolve, name="resolve"),
    path(S + "check/", pos.check_now, name="check"),
    path(S + "commit/", pos.commit, name="commit"),
    path(S + "park/", pos.park, name="park"),
    path(S + "fire/", pos.fire, name="fire"),
    path(S + "close-table/", pos.close_table, name="close_table"),
    path(S + "discount/", pos.discount, name="discount"),
    path(S + "adjustments/<str:adjustment_id>/remove/", pos.remove_adjustment, name="remove_adjustment"),
    path(S + "bill/", bill.open_for_session, name="open_bill"),
    path(S + "pay/", bill.pay, name="pay"),
    path(B, bill.bill_view, name="bill"),
    path(B + "pay/", bill.tender, name="tender"),
    path(B + "split/", bill.split, name="split"),
    path(B + "discount/", bill.discount, name="bill_discount"),
    path(B + "adjustments/<str:adjustment_id>/remove/", bill.remove_adjustment, name="bill_remove_adjustment"),
    path(B + "void/", bill.void, name="void"),
    path(B + "write-off/", bill.write_off, name="write_off"),
    path(B + "refund/", bill.refund, name="refund"),
    path(B + "close/", bill.close_table, name="close_bill_table"),
    path(S + "move/", floor.move, name="move"),
    path(L + "edit/", pos.edit_line, name="edit"),
    path(L + "seat/", floor.line_seat, name="seat"),
    path(L + "qty/", pos.change_qty, name="qty"),
    path(L + "remove/", pos.remove_line, name="remove"),
    path(L + "note/", pos.line_note, name="note"),
    path(L + "hold/", pos.hold_line, name="hold"),
    path(L + "price/", pos.override_price, name="price"),
    path(B + "receipt/", receipts.receipt, name="receipt"),
    path(B + "receipt.pdf", receipts.receipt_pdf_view, name="receipt_pdf"),
]
