"""Per-partner deconfliction budgets as the operator set them (table ``deconflict_budgets``).

The row for partner ``*`` is the default; a partner without a row gets it, and without
any row everyone gets :class:`detente.deconflict.Budget`'s defaults. Read on every query,
so ``detente deconflict budget`` applies to a running server at once.
"""

from __future__ import annotations

import sqlalchemy as sa

from detente.deconflict import Budget, Budgets
from detente.errors import ValidationError
from detente.federation.schema import budgets_table
from detente.store.engine import writer

__all__ = ["DEFAULT", "BudgetTable"]

DEFAULT = "*"



def check_budget(budget: Budget) -> Budget:
    if budget.items_per_query < 1 or budget.queries_per_day < 0 or budget.max_set_ratio <= 0:
        raise ValidationError("a budget needs items_per_query >= 1, queries_per_day >= 0 "
                              "and max_set_ratio > 0")
    return budget


class BudgetTable:
    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def set(self, partner: str, budget: Budget) -> None:
        t = budgets_table
        values = {"items_per_query": budget.items_per_query,
                  "queries_per_day": budget.queries_per_day,
                  "max_set_ratio": budget.max_set_ratio}
        check_budget(budget)
        with writer(self._engine).begin() as conn:
            done = conn.execute(t.update().where(t.c.partner == partner).values(**values))
            if not done.rowcount:
                conn.execute(t.insert().values(partner=partner, **values))

    def budgets(self) -> Budgets:
        t = budgets_table
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t)).all()
        found = {r.partner: Budget(r.items_per_query, r.queries_per_day, r.max_set_ratio)
                 for r in rows}
        default = found.pop(DEFAULT, Budget())
        return Budgets(default, found)
