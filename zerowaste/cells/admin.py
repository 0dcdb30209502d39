"""The cells in the admin: assessors and administrators move a cell through its lifecycle
with named permissions (review_cell, certify_cell, sanction_cell), each move with a reason,
through lifecycle.cell_transition; a cell's page shows its achievements charted (SVG drawn
on the server), its history, objections, evidence and reminders; assessors score its
indicators. Indicator sets per kind are edited here by administrators."""

from __future__ import annotations

import base64
from collections import defaultdict

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.admin.base import act_with_reason
from zerowaste.cells.charts import achievement_chart_svg
from zerowaste.cells.lifecycle import MOVES, REASON_MAX, cell_transition
from zerowaste.cells.models import (
    Cell,
    CellOperator,
    CellReminder,
    CellTransition,
    Evidence,
    Indicator,
    IndicatorScore,
    Objection,
)
from zerowaste.cells.scores import indicator_score_record


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TransitionInline(ReadOnlyInline):
    model = CellTransition
    fields = readonly_fields = ("at", "action", "from_status", "to_status", "actor", "reason")
    ordering = ("at", "id")


class ObjectionInline(ReadOnlyInline):
    model = Objection
    fields = readonly_fields = ("created_at", "reason")


class ReminderInline(ReadOnlyInline):
    model = CellReminder
    fields = readonly_fields = ("sent_at", "days_before", "expires_at")


class EvidenceInline(ReadOnlyInline):
    model = Evidence
    fields = readonly_fields = ("created_at", "caption", "picture", "sha256")

    @admin.display(description=gettext_lazy("picture"))
    def picture(self, obj):
        # The metadata-free thumbnail inline (the CSP allows data: images): no file route.
        try:
            with obj.thumbnail.open("rb") as handle:
                data = base64.b64encode(handle.read()).decode()
        except (OSError, ValueError):
            return "-"
        return format_html('<img src="data:image/jpeg;base64,{}" height="80" alt="">', data)


class OperatorInline(admin.TabularInline):
    model = CellOperator
    extra = 0
    raw_id_fields = ("user",)
    fields = ("user", "added_at")
    readonly_fields = ("added_at",)


class ScoreInline(admin.TabularInline):
    """Scores are added, never edited: a new assessment is a new row (the latest counts)."""

    model = IndicatorScore
    extra = 1
    can_delete = False
    fields = ("indicator", "score", "note", "assessor", "assessed_at")
    readonly_fields = ("assessor", "assessed_at")

    def has_change_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "indicator" and getattr(request, "_zerowaste_cell", None):
            kwargs["queryset"] = Indicator.objects.filter(kind=request._zerowaste_cell.kind)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def _move_action(action: str, permission: str, label):
    def run(modeladmin, request, queryset):
        def act(cell, reason: str) -> None:
            cell_transition(cell_id=cell.pk, action=action, actor=request.user, reason=reason)

        return act_with_reason(
            modeladmin,
            request,
            queryset,
            permission=permission,
            title=str(label),
            max_length=REASON_MAX,
            label=str,
            act=act,
            summary=lambda done: _("%(count)d cell(s) moved.") % {"count": done},
        )

    run.__name__ = action
    return admin.action(description=label, permissions=[permission])(run)


REVIEW, CERTIFY, SANCTION = "review_cell", "certify_cell", "sanction_cell"
ACTIONS = [
    _move_action("start_review", REVIEW, gettext_lazy("Start review")),
    _move_action("open_notice", REVIEW, gettext_lazy("Open the public notice period")),
    _move_action("reject", REVIEW, gettext_lazy("Reject the application")),
    _move_action("reconsider", REVIEW, gettext_lazy("Send back to review (objection upheld)")),
    _move_action("certify", CERTIFY, gettext_lazy("Certify (after the notice period)")),
    _move_action("renew", CERTIFY, gettext_lazy("Renew the certificate")),
    _move_action("suspend", SANCTION, gettext_lazy("Suspend")),
    _move_action("reinstate", SANCTION, gettext_lazy("Reinstate")),
    _move_action("revoke", SANCTION, gettext_lazy("Revoke")),
]
assert {a.__name__ for a in ACTIONS} <= set(MOVES)


@admin.register(Cell)
class CellAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "district", "status", "notice_ends_at", "expires_at")
    list_filter = ("status", "kind", "district")
    search_fields = ("name", "name_en")
    actions = ACTIONS
    # Status and dates move only through the lifecycle actions.
    readonly_fields = (
        "status",
        "status_changed_at",
        "notice_ends_at",
        "certified_at",
        "expires_at",
        "renewal_requested_at",
        "achievement_charts",
    )
    inlines = [
        OperatorInline,
        ScoreInline,
        TransitionInline,
        ObjectionInline,
        EvidenceInline,
        ReminderInline,
    ]

    def has_review_cell_permission(self, request) -> bool:
        return request.user.has_perm("zerowaste.review_cell")

    def has_certify_cell_permission(self, request) -> bool:
        return request.user.has_perm("zerowaste.certify_cell")

    def has_sanction_cell_permission(self, request) -> bool:
        return request.user.has_perm("zerowaste.sanction_cell")

    def get_form(self, request, obj=None, **kwargs):
        request._zerowaste_cell = obj
        return super().get_form(request, obj, **kwargs)

    def save_formset(self, request, form, formset, change):
        if formset.model is not IndicatorScore:
            return super().save_formset(request, form, formset, change)
        # Through the service: the assessor is who is logged in, and needs review_cell.
        for row in formset.save(commit=False):
            indicator_score_record(
                cell_id=form.instance.pk,
                indicator_code=row.indicator.code,
                score=row.score,
                note=row.note,
                assessor=request.user,
            )
        return None

    @admin.display(description=gettext_lazy("achievements"))
    def achievement_charts(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        series = defaultdict(list)
        for a in obj.achievements.order_by("month"):
            series[a.indicator_id].append((a.month, a.value))
        charts = [
            (achievement_chart_svg(title=i.name_zh, unit=i.unit, points=series[i.pk]),)
            for i in Indicator.objects.filter(kind=obj.kind)
            if series.get(i.pk)
        ]
        if not charts:
            return _("No monthly values yet.")
        return format_html_join("", '<div class="zw-chart-box">{}</div>', charts)


@admin.register(Indicator)
class IndicatorAdmin(admin.ModelAdmin):
    list_display = ("kind", "code", "name_zh", "name_en", "unit", "counts_as_kg_avoided")
    list_filter = ("kind",)
    search_fields = ("code", "name_zh", "name_en")
