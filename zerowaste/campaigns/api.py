"""The campaigns API: campaigns (public), one with its rules, candidates and live tally,
and a verified resident's vote. Thin: validate, call one service, render."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from carbon.api.permissions import IsResident
from zerowaste.campaigns import serializers as s
from zerowaste.campaigns.errors import CampaignNotFound
from zerowaste.campaigns.models import Campaign
from zerowaste.campaigns.tally import campaign_removed_votes, campaign_tally
from zerowaste.campaigns.votes import vote_cast


class CampaignListView(APIView):
    """Zero-waste family award campaigns, the newest voting first. No login needed."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: s.CampaignSummarySerializer(many=True)})
    def get(self, request):
        return Response(s.CampaignSummarySerializer(Campaign.objects.all(), many=True).data)


class CampaignDetailView(APIView):
    """A campaign: its rules, windows and weights, its candidates with the live tally, the
    number of votes the anomaly review removed and, once published, the results."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: s.CampaignDetailSerializer,
            404: OpenApiResponse(description="`campaign_not_found`."),
        }
    )
    def get(self, request, pk: int):
        campaign = Campaign.objects.filter(pk=pk).first()
        if campaign is None:
            raise CampaignNotFound()
        context = {
            "tally": campaign_tally(campaign_id=campaign.pk),
            "removed": campaign_removed_votes(campaign_id=campaign.pk),
        }
        return Response(s.CampaignDetailSerializer(campaign, context=context).data)


class VoteView(APIView):
    permission_classes = [IsResident]

    @extend_schema(
        request=s.VoteCreateSerializer,
        responses={
            201: s.VoteSerializer,
            200: OpenApiResponse(s.VoteSerializer, description="A retry: the vote this key cast."),
            400: OpenApiResponse(description="`invalid`, `not_a_candidate`."),
            403: OpenApiResponse(
                description="`voter_not_verified` (`details.missing` says what), or not a resident."
            ),
            404: OpenApiResponse(description="`campaign_not_found`."),
            409: OpenApiResponse(
                description="`voting_not_open`, `daily_votes_used`, "
                "`already_voted_for_candidate`, `idempotency_conflict`, `account_closed`."
            ),
        },
    )
    def post(self, request, pk: int):
        """Vote for a candidate: N votes a day (the campaign's setting), one per candidate a
        day. Retrying with the same key answers the same vote."""
        data = s.VoteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cast = vote_cast(
            user=request.user,
            campaign_id=pk,
            candidate_id=data.validated_data["candidate"],
            idempotency_key=str(data.validated_data["idempotency_key"]),
        )
        return Response(
            s.VoteSerializer(cast).data,
            status=status.HTTP_201_CREATED if cast.created else status.HTTP_200_OK,
        )
