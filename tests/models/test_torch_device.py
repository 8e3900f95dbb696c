"""Device handling of the torch models: "auto" and an explicit device agree, every tensor
follows the model's device, and no code path names a device of its own."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from limelight.models import fm, fm_features, sasrec, torch_utils
from limelight.models.fm import FactorizationMachine
from limelight.models.sasrec import SASRec
from limelight.models.torch_utils import resolve_device
from tests.models.test_fm import taste_dataset
from tests.models.test_sasrec import successor_dataset

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_auto_picks_cuda_exactly_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="unknown torch device"):
        resolve_device("abacus")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def _fm(device: str) -> FactorizationMachine:
    return FactorizationMachine(n_factors=4, n_epochs=3, batch_size=32, loss="softmax",
                                early_stopping=True, validation="users",
                                validation_fraction=0.2, device=device).fit(taste_dataset())


def _sasrec(device: str) -> SASRec:
    return SASRec(n_factors=8, n_layers=1, n_heads=1, max_len=6, n_epochs=2, batch_size=16,
                  early_stopping=True, device=device).fit(successor_dataset(n_users=12))


@pytest.mark.parametrize("build", [_fm, _sasrec], ids=["fm", "sasrec"])
def test_auto_device_trains_there_and_scores_like_the_cpu(build):
    """On a GPU host this compares GPU training with CPU training; on a CPU-only host both
    runs use the CPU, and only the placement asserts can fail."""
    cpu, auto = build("cpu"), build("auto")
    device = resolve_device("auto")
    for model, expected in ((cpu, "cpu"), (auto, device.type)):
        assert {p.device.type for p in model.net_.parameters()} == {expected}
        assert {b.device.type for b in model.net_.buffers()} <= {expected}
    users = np.arange(3)
    np.testing.assert_allclose(cpu._score_users(users, cpu.user_items_[users]),
                               auto._score_users(users, auto.user_items_[users]),
                               rtol=1e-3, atol=1e-4)


def test_loading_maps_the_weights_to_the_models_device(tmp_path):
    model = _sasrec("cpu")
    loaded = SASRec.load(model.save(tmp_path / "m.pkl"))
    assert {p.device.type for p in loaded.net_.parameters()} == {"cpu"}
    np.testing.assert_allclose(loaded.score_sequences([[1, 2]]), model.score_sequences([[1, 2]]),
                               rtol=1e-5, atol=1e-6)


#: what would pin a tensor to one device whatever the model's ``device`` says
_HARD_CODED = re.compile(r"""\.cuda\(|device\s*=\s*["'](cpu|cuda)|torch\.device\(\s*["']""")


@pytest.mark.parametrize("module", [fm, fm_features, sasrec])
def test_no_code_path_names_a_device_of_its_own(module):
    """Every tensor is created on (or moved to) the resolved device; only torch_utils turns
    a device name into a device."""
    source = Path(module.__file__).read_text()
    assert not _HARD_CODED.findall(source), _HARD_CODED.findall(source)
    assert _HARD_CODED.search(Path(torch_utils.__file__).read_text())   # the pattern bites
