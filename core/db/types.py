"""Column types shared by the models and the migrations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

CENT = Decimal("0.01")


class Money(sa.types.TypeDecorator[Decimal]):
    """An exact amount of money (two decimals) as ``Decimal``.

    PostgreSQL stores ``NUMERIC(12, 2)``. SQLite has no exact decimal type (it would round-trip through binary
    floating point), so there the amount is stored as its decimal string, which converts back exactly.
    """

    impl = sa.Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        implementation: TypeEngine[Any] = sa.String(24) if dialect.name == "sqlite" else sa.Numeric(12, 2)
        # The stubs declare a type where SQLAlchemy takes (and its documentation passes) an instance.
        return dialect.type_descriptor(implementation)  # type: ignore[arg-type,no-any-return]

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = Decimal(str(value)).quantize(CENT)
        return str(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(CENT)
