"""Institutions, their members, and survey projects with their members in the admin."""

from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin

from biodiversity.institutions.models import (
    Institution,
    InstitutionMember,
    ProjectMember,
    SurveyProject,
)


class InstitutionMemberInline(admin.TabularInline):
    model = InstitutionMember
    raw_id_fields = ["user"]
    extra = 0


@admin.register(Institution)
class InstitutionAdmin(admin.ModelAdmin):
    list_display = ["name", "chinese_name", "created_at"]
    search_fields = ["name", "chinese_name"]
    inlines = [InstitutionMemberInline]


class ProjectMemberInline(admin.TabularInline):
    model = ProjectMember
    raw_id_fields = ["user"]
    extra = 0


@admin.register(SurveyProject)
class SurveyProjectAdmin(GISModelAdmin):
    list_display = [
        "name",
        "institution",
        "starts_at",
        "ends_at",
        "members_only",
        "grants_true_coordinates",
    ]
    list_filter = ["institution", "members_only", "grants_true_coordinates"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ProjectMemberInline]
