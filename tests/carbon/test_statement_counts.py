"""How many SQL statements the hot paths send, so the count cannot creep back (issue 13): one
self-declared claim over the API, and credited transit trips through the operator's tap batch.

The expected counts are the constants below, exact: a change that adds a statement fails here,
and one that removes statements updates the constant in the same commit (say why there).
Counted inside the test's transaction, so the service's transaction shows as SAVEPOINT and
RELEASE (BEGIN and COMMIT in production); authentication is forced (a bearer token adds the
user's row, 1 statement) and every issuance shard exists beforehand (the first award on a
shard creates it: 3 statements once per shard and database).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carbon.models import AccountKind
from carbon.services.ledger import system_account
from tests.carbon.api_helpers import claim_payload
from tests.carbon.transit_samples import CARD, ago, linked, pushed, tap

# One self-declared claim, credited, over POST /api/v1/claims:
#   SAVEPOINT (BEGIN), the resident's lock (with their ledger
#   account, read in the same statement), RELEASE (COMMIT)    3
#   every rule input in one read (a retry's claim included)   1
#   ledger_award, given the account the lock read:
#     PostgreSQL: one statement (transfer, both counters, lot)   1
#     SQLite: SAVEPOINT, the account locked, the transfer, 2 balance updates, the lot,
#     RELEASE                                                   6
#   the claim, inserted once with its outcome                 1
# The behaviour and its factor come from the cached catalogue, the issuance shard's id from
# the process cache: 0. Before issue 13: 20; 12 and 7 until the lock read the account too.
SELF_CLAIM_STATEMENTS = {"sqlite": 11, "postgresql": 6}

# A signed tap batch that makes one credited trip (after a first batch warmed the network
# cache), and what each further trip in the same batch adds. Before issue 13: 50 (51) and 22.
# PostgreSQL adds one statement a batch (the advisory lock that pairs one card's taps at a
# time; SQLite serialises writers) and saves five in the award (one statement). A batch of
# one trip takes the per-trip path; from two trips the batch is credited set-based
# (carbon.services.claims_bulk) in a fixed number of statements: on SQLite the same count as
# one trip's, on PostgreSQL six more (the bulk path's own reads and row locks, against the
# single trip's lock that also reads the ledger account and its one-statement award);
# tests/carbon/test_transit_bulk.py shows it does not grow with the batch. Then 46 (42) and
# 0 (5); since: the single trip's lock reads the account (one fewer for a batch of one), the
# pairing reads neither the network's version again (3, the batch checked it) nor the
# factors in force again (2, read once for pairing and crediting); on PostgreSQL the bulk
# path writes by COPY, whose rows are numbered first (one statement for the trips, one for
# transfers and lots), and the issuance shard's lock is its UPDATE (one statement fewer).
# Then the bulk path took the behaviours and factors from the cached catalogue (one version
# for the batch) instead of reading them (two statements fewer): 0 (6) became -2 (4).
TRANSIT_BATCH_ONE_TRIP_STATEMENTS = {"sqlite": 40, "postgresql": 37}
TRANSIT_STATEMENTS_SECOND_TRIP = {"sqlite": -2, "postgresql": 4}


def _statements(ctx: CaptureQueriesContext) -> str:
    return "\n".join(f"{i + 1:3}. {q['sql'][:160]}" for i, q in enumerate(ctx.captured_queries))


@pytest.fixture
def all_shards(db, django_capture_on_commit_callbacks):
    """Every issuance shard exists and its id is cached, as in a process after its first
    awards (the cache fills on commit, which the test's transaction never reaches)."""
    with django_capture_on_commit_callbacks(execute=True):
        for shard in range(max(1, settings.LEDGER_SYSTEM_SHARDS)):
            system_account(kind=AccountKind.ISSUANCE, shard=shard)


@pytest.mark.django_db
def test_one_self_declared_claim_sends_a_fixed_number_of_statements(auth_api, metro, all_shards):
    # A first claim: the catalogue is loaded and the resident has credits to count.
    first = auth_api.post(
        "/api/v1/claims", claim_payload("metro", 1, evidence={"type": "self"}), format="json"
    )
    assert first.status_code == 201

    with CaptureQueriesContext(connection) as ctx:
        response = auth_api.post(
            "/api/v1/claims", claim_payload("metro", 10, evidence={"type": "self"}), format="json"
        )

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "credited"
    assert len(ctx) == SELF_CLAIM_STATEMENTS[connection.vendor], _statements(ctx)


def _trip_taps(start, number: str) -> list[dict]:
    return [
        tap("m-jiedaokou", "in", start, number=number),
        tap("m-wuchang-railway-station", "out", start + timedelta(minutes=18), number=number),
    ]


@pytest.mark.django_db
def test_credited_transit_trips_send_a_fixed_number_of_statements(
    transit, operator, resident, all_shards
):
    linked(resident)
    # The first batch loads the network graph and the catalogue.
    assert pushed(operator, _trip_taps(ago(hours=8), CARD))["trips"]["claims"] == 1

    with CaptureQueriesContext(connection) as one:
        body = pushed(operator, _trip_taps(ago(hours=6), CARD))
    assert body["trips"]["claims"] == 1
    with CaptureQueriesContext(connection) as two:
        body = pushed(operator, _trip_taps(ago(hours=4), CARD) + _trip_taps(ago(hours=2), CARD))
    assert body["trips"]["claims"] == 2

    assert len(one) == TRANSIT_BATCH_ONE_TRIP_STATEMENTS[connection.vendor], _statements(one)
    assert len(two) - len(one) == TRANSIT_STATEMENTS_SECOND_TRIP[connection.vendor], _statements(
        two
    )


# A signed partner-event batch of usual events (linked residents who were credited before,
# after a first batch loaded the catalogue): the partner's key and nonce (5), its
# behaviours, the stored ids and the links read once (3), then the events inserted, the
# claims decided and credited set-based (carbon.services.claims_bulk: its reads, the
# residents' locks, the ledger's writes), the events marked claimed, in one savepoint. The
# same count for 2 events as for 6 (SQLite splits bulk inserts only past ~90 rows). Before
# issue 13's partner-batch change: ~28 statements an event (the per-event path, still taken
# by a batch of one valid event and by any unusual event).
# 28 on both at first; then the issuance shard's lock became its UPDATE (one fewer), and on
# PostgreSQL the ledger's rows are numbered for COPY (one more); then the set-based path
# took the behaviours and factors from the cached catalogue (two fewer).
PARTNER_BATCH_STATEMENTS = {"sqlite": 25, "postgresql": 26}


@pytest.mark.django_db
def test_a_partner_event_batch_sends_a_fixed_number_of_statements(bike_partner, all_shards):
    from carbon.adapters.partner_events.links import partner_link_create
    from carbon.services.linking import link_confirm_by_partner
    from tests.carbon.event_samples import push_events, ride
    from tests.carbon.factories import UserFactory

    refs = [f"u-{i}" for i in range(6)]
    for ref in refs:
        link = partner_link_create(
            user=UserFactory(), partner=bike_partner.partner, external_ref=ref, consent=True
        ).link
        link_confirm_by_partner(link=link)

    def batch(name: str, hours: int, count: int) -> list[dict]:
        return [ride(f"{name}-{ref}", ref, when=ago(hours=hours)) for ref in refs[:count]]

    def sent(events: list[dict]) -> CaptureQueriesContext:
        with CaptureQueriesContext(connection) as ctx:
            response = push_events(bike_partner, events)
        assert response.status_code == 200, response.content
        assert [r["claim_status"] for r in response.json()["rows"]] == ["credited"] * len(events)
        return ctx

    sent(batch("first", 8, 6))  # the catalogue loaded, every resident's account opened
    two = sent(batch("two", 6, 2))
    six = sent(batch("six", 4, 6))

    assert len(two) == PARTNER_BATCH_STATEMENTS[connection.vendor], _statements(two)
    assert len(six) == len(two), _statements(six)
