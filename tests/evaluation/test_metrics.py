"""Every metric against a small example computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from limelight.evaluation import metrics as M

# Two users, lists of length 4 (k = 4).
# user 0: relevant {2, 5, 9}; recommended [2, 7, 5, 1] -> hits at ranks 1 and 3
# user 1: relevant {4};       recommended [3, 8, 6, 0] -> no hit
REC = np.array([[2, 7, 5, 1], [3, 8, 6, 0]])
RELEVANT = sp.csr_matrix(([1, 1, 1, 1], ([0, 0, 0, 1], [2, 5, 9, 4])), shape=(2, 10))
N_REL = np.array([3, 1])


@pytest.fixture
def hits() -> np.ndarray:
    return M.hits_matrix(REC, RELEVANT)


def test_hits_matrix(hits: np.ndarray) -> None:
    assert hits.tolist() == [[True, False, True, False], [False, False, False, False]]
    padded = M.hits_matrix(np.array([[-1, 2]]), RELEVANT[:1])
    assert padded.tolist() == [[False, True]]


def test_precision_recall_f1(hits: np.ndarray) -> None:
    assert M.precision_at_k(hits, 4).tolist() == [0.5, 0.0]
    assert M.precision_at_k(hits, 2).tolist() == [0.5, 0.0]
    assert M.recall_at_k(hits, N_REL, 4).tolist() == pytest.approx([2 / 3, 0.0])
    # F1 = 2 * .5 * (2/3) / (.5 + 2/3) = 4/7
    assert M.f1_at_k(hits, N_REL, 4).tolist() == pytest.approx([4 / 7, 0.0])


def test_ndcg(hits: np.ndarray) -> None:
    dcg = 1 / math.log2(2) + 1 / math.log2(4)  # ranks 1 and 3
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # min(3, 4) = 3 ideal hits
    assert M.ndcg_at_k(hits, N_REL, 4).tolist() == pytest.approx([dcg / idcg, 0.0])
    # k = 2 caps the ideal at 2 positions: dcg 1, idcg 1 + 1/log2(3)
    assert M.ndcg_at_k(hits, N_REL, 2)[0] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_map(hits: np.ndarray) -> None:
    # precision at hits: 1/1 and 2/3; divided by min(3, 4) = 3
    assert M.average_precision_at_k(hits, N_REL, 4).tolist() == pytest.approx(
        [(1 + 2 / 3) / 3, 0.0])
    # at k = 2: one hit (precision 1) over min(3, 2) = 2
    assert M.average_precision_at_k(hits, N_REL, 2)[0] == pytest.approx(0.5)


def test_mrr_and_hit_rate() -> None:
    h = np.array([[False, False, True], [True, False, False], [False, False, False]])
    assert M.reciprocal_rank_at_k(h, 3).tolist() == pytest.approx([1 / 3, 1.0, 0.0])
    assert M.reciprocal_rank_at_k(h, 2).tolist() == [0.0, 1.0, 0.0]
    assert M.hit_rate_at_k(h, 3).tolist() == [1.0, 1.0, 0.0]
    assert M.hit_rate_at_k(h, 1).tolist() == [0.0, 1.0, 0.0]


def test_auc() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.5, 0.5]])
    relevant = sp.csr_matrix(np.array([[0, 0, 1, 1, 0]]))
    excluded = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]]))  # item 0 is a training item
    # positives {2: 0.1, 3: 0.5}; negatives {1: 0.8, 4: 0.5}
    # pairs: (0.1 vs .8) 0, (0.1 vs .5) 0, (.5 vs .8) 0, (.5 vs .5) 1/2 -> 0.5 / 4
    assert M.auc(scores, relevant, excluded).tolist() == pytest.approx([0.125])
    # without exclusion item 0 is one more negative above both positives: 0.5 / 6
    assert M.auc(scores, relevant).tolist() == pytest.approx([0.5 / 6])
    assert np.isnan(M.auc(scores, sp.csr_matrix((1, 5)))[0])


def test_rmse_mae() -> None:
    assert M.rmse([3, 4, 5], [4, 4, 3]) == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert M.mae([3, 4, 5], [4, 4, 3]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        M.rmse([1, 2], [1])


def test_coverage_exposure_gini() -> None:
    assert M.catalogue_coverage(REC, 10) == pytest.approx(0.8)  # 8 distinct of 10
    assert M.catalogue_coverage(np.array([[1, -1]]), 4) == pytest.approx(0.25)
    assert M.exposure(np.array([[0, 1], [0, -1]]), 3).tolist() == [2.0, 1.0, 0.0]
    assert M.gini([1, 1, 1, 1]) == pytest.approx(0.0)
    # one item gets everything among 4: (2*4 - 4 - 1) * 1 / (4 * 1) = 3/4
    assert M.gini([0, 0, 0, 5]) == pytest.approx(0.75)
    # [1, 3]: ((2-2-1)*1 + (4-2-1)*3) / (2 * 4) = 2/8
    assert M.gini([3, 1]) == pytest.approx(0.25)


def test_novelty_and_popularity() -> None:
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 1, 0], [1, 0, 0, 0]]))
    pop = M.item_popularity(train)
    assert pop.tolist() == [1.0, 0.25, 0.25, 0.0]
    # items 1 and 3: -log2(.25) = 2; item 3 unseen counts as 1/4 -> 2
    assert M.novelty(np.array([[1, 3]]), pop, 4) == pytest.approx(2.0)
    assert M.novelty(np.array([[0, 1]]), pop, 4) == pytest.approx(1.0)  # (0 + 2) / 2
    assert M.average_popularity(np.array([[0, 1]]), pop) == pytest.approx(0.625)


def test_intra_list_diversity() -> None:
    feats = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=float)
    # list [0, 1]: orthogonal -> distance 1; list [0, 2]: cos = 1/sqrt2
    assert M.intra_list_diversity(np.array([[0, 1]]), feats) == pytest.approx(1.0)
    assert M.intra_list_diversity(np.array([[0, 2]]), feats) == pytest.approx(1 - 2 ** -0.5)
    # three items [0, 1, 2]: pair distances 1, 1 - 1/sqrt2, 1 - 1/sqrt2 -> mean
    expected = (1 + 2 * (1 - 2 ** -0.5)) / 3
    assert M.intra_list_diversity(np.array([[0, 1, 2]]), feats) == pytest.approx(expected)
    # same item twice is at distance 0; an item without features is at distance 1
    assert M.intra_list_diversity(np.array([[0, 0], [0, 3]]), feats) == pytest.approx(0.5)
