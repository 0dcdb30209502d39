"""The checklist over HTTP: search taxa by name, or list the threatened ones."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import AllowAny

from biodiversity.taxa.models import Rank, Taxon


class BoundedLimitOffset(LimitOffsetPagination):
    """Limit and offset, the offset capped so no client can ask the database for an offset
    it cannot hold (a 500 on PostgreSQL)."""

    default_limit = 50
    max_limit = 200
    max_offset = 100_000

    def get_offset(self, request):
        return min(super().get_offset(request), self.max_offset)

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for p in params:
            if p["name"] == self.limit_query_param:
                p["schema"].update({"minimum": 1, "maximum": self.max_limit})
            if p["name"] == self.offset_query_param:
                p["schema"].update({"minimum": 0, "maximum": self.max_offset})
        return params


class TaxonSerializer(serializers.ModelSerializer):
    rank = serializers.SerializerMethodField()
    threatened = serializers.BooleanField(source="is_threatened", read_only=True)
    parent = serializers.IntegerField(source="parent_id", read_only=True, default=None)

    class Meta:
        model = Taxon
        fields = [
            "id",
            "scientific_name",
            "chinese_name",
            "rank",
            "parent",
            "protection_level",
            "iucn",
            "threatened",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=[n.lower() for n in Rank.names]))
    def get_rank(self, taxon: Taxon) -> str:
        return Rank(taxon.rank).name.lower()


class TaxaQuery(serializers.Serializer):
    q = serializers.CharField(required=False, max_length=100, help_text="Part of a name.")
    threatened = serializers.BooleanField(required=False, allow_null=True, default=None)


class TaxonListView(generics.ListAPIView):
    """The checklist: search by scientific or Chinese name (`q`), `threatened=true` for the
    taxa whose locations are obscured (national key protection I/II, IUCN VU, EN, CR, EW)."""

    serializer_class = TaxonSerializer
    permission_classes = [AllowAny]
    pagination_class = BoundedLimitOffset

    @extend_schema(parameters=[TaxaQuery])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = TaxaQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        qs = Taxon.objects.order_by("rank", "scientific_name", "id")
        if text := query.validated_data.get("q"):
            qs = qs.search(text)
        if query.validated_data.get("threatened") is True:
            qs = qs.threatened()
        elif query.validated_data.get("threatened") is False:
            qs = qs.exclude(pk__in=Taxon.objects.threatened().values("pk"))
        return qs
