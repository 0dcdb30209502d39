"""Routes of the cells slice, under /api/v1/ (namespace `zerowaste`)."""

from django.urls import path

from zerowaste.cells import api

urlpatterns = [
    path("zerowaste/cells", api.CellListView.as_view(), name="cells"),
    path("zerowaste/cells/<int:pk>", api.CellDetailView.as_view(), name="cell"),
    path(
        "zerowaste/cells/<int:pk>/objections", api.ObjectionView.as_view(), name="cell-objections"
    ),
    path("zerowaste/stats", api.StatsView.as_view(), name="stats"),
    path("zerowaste/my/cells", api.MyCellsView.as_view(), name="my-cells"),
    path("zerowaste/my/cells/<int:pk>", api.MyCellView.as_view(), name="my-cell"),
    path(
        "zerowaste/my/cells/<int:pk>/achievements",
        api.MyCellAchievementsView.as_view(),
        name="my-cell-achievements",
    ),
    path(
        "zerowaste/my/cells/<int:pk>/evidence",
        api.MyCellEvidenceView.as_view(),
        name="my-cell-evidence",
    ),
    path(
        "zerowaste/my/cells/<int:pk>/renewal",
        api.MyCellRenewalView.as_view(),
        name="my-cell-renewal",
    ),
    path(
        "zerowaste/my/cells/<int:pk>/reapply",
        api.MyCellReapplyView.as_view(),
        name="my-cell-reapply",
    ),
]
