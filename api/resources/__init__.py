"""HTTP resources. The order of BLUEPRINTS fixes the order of tags in the spec."""

from . import actors, articles, facts

BLUEPRINTS = (articles.blp, *facts.blueprints, actors.blp)
