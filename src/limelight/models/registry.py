"""Model registry: one name per model family, resolved lazily.

``MODELS`` maps a name to its class; a class is imported the first time it is looked up, so
listing names never imports heavy dependencies (torch for the deep models).

Example
-------
>>> from limelight.models.registry import MODELS, create
>>> "ease" in MODELS
True
>>> create("ease", regularization=200.0)
EASE(regularization=200.0, binary=False, dtype='float32')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import Any

from limelight.errors import LimelightError
from limelight.models.base import Recommender


class UnknownModelError(LimelightError, KeyError):
    """No model is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return self.args[0]


_TARGETS: dict[str, str] = {
    "popularity": "limelight.models.popularity:Popularity",
    "item_knn": "limelight.models.knn:ItemKNN",
    "user_knn": "limelight.models.knn:UserKNN",
    "als": "limelight.models.als:ALS",
    "bpr": "limelight.models.bpr:BPR",
    "ease": "limelight.models.ease:EASE",
    "rp3beta": "limelight.models.rp3beta:RP3beta",
    "content": "limelight.models.content:ContentBased",
    "mf_als": "limelight.models.mf:MatrixFactorizationALS",
    "mf_sgd": "limelight.models.mf:MatrixFactorizationSGD",
    "knn_baseline": "limelight.models.rating_knn:BaselineKNN",
    "blend": "limelight.models.blend:Blend",
    "fm": "limelight.models.fm:FactorizationMachine",
    "sasrec": "limelight.models.sasrec:SASRec",
    "two_stage": "limelight.models.two_stage:TwoStageRanker",
    "ann": "limelight.models.ann:ANNRetriever",
}


class _ModelTable(Mapping[str, type[Recommender]]):
    """Read-only name -> class mapping that imports a class on first access."""

    def __getitem__(self, name: str) -> type[Recommender]:
        target = _TARGETS.get(name)
        if target is None:
            raise UnknownModelError(
                f"unknown model {name!r}; known models: {', '.join(sorted(_TARGETS))}")
        module, _, attribute = target.partition(":")
        return getattr(import_module(module), attribute)

    def __iter__(self) -> Iterator[str]:
        return iter(list(_TARGETS))

    def __len__(self) -> int:
        return len(_TARGETS)

    def __contains__(self, name: object) -> bool:
        return name in _TARGETS


#: Every registered model, name -> class.
MODELS: Mapping[str, type[Recommender]] = _ModelTable()


def register(name: str, target: str | type[Recommender]) -> None:
    """Register a model under ``name``: a class or a ``"package.module:Class"`` path."""
    if not isinstance(target, str):
        target = f"{target.__module__}:{target.__qualname__}"
    if ":" not in target:
        raise ValueError(f"target must look like 'package.module:Class', got {target!r}")
    _TARGETS[name] = target


def create(name: str, **params: Any) -> Recommender:
    """A new, unfitted model ``name`` with hyperparameters ``params``.

    Raises
    ------
    UnknownModelError
        When no model has that name.
    ValueError
        When a parameter is not one of the model's hyperparameters.
    """
    cls = MODELS[name]
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for model {name!r}: {exc}") from exc


def name_of(model: Recommender | type[Recommender]) -> str:
    """The registry name of a model (or model class); UnknownModelError when unregistered."""
    cls = model if isinstance(model, type) else type(model)
    target = f"{cls.__module__}:{cls.__qualname__}"
    for name, registered in _TARGETS.items():
        if registered == target:
            return name
    raise UnknownModelError(f"{cls.__name__} is not a registered model")
