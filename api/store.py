"""Every query the API runs is built here; views only adapt HTTP to these functions."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from .models import FACT_TYPES, Actor, Article, Citation, Fact, FactActor


@dataclass
class Page:
    items: list[Any]
    total: int
    # Key of the last item when more follow: where the next page starts (exclusive).
    next_after: str | None


def paginate(
    session: Session,
    stmt: Select,
    key: InstrumentedAttribute,
    page_size: int,
    after: str | None = None,
) -> Page:
    """One page of `stmt` in `key` order, starting after the key `after` (keyset pagination)."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    if after is not None:
        stmt = stmt.where(key > after)
    rows = session.scalars(stmt.order_by(key).limit(page_size + 1)).unique().all()
    items, more = rows[:page_size], len(rows) > page_size
    next_after = getattr(items[-1], key.key) if more else None
    return Page(items=list(items), total=total or 0, next_after=next_after)


# Facts ---------------------------------------------------------------------------------------

_FACT_LOADING = (
    selectinload(Fact.sources),
    selectinload(Fact.actors),
    selectinload(Fact.contradiction_links),
)


def fact_query(
    fact_type: str,
    *,
    kind: str | None = None,
    article: str | None = None,
    actor: str | None = None,
    disputed: bool | None = None,
) -> Select:
    stmt = select(Fact).where(Fact.type == fact_type).options(*_FACT_LOADING)
    if kind is not None:
        stmt = stmt.where(Fact.kind == kind)
    if article is not None:
        stmt = stmt.where(Fact.sources.any(Citation.article_id == article))
    if actor is not None:
        stmt = stmt.where(Fact.actors.any(FactActor.actor_id == actor))
    if disputed is not None:
        has_contradiction = Fact.contradiction_links.any()
        stmt = stmt.where(has_contradiction if disputed else ~has_contradiction)
    return stmt


def get_fact(session: Session, fact_type: str, fact_id: str) -> Fact | None:
    return session.scalars(
        select(Fact).where(Fact.type == fact_type, Fact.id == fact_id).options(*_FACT_LOADING)
    ).first()


def facts_citing(session: Session, article_id: str) -> dict[str, list[Fact]]:
    """Every record that cites the article, grouped by type, each group in id order."""
    facts = session.scalars(
        select(Fact)
        .where(Fact.sources.any(Citation.article_id == article_id))
        .options(*_FACT_LOADING)
        .order_by(Fact.id)
    ).all()
    return {fact_type: [f for f in facts if f.type == fact_type] for fact_type in FACT_TYPES}


# Articles and actors ---------------------------------------------------------------------------


def article_query() -> Select:
    return select(Article)


def get_article(session: Session, article_id: str) -> Article | None:
    return session.get(Article, article_id)


def actor_query(*, kind: str | None = None) -> Select:
    stmt = select(Actor)
    if kind is not None:
        stmt = stmt.where(Actor.kind == kind)
    return stmt


def get_actor(session: Session, actor_id: str) -> Actor | None:
    """The actor with the records that involve it (fact_links, in record id order)."""
    return session.scalars(
        select(Actor)
        .where(Actor.id == actor_id)
        .options(selectinload(Actor.fact_links).joinedload(FactActor.fact))
    ).first()
