"""Routes of the public notice board, under /zerowaste/."""

from django.urls import path

from zerowaste.board import views

app_name = "zerowaste-board"

urlpatterns = [
    path("", views.board_index, name="index"),
    path("cells/<int:pk>/", views.board_cell, name="cell"),
    path("campaigns/<int:pk>/", views.board_campaign, name="campaign"),
]
