"""The event layout: sparse attributes packed in SQL and in Python read back the same."""

from __future__ import annotations

import math

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limelight.store import event_layout

texts = st.one_of(st.none(), st.text(max_size=30))
quantities = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False),
                       st.integers(-10**6, 10**6))


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@settings(max_examples=200, deadline=None)
@given(quantity=quantities, channel=texts, campaign=texts, review=texts)
def test_sql_and_python_details_read_back_the_same(con, quantity, channel, campaign, review):
    row = {"quantity": quantity, "channel": channel, "campaign_id": campaign,
           "review_text": review}
    cols = ["quantity", "channel", "campaign_id", "review_text"]
    shown = ", ".join(event_layout.shown_column_sql(c) for c in cols)
    by_sql = con.execute(
        f"SELECT {shown} FROM (SELECT {event_layout.details_sql(cols)} AS details FROM "
        f"(SELECT CAST($q AS DOUBLE) AS quantity, CAST($c AS VARCHAR) AS channel, "
        f"CAST($k AS VARCHAR) AS campaign_id, CAST($r AS VARCHAR) AS review_text))",
        {"q": quantity, "c": channel, "k": campaign, "r": review}).fetchone()
    by_python = con.execute(f"SELECT {shown} FROM (SELECT CAST($d AS VARCHAR) AS details)",
                            {"d": event_layout.details_text(row)}).fetchone()
    assert by_sql == by_python
    assert by_python[1:] == (channel, campaign, review)
    assert (by_python[0] is None) == (quantity is None)
    if quantity is not None:
        assert by_python[0] == float(quantity) and not math.isnan(by_python[0])
    no_details = all(v is None for v in row.values())
    assert (event_layout.details_text(row) is None) == no_details
