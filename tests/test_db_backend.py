"""The PostgreSQL backend's `__in` (config/postgis/base.py): a list of plain values goes as
one array parameter (`= ANY(%s)`), and finds exactly the rows Django's IN list finds."""

from __future__ import annotations

import uuid

import pytest
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carbon.models import Community, User
from tests.carbon.factories import CommunityFactory, DistrictFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _sql_and_rows(queryset):
    with CaptureQueriesContext(connection) as captured:
        rows = sorted(queryset.values_list("pk", flat=True))
    return [q["sql"] for q in captured.captured_queries], rows


@pytest.fixture
def people():
    # Values an array literal must quote: commas, quotes, braces, backslashes, spaces,
    # non-ASCII.
    emails = [
        "a,b@example.org",
        'quote"d@example.org',
        "brace{s}@example.org",
        "back\\slash@example.org",
        "sp ace@example.org",
        "居民@example.org",
    ]
    return [UserFactory(email=e) for e in emails] + [UserFactory() for _ in range(3)]


def test_a_list_is_one_array_parameter_and_finds_the_same_rows(people):
    wanted = people[:6]
    cases = [
        User.objects.filter(pk__in=[u.pk for u in wanted]),
        User.objects.filter(email__in=[u.email for u in wanted]),
        User.objects.filter(public_id__in=[u.public_id for u in wanted]),
        User.objects.filter(date_joined__in=[u.date_joined for u in wanted]),
    ]
    for queryset in cases:
        sqls, rows = _sql_and_rows(queryset)
        assert rows == sorted(u.pk for u in wanted)
        assert len(sqls) == 1 and "= ANY(" in sqls[0] and " IN (" not in sqls[0], sqls


def test_a_foreign_key_list_of_objects_or_ids_is_an_array_too():
    districts = [DistrictFactory(), DistrictFactory(), DistrictFactory()]
    communities = [CommunityFactory(district=d) for d in districts]
    for values in (districts[:2], [d.pk for d in districts[:2]]):
        sqls, rows = _sql_and_rows(Community.objects.filter(district__in=values))
        assert rows == sorted(c.pk for c in communities[:2])
        assert "= ANY(" in sqls[0], sqls


def test_none_is_dropped_and_an_empty_list_sends_no_query(people):
    sqls, rows = _sql_and_rows(User.objects.filter(pk__in=[people[0].pk, None, people[1].pk]))
    assert rows == sorted([people[0].pk, people[1].pk]) and "= ANY(" in sqls[0]
    sqls, rows = _sql_and_rows(User.objects.filter(pk__in=[]))
    assert (sqls, rows) == ([], [])
    with pytest.raises(EmptyResultSet):
        User.objects.filter(pk__in=[None]).query.get_compiler("default").as_sql()


def test_one_value_a_subquery_and_unknown_ids_keep_their_meaning(people):
    sqls, rows = _sql_and_rows(User.objects.filter(pk__in=[people[0].pk]))
    assert rows == [people[0].pk] and " IN (" in sqls[0]
    sqls, rows = _sql_and_rows(
        User.objects.filter(pk__in=User.objects.filter(email__startswith="a,b").values("pk"))
    )
    assert rows == [people[0].pk] and " IN (SELECT" in sqls[0]
    sqls, rows = _sql_and_rows(User.objects.filter(public_id__in=[uuid.uuid4(), uuid.uuid4()]))
    assert rows == [] and "= ANY(" in sqls[0]
    # Excluded, the list still leaves out exactly its rows.
    _, rows = _sql_and_rows(User.objects.exclude(pk__in=[u.pk for u in people[:6]]))
    assert set(rows) >= {u.pk for u in people[6:]} and not set(rows) & {u.pk for u in people[:6]}
