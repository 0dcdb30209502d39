"""Routes of the offsets slice, included under /api/v1/rewards/ by config/urls.py."""

from django.urls import path

from rewards.offsets import api

app_name = "offsets"

urlpatterns = [
    path("offsets", api.OffsetsView.as_view(), name="offsets"),
    path("offsets/links", api.LoanLinksView.as_view(), name="links"),
    path("offsets/links/<int:pk>", api.LoanLinkView.as_view(), name="link"),
    path("offsets/statement", api.StatementView.as_view(), name="statement"),
    path("offsets/bank/links", api.BankLinkDecisionView.as_view(), name="bank-links"),
    path("offsets/bank/answers", api.BankOffsetAnswersView.as_view(), name="bank-answers"),
]
