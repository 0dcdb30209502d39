"""The campaigns' live leaderboards: one board per campaign, its candidates by counted votes,
registered with the core's leaderboard registry as a family and fed by the campaign signals.

The votes are the source of truth: a rebuild reads `campaign_tally_rows`; live, each counted
vote adds 1 to its candidate and a reversal by the anomaly review takes back what it
removed, so the live board equals the rebuilt one. All time only: a campaign has its own
voting period, and a reversal removes votes from the tally without saying when they were
cast.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.text import format_lazy
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from carbon.leaderboards import engine, registry
from carbon.leaderboards.registry import BoardFamily, BoardSource, Who
from carbon.leaderboards.windows import Window, local_date
from zerowaste.campaigns.models import Campaign, Candidate, Vote
from zerowaste.campaigns.signals import vote_recorded, votes_reversed
from zerowaste.campaigns.tally import campaign_tally_rows

FAMILY = "zerowaste.campaign_votes"

_COUNTS = _(
    "Votes counted for each candidate of this campaign: every vote cast, less those the "
    "anomaly review removed (the campaign's published tally). Candidates without a vote are "
    "not listed."
)


def campaign_series(campaign_id: int) -> str:
    return f"{FAMILY}.{campaign_id}"


def _zh() -> bool:
    return (get_language() or "").startswith("zh")


def _candidate_member(candidate_id: int) -> str:
    return engine.member_key(candidate_id)


def _events(campaign_id: int):
    # A campaign's board is all-time only, so the day an event counts on does not matter.
    today = local_date()
    for member, votes in campaign_tally_rows(campaign_id=campaign_id):
        candidate_id = int(member.removeprefix("candidate:"))
        yield _candidate_member(candidate_id), today, votes


def _describe(campaign_id: int):
    def describe(members: Sequence[str]) -> dict[str, Who]:
        ids = [int(m) for m in members if m.isdigit()]
        zh = _zh()
        return {
            _candidate_member(c.pk): Who(
                name=c.cell.name if zh or not c.cell.name_en else c.cell.name_en,
                community=c.cell.community.name if c.cell.community_id else None,
                district=c.cell.district.name,
            )
            for c in Candidate.objects.filter(campaign_id=campaign_id, pk__in=ids).select_related(
                "cell__community", "cell__district"
            )
        }

    return describe


# A campaign's titles by id, for its board source. Every vote's after-commit board update
# resolves the campaign's series twice (the windows it keeps, the boards to push), and each
# resolution read the campaign: two queries a vote beside the vote's own one statement. So
# they are kept a little while in each process, and dropped here when a campaign is saved
# or deleted; another process sees a new title within _TITLES_SECONDS. A campaign not found
# is not kept (one created meanwhile must not be unknown for that long).
_TITLES_SECONDS = 30.0
_titles: dict[int, tuple[float, tuple[str, str]]] = {}


def _campaign_titles(pk: int) -> tuple[str, str] | None:
    now = time.monotonic()
    kept = _titles.get(pk)
    if kept is not None and now - kept[0] < _TITLES_SECONDS:
        return kept[1]
    found = Campaign.objects.filter(pk=pk).values_list("title_zh", "title_en").first()
    if found is None:
        _titles.pop(pk, None)
        return None
    _titles[pk] = (now, found)
    return found


def _forget_titles(sender, instance: Campaign, **kwargs) -> None:
    _titles.pop(instance.pk, None)


def _source(scope: str) -> BoardSource | None:
    if not scope.isdigit():
        return None
    pk = int(scope)
    titles = _campaign_titles(pk)
    if titles is None:
        return None
    title_zh, title_en = titles
    title = lazy(lambda: title_zh if _zh() else title_en, str)()
    return BoardSource(
        key=campaign_series(pk),
        title=format_lazy(_("{campaign}: candidates by counted votes"), campaign=title),
        counts=_COUNTS,
        unit="votes",
        member_kind="candidate",
        events=lambda: _events(pk),
        describe=_describe(pk),
        windows=(Window.ALL,),
    )


def _scopes():
    return [str(pk) for pk in Campaign.objects.order_by("pk").values_list("pk", flat=True)]


FAMILY_SOURCE = BoardFamily(key=FAMILY, scopes=_scopes, source=_source)


def _on_vote(sender, *, campaign_id: int, candidate_id: int, **kwargs) -> None:
    engine.board_record(
        series=campaign_series(campaign_id),
        entries=[(_candidate_member(candidate_id), 1, timezone.now())],
    )


def _on_reversal(sender, *, campaign_id: int, counts: dict[int, int], **kwargs) -> None:
    now = timezone.now()
    engine.board_record(
        series=campaign_series(campaign_id),
        entries=[(_candidate_member(c), -n, now) for c, n in counts.items() if n],
    )


def campaign_boards_register() -> None:
    """From ZerowasteConfig.ready(): the family, and the signals that feed it."""
    registry.register(FAMILY_SOURCE)
    post_save.connect(_forget_titles, sender=Campaign, dispatch_uid="zerowaste-campaign-titles")
    post_delete.connect(_forget_titles, sender=Campaign, dispatch_uid="zerowaste-campaign-titles")
    vote_recorded.connect(_on_vote, sender=Vote, dispatch_uid="zerowaste-campaign-board-vote")
    votes_reversed.connect(
        _on_reversal, sender=Vote, dispatch_uid="zerowaste-campaign-board-reversal"
    )
