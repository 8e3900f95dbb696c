"""Recommendation models. Every model follows :class:`limelight.models.base.Recommender`."""
