from django.urls import path

from omniman.web import pos

app_name = "pos"

S = "<slug:channel_code>/s/<str:session_key>/"
L = S + "lines/<str:line_id>/"

urlpatterns = [
    path("", pos.index, name="index"),
    path("<slug:channel_code>/", pos.channel_view, name="channel"),
    path("<slug:channel_code>/open/", pos.open_session, name="open"),
    path(S, pos.session_view, name="session"),
    path(S + "search/", pos.search, name="search"),
    path(S + "sold-out/", pos.sold_out, name="sold_out"),
    path(S + "add/", pos.add_item, name="add"),
    path(S + "options/", pos.options, name="options"),
    path(S + "customer/", pos.customer, name="customer"),
    path(S + "resolve/", pos.resolve, name="resolve"),
    path(S + "check/", pos.check_now, name="check"),
    path(S + "commit/", pos.commit, name="commit"),
    path(S + "park/", pos.park, name="park"),
    path(S + "fire/", pos.fire, name="fire"),
    path(S + "close-table/", pos.close_table, name="close_table"),
    path(L + "edit/", pos.edit_line, name="edit"),
    path(L + "qty/", pos.change_qty, name="qty"),
    path(L + "remove/", pos.remove_line, name="remove"),
    path(L + "note/", pos.line_note, name="note"),
    path(L + "hold/", pos.hold_line, name="hold"),
    path(L + "price/", pos.override_price, name="price"),
]
