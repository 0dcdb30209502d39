"""Two partner-event batches at once, for the same residents, stored and credited set-based:
the rows both touch (the event ids they share, the residents, their accounts, the issuance
shard) are taken in one order, so neither waits on the other in a cycle; an event both send
is stored and credited once, the other batch answering it as a duplicate. PostgreSQL only
(SQLite ignores row locks and serialises writers)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from carbon.adapters.partner_events import matching as event_matching
from carbon.adapters.partner_events.links import partner_link_create
from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus
from carbon.models import Claim, ClaimStatus, Transfer, TransferCode
from carbon.services.ledger_check import ledger_check
from carbon.services.linking import link_confirm_by_partner
from tests.carbon.api_helpers import credited_in_bulk
from tests.carbon.event_samples import push_events, ride
from tests.carbon.factories import UserFactory
from tests.carbon.test_ledger_concurrency import run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

UNLINKED = 600  # events of people nobody linked, in both batches


def test_two_overlapping_batches_credit_every_event_once_without_deadlock(
    transactional_db, bike_partner, settings, monkeypatch
):
    in_bulk = credited_in_bulk(monkeypatch, event_matching)
    settings.CARBON_FEED_BULK_CREDIT = True
    # Two shards: both batches are likely to debit the same one.
    settings.LEDGER_SYSTEM_SHARDS = 2
    refs = [f"rider-{i}" for i in range(16)]
    for ref in refs:
        link = partner_link_create(
            user=UserFactory(), partner=bike_partner.partner, external_ref=ref, consent=True
        ).link
        link_confirm_by_partner(link=link)
    local = timezone.localtime().replace(minute=0, second=0, microsecond=0)
    rounds = 3
    batches = []
    for r in range(rounds):
        day = local - timedelta(days=1 + r)
        # Sent by both: the same ids and contents (a partner's retry racing its first send).
        shared = [ride(f"s{r}-{ref}", ref, when=day.replace(hour=16)) for ref in refs[::2]]
        # Enough shared ids that the two inserts overlap (in the order sent, they deadlock).
        shared += [
            ride(f"x{r}-{i:04d}", f"nobody-{i}", when=day.replace(hour=17)) for i in range(UNLINKED)
        ]
        for worker in range(2):
            # Every resident in both batches, in opposite orders, the shared events too.
            order = refs if worker == 0 else list(reversed(refs))
            own = [
                ride(f"w{worker}-{r}-{ref}", ref, when=day.replace(hour=8 + 4 * worker))
                for ref in order
            ]
            both = shared if worker == 0 else list(reversed(shared))
            batches.append(own[:8] + both + own[8:])

    answers = []
    for r in range(rounds):
        pair = batches[2 * r : 2 * r + 2]
        results = run_together(2, lambda i, pair=pair: push_events(bike_partner, pair[i]))
        failures = [x for x in results if isinstance(x, BaseException)]
        assert not failures, failures
        assert all(x.status_code == 200 for x in results), [x.content for x in results]
        answers += [x.json() for x in results]

    own_events = rounds * 2 * len(refs)
    shared_events = rounds * len(refs[::2])
    events = own_events + shared_events
    assert PartnerEvent.objects.count() == events + rounds * UNLINKED
    assert PartnerEvent.objects.filter(status=PartnerEventStatus.CLAIMED).count() == events
    credited = Claim.objects.filter(status=ClaimStatus.CREDITED)
    assert credited.count() == events
    # Each shared event accepted by one batch, a duplicate in the other; no error anywhere.
    outcomes = Counter(
        (row["event_id"], row["status"]) for answer in answers for row in answer["rows"]
    )
    assert {status for _, status in outcomes} == {"accepted", "duplicate"}
    for r in range(rounds):
        for event_id in [f"s{r}-{ref}" for ref in refs[::2]] + [f"x{r}-{i:04d}" for i in (0, 599)]:
            assert outcomes[(event_id, "accepted")] == 1
            assert outcomes[(event_id, "duplicate")] == 1
    # Each claim one award, each award one claim: nothing credited twice.
    awards = Transfer.objects.filter(code=TransferCode.AWARD)
    assert awards.count() == events
    assert awards.aggregate(s=Sum("amount_g"))["s"] == credited.aggregate(s=Sum("credited_g"))["s"]
    # Most of them set-based (a batch that met the other's ids went one at a time).
    assert len(in_bulk) > events // 3, len(in_bulk)
    assert ledger_check() == []
