"""Model instances from rows of hand-written SQL, converted as the ORM does."""

import functools

from django.db import connection


def concrete_attnames(model) -> tuple[str, ...]:
    return tuple(field.attname for field in model._meta.concrete_fields)


@functools.cache
def _converters(model, attnames: tuple[str, ...], vendor: str) -> list[tuple]:
    """Return, per column, the column and the converters that the ORM applies
    to it, as SQLCompiler.get_converters does.

    PostgreSQL needs none for this project's fields, while SQLite converts
    UUIDs, booleans and datetimes. ``vendor`` is in the cache key because
    the tests run on both.
    """
    columns = []
    for attname in attnames:
        column = model._meta.get_field(attname).get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column)
        converters += column.get_db_converters(connection)
        columns.append((column, converters))
    return columns


def model_from_row(model, attnames: tuple[str, ...], row):
    """Build a ``model`` instance from ``row``, the values of ``attnames``."""
    values = []
    columns = _converters(model, attnames, connection.vendor)
    for value, (column, converters) in zip(row, columns, strict=True):
        for converter in converters:
            value = converter(value, column, connection)
        values.append(value)
    return model.from_db(connection.alias, list(attnames), values)
