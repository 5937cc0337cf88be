from django.urls import path

from omniman.web import kitchen

app_name = "kitchen"

urlpatterns = [
    path("", kitchen.board_view, name="board"),
    path("board/", kitchen.board_poll, name="poll"),
    path("bump/", kitchen.bump, name="bump"),
    path("undo/", kitchen.undo, name="undo"),
    path("void/acknowledge/", kitchen.acknowledge, name="acknowledge"),
    path("sold-out/", kitchen.sold_out, name="sold_out"),
]
