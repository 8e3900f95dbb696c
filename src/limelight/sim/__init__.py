"""A synthetic shop with known preferences: generator, hidden truth and response model.

Example
-------
>>> from limelight.sim import generate_world
>>> world = generate_world("tiny", seed=0)
>>> world.events.columns[:3].tolist()
['event_id', 'user_id', 'item_id']
"""

from limelight.sim.response import ResponseModel
from limelight.sim.segments import CATEGORIES, REGIONS, SEGMENT_NAMES, SEGMENTS
from limelight.sim.world import (
    SIZES,
    Truth,
    World,
    generate_world,
    load_truth,
    load_world,
    resolve_size,
    write_world,
)

__all__ = [
    "CATEGORIES",
    "REGIONS",
    "SEGMENTS",
    "SEGMENT_NAMES",
    "SIZES",
    "ResponseModel",
    "Truth",
    "World",
    "generate_world",
    "load_truth",
    "load_world",
    "resolve_size",
    "write_world",
]
