"""FilmTrust adapter (Guo, Zhang & Yorke-Smith, IJCAI 2013): ratings plus a directed trust graph.

``ratings.txt`` (``user item rating``, space-separated) has no timestamps. Each rating gets a
synthetic, deterministic timestamp: 2013-01-01T00:00:00Z plus its 0-based row number in
seconds. That keeps every rating distinct (three user/item pairs are rated twice in the file
and both rows are kept, as in the published count of 35,497) and preserves file order for
sequence-aware code; time-based splits on FilmTrust therefore split by file order, not by real
time. ``trust.txt`` (``trustor trustee value``) becomes ``trust`` edges, directed, weighted by
the value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from limelight.data.sources.movielens import LINE, _need

#: Synthetic time origin of FilmTrust ratings (see the module docstring).
SYNTHETIC_EPOCH = 1_356_998_400  # 2013-01-01T00:00:00Z


def load_filmtrust(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Read FilmTrust ``ratings.txt`` and ``trust.txt``.

    Returns
    -------
    dict
        ``events`` (35,497 ``rating`` events), ``edges`` (1,853 directed ``trust`` links) and
        ``users`` (every id seen in either file).
    """
    d = Path(directory)
    ratings = pd.read_csv(_need(d / "ratings.txt"), sep=r"\s+", header=None, dtype=str,
                          names=["user_id", "item_id", "value"], engine="python")
    events = ratings.assign(
        type="rating",
        timestamp=(SYNTHETIC_EPOCH + np.arange(len(ratings))).astype(str),
        **{LINE: np.arange(1, len(ratings) + 1)},
    )
    trust = pd.read_csv(_need(d / "trust.txt"), sep=r"\s+", header=None, dtype=str,
                        names=["src_user_id", "dst_user_id", "weight"], engine="python")
    edges = trust.assign(kind="trust", directed="true",
                         **{LINE: np.arange(1, len(trust) + 1)})
    users = pd.DataFrame({"user_id": pd.unique(pd.concat(
        [ratings["user_id"], trust["src_user_id"], trust["dst_user_id"]]))})
    return {"users": users, "events": events, "edges": edges}
