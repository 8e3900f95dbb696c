"""A figure of a segmentation: segment sizes and a 2-D projection coloured by segment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def plot_segments(profiles: pd.DataFrame, memberships: pd.DataFrame, model: Any,
                  table: pd.DataFrame, path: str | Path, *, max_points: int = 5000,
                  random_state: int = 0) -> Path:
    """Save a two-panel figure to ``path`` (format from its suffix, e.g. ``.png``).

    Left: segment sizes labelled with their descriptions. Right: users projected on the first
    two principal components of the segmentation's feature space (a sample of ``max_points``),
    coloured by segment. Without a segment model the projection uses standardised numeric
    profile columns.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seg = memberships["segment_id"].reindex(profiles.index)
    keep = seg.notna().to_numpy()
    prof, seg = profiles[keep], seg[keep].astype(int).to_numpy()
    rng = np.random.default_rng(random_state)
    if len(prof) > max_points:
        pick = np.sort(rng.choice(len(prof), max_points, replace=False))
        prof, seg = prof.iloc[pick], seg[pick]
    if model is not None:
        x = model.preprocessor_.transform(prof)
    else:
        num = prof.select_dtypes("number").astype(float)
        x = ((num - num.mean()) / num.std().replace(0, 1)).fillna(0).to_numpy()
    xy = PCA(n_components=2, random_state=random_state).fit_transform(x) if len(x) > 2 \
        else np.zeros((len(x), 2))

    fig, (ax_bar, ax_map) = plt.subplots(1, 2, figsize=(14, 6))
    ids = table["segment_id"].astype(int).to_numpy()
    colors = plt.get_cmap("tab10")
    labels = [f"{i}: {d}" for i, d in zip(ids, table["description"], strict=True)]
    ax_bar.barh(range(len(ids)), table["size"], color=[colors(i % 10) for i in ids])
    ax_bar.set_yticks(range(len(ids)), [_wrap(t) for t in labels], fontsize=8)
    ax_bar.invert_yaxis()
    ax_bar.set_xlabel("users")
    ax_bar.set_title("Segment sizes")
    for i in ids:
        m = seg == i
        ax_map.scatter(xy[m, 0], xy[m, 1], s=4, alpha=0.5, color=colors(i % 10), label=str(i))
    ax_map.set_xlabel("PC 1")
    ax_map.set_ylabel("PC 2")
    ax_map.set_title("Users in segment feature space (PCA)")
    ax_map.legend(title="segment", markerscale=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _wrap(text: str, width: int = 40) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text
