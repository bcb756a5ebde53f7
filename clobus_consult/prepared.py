"""Hot-path queries with their SQL built once.

peewee builds the SQL string of every query anew, and on this service's hot paths (intake, ticket reads)
that building costs several times what SQLite spends answering (profiled: bench/README.md). These helpers
build a query's SQL once per database engine from an ordinary peewee query and then only bind parameters.
"""
import peewee
from peewee import Model

from .db import db


class Prepared:
    """``Prepared(lambda p: Model.select(...).where(Model.x == p))``: the builder gets a placeholder value
    for each parameter; calls pass the real values in the same order."""

    def __init__(self, build, arity: int = 1):
        self.build, self.arity = build, arity
        self._sql: dict[type, str] = {}

    def sql(self) -> str:
        engine = type(db.obj)
        if engine not in self._sql:
            sql, params = self.build(*[f"__p{i}__" for i in range(self.arity)]).sql()
            if params != [f"__p{i}__" for i in range(self.arity)]:
                raise ValueError(f"prepared query must take exactly its {self.arity} parameter(s): {params}")
            self._sql[engine] = sql
        return self._sql[engine]

    def first(self, model: type[Model], *params):
        """The first row as a model instance, or None."""
        for row in model.raw(self.sql(), *params):
            return row
        return None

    def all(self, model: type[Model], *params) -> list:
        return list(model.raw(self.sql(), *params))

    def tuples(self, *params) -> list[tuple]:
        return db.execute_sql(self.sql(), params).fetchall()


EXCEPTION_WRAPPER = peewee.__exception_wrapper__
_inserts: dict[tuple, str] = {}


def insert_rows(model: type[Model], rows: list[dict]) -> None:
    """INSERT rows (dicts by field name; missing fields take their defaults), the statement built once."""
    if not rows:
        return
    fields = model._meta.sorted_fields
    key = (type(db.obj), model)
    if key not in _inserts:
        columns = ", ".join(f'"{f.column_name}"' for f in fields)
        marks = ", ".join([db.param] * len(fields))
        _inserts[key] = f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({marks})'
    values = [tuple(f.db_value(row[f.name] if f.name in row else _default(f)) for f in fields) for row in rows]
    if len(values) == 1:
        db.execute_sql(_inserts[key], values[0])
    else:
        with EXCEPTION_WRAPPER:  # driver errors become peewee's (IntegrityError...), as in execute_sql
            db.cursor().executemany(_inserts[key], values)


def _default(field):
    return field.default() if callable(field.default) else field.default
