"""rows_bulk.rows_insert (COPY on PostgreSQL) writes the rows bulk_create writes: the same
columns and values, keys set on the objects, a constraint refused as IntegrityError with
nothing written. rows_bulk.rows_set_by_id (UPDATE ... FROM unnest on PostgreSQL, a CASE
elsewhere) writes the rows bulk_update writes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from carbon.adapters.transit.models import Station, Tap, TransitMode, Trip, TripStatus
from carbon.models import (
    Account,
    AccountKind,
    Behaviour,
    Claim,
    ClaimStatus,
    EmissionFactor,
    Lot,
    Transfer,
    TransferCode,
    TransferFlag,
)
from carbon.services.ledger import system_account
from carbon.services.rows_bulk import rows_insert, rows_number, rows_set_by_id
from tests.carbon.factories import UserFactory

pytestmark = pytest.mark.django_db

# Written by the database or the clock, not by the caller: never compared.
GENERATED = {"id", "created_at", "received_at", "submitted_at"}


def _rows(model, pks) -> list[dict]:
    return [
        {k: v for k, v in model_to_dict(obj).items() if k not in GENERATED}
        for obj in sorted(model.objects.filter(pk__in=pks), key=lambda o: pks.index(o.pk))
    ]


def _world(operator, prefix: str, now=None):
    """Trips, claims, transfers and lots as a feed batch makes them: nulls, decimals, JSON,
    UUIDs, aware datetimes, choices."""
    now = now or timezone.now()
    stations = list(Station.objects.order_by("id")[:2])
    user = UserFactory()
    account = Account.objects.create(kind=AccountKind.RESIDENT, user=user)
    issuance = system_account(kind=AccountKind.ISSUANCE)
    metro = Behaviour.objects.get(code="metro")
    trips = [
        Trip(
            card_hash=f"{prefix}{i:063d}",
            partner=operator.partner,
            mode=TransitMode.METRO,
            entry_station=stations[0],
            exit_station=stations[1] if i % 2 else None,
            started_at=now - timedelta(hours=i),
            ended_at=now - timedelta(hours=i) + timedelta(minutes=20) if i % 2 else None,
            distance_m=4860 if i % 2 else None,
            status=TripStatus.AWAITING_LINK,
            anomaly="" if i % 2 else "missing_exit",
            anomaly_detail="" if i % 2 else "No exit tap within 4 h of the entry.",
        )
        for i in range(3)
    ]
    taps = [
        Tap(
            partner=operator.partner,
            record_id=f"{prefix}-{i}",
            payload_hash="a" * 64,
            card_hash=trips[0].card_hash,
            station=stations[0],
            mode=TransitMode.METRO,
            direction="in",
            tapped_at=now - timedelta(minutes=i),
        )
        for i in range(3)
    ]
    transfers = [
        Transfer(
            idempotency_key=f"{prefix}:award:{i}",
            payload_hash="b" * 64,
            debit_account_id=issuance.pk,
            credit_account_id=account.pk,
            amount_g=381 + i,
            flag=TransferFlag.POSTED,
            code=TransferCode.AWARD,
            category=metro.category,
            # What COPY's text format must escape: tab, newline, backslash, a literal \N
            # (its NULL marker), and an empty string that must not come back as NULL.
            description=[f"Metro: 4.86 km ({i})", "a\tb\\N\nc\\", ""][i],
            reference=f"claim:{prefix}{i}",
        )
        for i in range(3)
    ]
    lots = [
        Lot(
            account_id=account.pk,
            award=t,
            category=t.category,
            amount_g=t.amount_g,
            remaining_g=t.amount_g,
            expires_at=now + timedelta(days=365),
        )
        for t in transfers
    ]
    claims = [
        Claim(
            id=uuid.uuid4(),
            user=user,
            behaviour=metro,
            quantity=Decimal("4.860"),
            occurred_at=now - timedelta(hours=i),
            evidence_type="transit",
            evidence={"trip": i, "nested": {"list": [1, "二", None, "\\N\t"]}},
            partner=operator.partner,
            idempotency_key=f"trip:{prefix}{i}",
            request_hash="c" * 64,
            status=ClaimStatus.CREDITED,
            receipt={"code": "credited", "steps": [{"step": "credit", "amount_g": 381}]},
            credited_g=381,
            award=transfers[i],
            factor=EmissionFactor.objects.filter(behaviour=metro).first(),
            decided_at=now,
        )
        for i in range(3)
    ]
    return trips, taps, transfers, lots, claims


class _Undo(Exception):
    pass


# On SQLite rows_insert is bulk_create itself: the comparison means something on PostgreSQL.
@pytest.mark.postgres
def test_rows_insert_writes_the_rows_bulk_create_writes(transit, operator):
    # bulk_create's rows, read back, then undone: the same values written again by COPY.
    now = timezone.now()
    try:
        with transaction.atomic():
            trips, taps, transfers, lots, claims = _world(operator, "1", now)
            Trip.objects.bulk_create(trips)
            Tap.objects.bulk_create(taps)
            Transfer.objects.bulk_create(transfers)
            Lot.objects.bulk_create(lots)
            Claim.objects.bulk_create(claims)
            expected = _snapshot(trips, taps, transfers, lots, claims)
            raise _Undo
    except _Undo:
        pass

    trips, taps, transfers, lots, claims = _world(operator, "1", now)
    rows_insert(objs=trips)
    rows_insert(objs=taps, with_ids=False)
    rows_number(groups=[transfers, lots])
    rows_insert(objs=transfers)
    rows_insert(objs=lots)
    rows_insert(objs=claims)

    for obj in [*trips, *transfers, *lots, *claims]:
        assert obj.pk is not None and not obj._state.adding
    assert len({t.pk for t in trips}) == 3
    assert [lot.award_id for lot in lots] == [t.pk for t in transfers]
    assert [c.award_id for c in claims] == [t.pk for t in transfers]
    assert _snapshot(trips, taps, transfers, lots, claims) == expected
    # The values come back as the ORM reads them: JSON, decimals, UUIDs, times.
    back = Claim.objects.get(pk=claims[1].pk)
    assert back.evidence == {"trip": 1, "nested": {"list": [1, "二", None, "\\N\t"]}}
    assert Transfer.objects.get(pk=transfers[1].pk).description == "a\tb\\N\nc\\"
    assert Transfer.objects.get(pk=transfers[2].pk).description == ""
    assert back.quantity == Decimal("4.860") and back.occurred_at == claims[1].occurred_at
    assert all(t.received_at for t in Tap.objects.filter(record_id__startswith="1-"))


def _snapshot(trips, taps, transfers, lots, claims) -> list:
    """The rows as stored, without what differs between two runs by design: keys, clock
    columns, and the references to the world's own user and accounts."""
    own = {"user", "credit_account", "debit_account", "award", "account"}  # shard: random

    def rows(model, objs):
        return [{k: v for k, v in r.items() if k not in own} for r in _rows(model, objs)]

    stored_taps = Tap.objects.filter(record_id__in=[t.record_id for t in taps])
    return [
        rows(Trip, [t.pk for t in trips]),
        sorted(
            (
                {k: v for k, v in model_to_dict(t).items() if k not in GENERATED}
                for t in stored_taps
            ),
            key=lambda r: r["record_id"],
        ),
        rows(Transfer, [t.pk for t in transfers]),
        rows(Lot, [lot.pk for lot in lots]),
        rows(Claim, [c.pk for c in claims]),
    ]


