"""Many rows of one model written at once, the way a feed batch writes them: new rows by COPY
on PostgreSQL, bulk_create elsewhere; a column of many rows set to each row's own value
(rows_set_by_id). The same rows either way.

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

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

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


def rows_set_by_id(
    *,
    model: type[models.Model],
    field: str,
    values: Mapping[Any, Any],
    fixed: Mapping[str, Any] | None = None,
) -> int:
    """UPDATE one column of many rows, by primary key, to each row's own value (`values`:
    key -> value; `fixed`: other columns set to one value for all of them) in one statement,
    without an ORM expression per row (most of a batch's CPU with bulk_update). Returns the
    rows updated. PostgreSQL joins the rows to two arrays (keys, values): UPDATE ... FROM
    unnest(...). Elsewhere a CASE on the key, as bulk_update writes it (portable, but each
    row scans the CASE: quadratic in the batch, which PostgreSQL's join is not). No signals,
    no auto_now, as with bulk_update. tests/carbon/test_rows_bulk.py pins the rows to
    bulk_update's."""
    if not values:
        return 0
    opts = model._meta
    pk = opts.pk
    ids = sorted(values)
    column = opts.get_field(field)
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    col = quote(column.column)
    key = quote(pk.column)
    prepared = [column.get_db_prep_save(values[i], connection) for i in ids]
    prepared_ids = [pk.get_db_prep_value(i, connection) for i in ids]
    fixed_sets: list[str] = []
    fixed_params: list[Any] = []
    for name, value in (fixed or {}).items():
        other = opts.get_field(name)
        fixed_sets.append(f"{quote(other.column)} = %s")
        fixed_params.append(other.get_db_prep_save(value, connection))
    if connection.vendor == "postgresql":
        sql = (
            f"UPDATE {table} SET {', '.join([f'{col} = v.value', *fixed_sets])} "
            f"FROM unnest(%s::{pk.rel_db_type(connection)}[], "
            f"%s::{column.db_type(connection)}[]) AS v(id, value) "
            f"WHERE {table}.{key} = v.id"
        )
        params = [*fixed_params, prepared_ids, prepared]
    else:
        case = f"{col} = CASE {key} {' '.join('WHEN %s THEN %s' for _ in ids)} END"
        sql = (
            f"UPDATE {table} SET {', '.join([case, *fixed_sets])} "
            f"WHERE {key} IN ({', '.join('%s' for _ in ids)})"
        )
        params = [x for pair in zip(prepared_ids, prepared, strict=True) for x in pair]
        params += [*fixed_params, *prepared_ids]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
