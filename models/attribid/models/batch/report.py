"""``attribid attribute``'s report (attribid.models.attribution.report.Report) from
``JourneyTables``: every classic method's totals by SQL, the figures around them read
off the same tables; the network's by streaming its journeys through the model
(attribid.models.batch.network_stream). Bootstrap intervals and private releases need
each journey's credit and stay with the memory engine.
"""
from __future__ import annotations

from typing import Sequence

from attribid.models.attribution.classic import METHODS
from attribid.models.attribution.report import MethodCredit, Report
from attribid.models.batch.classic_sql import sql_totals
from attribid.models.batch.engine import JourneyTables
from attribid.models.batch.network_stream import network_totals
from attribid.models.progress import bar


def sql_report(tables: JourneyTables, methods: Sequence[str],
               options: dict[str, dict[str, float | int]] | None = None,
               lookback_days: float | None = None,
               inputs: dict[str, str] | None = None, model: str | None = None) -> Report:
    """Credit the journeys by each method (options per method) into a Report.

    ``model``: the network's ONNX file or directory (None: the shipped model).

    >>> from attribid.models.batch.engine import open_journeys
    >>> r = sql_report(open_journeys("tests/data/touchpoints.csv",
    ...                              "tests/data/conversions.csv"), ["last-click"])
    >>> r.conversions, round(r.revenue, 2), [round(float(x), 2) for x in r.methods[0].revenue[:2]]
    (2.0, 119.49, [79.5, 0.0])
    """
    options = options or {}
    unknown = [m for m in methods if m not in (*METHODS, "network")]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}")
    credits = []
    for m in bar(list(methods), total=len(methods), desc="attribute", unit="method"):
        if m == "network":
            if options.get(m):
                raise ValueError(f"method 'network' takes no option "
                                 f"{', '.join(sorted(options[m]))}")
            totals = network_totals(tables, model)
        else:
            totals = sql_totals(tables, m, **options.get(m, {}))
        credits.append(MethodCredit(m, dict(options.get(m, {})), totals.conversions,
                                    totals.revenue))
    return Report(tables.channels, tuple(credits), tables.spend, float(tables.n_journeys),
                  float(tables.conversions), tables.revenue,
                  tuple(str(i) for i in tables.issues),
                  tuple(i.message for i in tables.issues if not i.warning),
                  lookback_days, 0, 0, dict(inputs or {}))
