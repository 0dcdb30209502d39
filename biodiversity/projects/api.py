"""Survey projects over HTTP: a project's description, window and statistics (public)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from biodiversity.institutions.models import SurveyProject
from biodiversity.projects.stats import project_statistics


class ProjectStatisticsSerializer(serializers.Serializer):
    sightings = serializers.IntegerField()
    species = serializers.IntegerField()
    observers = serializers.IntegerField()


class ProjectSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    institution = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    members_only = serializers.BooleanField()
    statistics = ProjectStatisticsSerializer()


class ProjectDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: ProjectSerializer,
            404: OpenApiResponse(description="`not_found`: no project has this slug."),
        }
    )
    def get(self, request, slug):
        """A survey project and its statistics (sightings, species, observers; see
        biodiversity/projects/stats.py for the rule behind each number)."""
        project = SurveyProject.objects.select_related("institution").filter(slug=slug).first()
        if project is None:
            raise NotFound()
        return Response(
            ProjectSerializer(
                {
                    "slug": project.slug,
                    "name": project.name,
                    "description": project.description,
                    "institution": str(project.institution),
                    "starts_at": project.starts_at,
                    "ends_at": project.ends_at,
                    "members_only": project.members_only,
                    "statistics": project_statistics(project=project),
                }
            ).data
        )
