"""The leaderboards' API: the boards and their definitions, one board's top rows or the rows
around me. Thin: validate the query, call the engine, render."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.leaderboards import engine, registry


class WindowSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["all", "week", "month", "7d", "30d"])
    description = serializers.CharField()


class DefinitionSerializer(serializers.Serializer):
    counts = serializers.CharField(help_text=_("What counts, to reconcile with your history."))
    unit = serializers.CharField()
    members = serializers.CharField(help_text=_("What a row is: resident, community, district..."))
    window = WindowSerializer()
    ties = serializers.CharField()
    derived_from = serializers.CharField(allow_null=True, default=None)


class BoardSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    definition = DefinitionSerializer()
    socket = serializers.CharField(help_text=_("The WebSocket path of this board's live updates."))


class WhoSerializer(serializers.Serializer):
    name = serializers.CharField(
        allow_null=True,
        default=None,
        help_text=_("Null for a resident who erased their account or set no display name."),
    )
    community = serializers.CharField(allow_null=True, default=None)
    district = serializers.CharField(allow_null=True, default=None)


class RowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    score = serializers.IntegerField()
    who = WhoSerializer()


class MeRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    score = serializers.IntegerField()


class BoardRowsSerializer(BoardSerializer):
    seq = serializers.IntegerField(help_text=_("The board's last pushed sequence number."))
    rows = RowSerializer(many=True)
    me = MeRowSerializer(
        allow_null=True,
        default=None,
        help_text=_("My rank and score here (with ?around=me); null when I have none."),
    )


class BoardQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10)
    around = serializers.ChoiceField(choices=["me"], required=False)

    def validate_limit(self, value):
        return min(value, settings.LEADERBOARD_MAX_LIMIT)


def _board_json(board) -> dict:
    return {
        "key": board.key,
        "title": str(board.title),
        "definition": board.definition(),
        "socket": f"/ws/v1/leaderboards/{board.key}",
    }


def _row_json(row) -> dict:
    who = row.who
    return {
        "rank": row.rank,
        "score": row.score,
        "who": {"name": who.name, "community": who.community, "district": who.district},
    }


class BoardListView(APIView):
    @extend_schema(responses=BoardSerializer(many=True))
    def get(self, request):
        return Response([_board_json(b) for b in registry.boards()])


class BoardView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("key", str, OpenApiParameter.PATH),
            BoardQuerySerializer,
        ],
        responses=BoardRowsSerializer,
    )
    def get(self, request, key: str):
        query = BoardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        board = registry.board_get(key)
        limit = query.validated_data["limit"]
        me = None
        if query.validated_data.get("around") == "me":
            member = engine.member_for_user(board=board, user=request.user)
            # Half the rows above me, half below.
            before = (limit - 1) // 2
            rows, me_row = engine.board_around(
                board=board, member=member, before=before, after=limit - 1 - before
            )
            if me_row is not None:
                me = {"rank": me_row.rank, "score": me_row.score}
        else:
            rows = engine.board_top(board=board, limit=limit)
        return Response(
            {
                **_board_json(board),
                "seq": engine.board_seq(board=board),
                "rows": [_row_json(r) for r in rows],
                "me": me,
            }
        )
