"""HTTP resources. The order of BLUEPRINTS fixes the order of tags in the spec."""

from . import actors, articles, changes, export, facts, operations, searching, timeline

BLUEPRINTS = (
    articles.blp,
    *facts.blueprints,
    actors.blp,
    searching.blp,
    timeline.blp,
    changes.blp,
    export.blp,
)
# Outside /api/v1: not part of the versioned contract.
UNVERSIONED = (operations.blp,)