@pytest.mark.postgres
def test_a_refused_row_writes_nothing(transit, operator):
    trips, taps, *_ = _world(operator, "2")
    rows_insert(objs=taps[:1], with_ids=False)
    again = _world(operator, "2")[1]  # the first record id is taken
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(objs=again, with_ids=False)
    assert Tap.objects.filter(record_id__startswith="2-").count() == 1


def test_copy_is_counted_as_a_statement(transit, operator):
    from django.test.utils import CaptureQueriesContext

    trips = _world(operator, "3")[0]
    with CaptureQueriesContext(connection) as ctx:
        rows_insert(objs=trips)
    # PostgreSQL: the keys from the sequence, then the COPY; elsewhere one INSERT.
    expected = 2 if connection.vendor == "postgresql" else 1
    assert len(ctx.captured_queries) == expected, ctx.captured_queries
    assert Trip.objects.filter(pk__in=[t.pk for t in trips]).count() == 3


def test_rows_set_by_id_writes_the_rows_bulk_update_writes(transit, operator):
    """Both databases: a UUID foreign key (a trip's claim) with a column fixed for every row
    (the status), an integer one (a tap's trip) set to rows and to NULL; a row not named is
    left alone."""
    trips, taps, transfers, lots, claims = _world(operator, "4")
    Trip.objects.bulk_create(trips)
    for t in taps:
        t.trip = trips[2]
    Tap.objects.bulk_create(taps)
    Transfer.objects.bulk_create(transfers)
    Lot.objects.bulk_create(lots)
    Claim.objects.bulk_create(claims)
    trip_ids, tap_ids = [t.pk for t in trips], [t.pk for t in taps]
    claim_of = {trips[0].pk: claims[1].pk, trips[1].pk: claims[0].pk}
    trip_of = {taps[0].pk: trips[1].pk, taps[1].pk: trips[0].pk, taps[2].pk: None}

    def stored() -> list:
        return [
            [model_to_dict(t) for t in Trip.objects.filter(pk__in=trip_ids).order_by("pk")],
            [model_to_dict(t) for t in Tap.objects.filter(pk__in=tap_ids).order_by("pk")],
        ]

    before = stored()
    try:
        with transaction.atomic():
            changed = list(Trip.objects.filter(pk__in=claim_of))
            for trip in changed:
                trip.claim_id, trip.status = claim_of[trip.pk], TripStatus.CLAIMED
            Trip.objects.bulk_update(changed, ["claim", "status"])
            moved = list(Tap.objects.filter(pk__in=trip_of))
            for t in moved:
                t.trip_id = trip_of[t.pk]
            Tap.objects.bulk_update(moved, ["trip"])
            expected = stored()
            raise _Undo
    except _Undo:
        pass
    assert stored() == before != expected

    assert (
        rows_set_by_id(
            model=Trip, field="claim", values=claim_of, fixed={"status": TripStatus.CLAIMED}
        )
        == 2
    )
    assert rows_set_by_id(model=Tap, field="trip", values=trip_of) == 3
    assert rows_set_by_id(model=Tap, field="trip", values={}) == 0
    assert stored() == expected
    assert Trip.objects.get(pk=trips[0].pk).claim_id == claims[1].pk
    assert Trip.objects.get(pk=trips[2].pk).status == TripStatus.AWAITING_LINK
    assert Tap.objects.get(pk=taps[2].pk).trip_id is None
