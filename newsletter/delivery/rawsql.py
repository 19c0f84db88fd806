"""Core statements compiled once and run on the DBAPI cursor, for reads of many rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection


@dataclass
class RawStatement:
    """A Core statement compiled once, run on the DBAPI cursor: plain tuples, none of
    SQLAlchemy's per-row work (microseconds per row: seconds for a million recipients)."""

    sql: str
    compiled: Any
    positional: bool

    @classmethod
    def compile(cls, statement: Any, dialect: Any) -> RawStatement:
        """Compile ``statement`` once for ``dialect``."""
        compiled = statement.compile(dialect=dialect)
        return cls(str(compiled), compiled, bool(dialect.positional))

    def execute(self, connection: Connection, values: dict[str, Any]) -> Any:
        """Run it with ``values`` on the connection's DBAPI cursor; returns that cursor."""
        params = self.compiled.construct_params(values)
        cursor = connection.connection.cursor()
        if self.positional:
            cursor.execute(self.sql, tuple(params[name] for name in self.compiled.positiontup))
        else:
            cursor.execute(self.sql, params)
        return cursor
