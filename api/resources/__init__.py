"""HTTP resources. The order of BLUEPRINTS fixes the order of tags in the spec."""

from . import actors, articles, export, facts, searching, timeline

BLUEPRINTS = (
    articles.blp,
    *facts.blueprints,
    actors.blp,
    searching.blp,
    timeline.blp,
    export.blp,
)
