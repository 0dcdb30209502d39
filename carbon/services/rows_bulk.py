"""Many new rows of one model written at once, the way a feed batch writes them: COPY on
PostgreSQL, bulk_create elsewhere, with the same rows either way.

Why not bulk_create on PostgreSQL: it builds each value through the ORM's insert compiler and
sends the batch as array literals quoted client-side (Django's default client-side binding);
for a batch of a thousand taps, trips, claims or transfers that was most of the batch's CPU,
and the server then parses megabytes of literals. COPY sends the values as they are. What
bulk_create does per row is done here too: the fields' pre_save (auto_now_add), their
database values, the primary keys set on the objects (taken from the table's sequence in one
statement, when the model's key is generated and the objects have none), the objects marked
as saved. No signals, as with bulk_create. tests/carbon/test_rows_bulk.py pins the rows to
bulk_create's.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

from django.db import connection, connections, models


def rows_number(*, groups: Sequence[Sequence[models.Model]]) -> None:
    """Give new objects of several models (a group a model) their primary keys from the
    tables' sequences in one statement, before rows_insert writes them: on PostgreSQL, for
    rows that refer to each other (a lot to its transfer) in fewer round trips. Elsewhere
    nothing: bulk_create numbers them as it inserts."""
    groups = [g for g in groups if g]
    if connection.vendor != "postgresql" or not groups:
        return
    quote = connection.ops.quote_name
    for group in groups:
        pk = type(group[0])._meta.pk
        if not pk.db_returning or any(obj.pk is not None for obj in group):
            raise ValueError("rows_number takes new rows of models the database numbers")
    n = max(len(g) for g in groups)
    # nextval only for the rows a group has: generate_series runs up to the largest group.
    columns = ", ".join(
        "CASE WHEN i <= %s THEN nextval(pg_get_serial_sequence(%s, %s)) END" for _ in groups
    )
    params: list = []
    for group in groups:
        opts = type(group[0])._meta
        params += [len(group), quote(opts.db_table), opts.pk.column]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM generate_series(1, %s) AS i ORDER BY i", [*params, n]
        )
        numbers = cursor.fetchall()
    for k, group in enumerate(groups):
        for obj, row in zip(group, numbers, strict=False):
            setattr(obj, obj._meta.pk.attname, row[k])


def rows_insert(*, objs: Sequence[models.Model], with_ids: bool = True) -> None:
    """INSERT every object (all of one model, none saved yet). The primary keys are set on
    the objects (rows_number may have set them already), unless `with_ids` is False and the
    key is the database's to generate (then PostgreSQL leaves them None: for rows nobody
    reads back from the objects). Raises django.db.IntegrityError on a constraint, with
    nothing written (inside the caller's transaction)."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    opts = model._meta
    pk = opts.pk
    generated = pk.db_returning  # an auto field: the sequence numbers it
    numbered = [obj.pk is not None for obj in objs]
    if generated and any(numbered) and not all(numbered):
        raise ValueError("rows_insert takes rows all numbered (rows_number) or none")
    if generated and not any(numbered) and with_ids:
        rows_number(groups=[objs])
    omit_pk = generated and not with_ids and not any(numbered)
    fields = [f for f in opts.concrete_fields if not (omit_pk and f is pk)]
    for obj in objs:
        # As bulk_create: a related object numbered since it was assigned gives its key.
        obj._prepare_related_fields_for_save(operation_name="rows_insert")
    # The connection itself, not the proxy: resolved once, not for each value.
    db = connections[connection.alias]
    rows = [[f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields] for obj in objs]
    quote = connection.ops.quote_name
    sql = f"COPY {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
    with connection.cursor() as cursor:
        # Shown to CaptureQueriesContext and DEBUG's query log as a statement, like any other.
        logged = cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else nullcontext()
        with connection.wrap_database_errors, logged, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
