"""The storage model.

Facts of all four types share one table: the columns every type has (and that queries filter
on) are real columns; the fields only one type has live in `details` (JSON), validated by that
type's schema. Citations, actor links and contradictions are rows of their own so that they can
be joined, counted and constrained by foreign keys.
"""

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, synonym

FACT_TYPES = ("decree", "campaign", "penalty", "event")
# Sort keys of records whose date (or its year) is unknown: last in either direction.
UNDATED = dt.date(9999, 12, 31)
UNDATED_DESC = dt.date(1, 1, 1)
LAST_DATED_DAY = UNDATED - dt.timedelta(days=1)  # date_sort <= this: the record is dated


class Base(DeclarativeBase):
    # Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """An aware UTC datetime on every backend (SQLite keeps no time zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # SHA-256 of the record in the form data/ holds it: a load that finds the same hash
    # leaves the row alone.
    content_hash: Mapped[str] = mapped_column(String(64))
    # How many revisions the record has had; its ETag (for If-Match) derives from it.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The record as lists show it, JSON and a CSV line, rendered by its schema whenever it
    # changes (records.store_forms): reads send these instead of serialising rows. Deferred:
    # the rows that writes load never need them.
    json_form: Mapped[str | None] = mapped_column(Text, deferred=True)
    csv_form: Mapped[str | None] = mapped_column(Text, deferred=True)


class Article(Timestamped, Base):
    __tablename__ = "articles"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    file: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    headline: Mapped[str | None] = mapped_column(String(300))
    outlet: Mapped[str | None] = mapped_column(String(200))
    byline: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(16))
    published: Mapped[dict[str, Any]]
    note: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    word_count: Mapped[int]


class Actor(Timestamped, Base):
    __tablename__ = "actors"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    variants: Mapped[list[str]]
    description: Mapped[str | None] = mapped_column(Text)


class Fact(Timestamped, Base):
    __tablename__ = "facts"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    date: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # The span of days `date` may denote; null when its year is unknown.
    date_min: Mapped[dt.date | None] = mapped_column(Date)
    date_max: Mapped[dt.date | None] = mapped_column(Date)
    # date_min, or UNDATED (UNDATED_DESC): non-null sort keys that order alike on every
    # backend and keep undated records last in ascending (descending) date order.
    date_sort: Mapped[dt.date] = mapped_column(Date)
    date_sort_desc: Mapped[dt.date] = mapped_column(Date)
    details: Mapped[dict[str, Any]]

    # Every list is one type, filtered and then ordered by one of its sorts (FACT_SORTS in
    # store.py): keyset pages use these.
    __table_args__ = (
        Index("ix_facts_type_id", "type", "id"),
        Index("ix_facts_type_kind_id", "type", "kind", "id"),
        # Kind and date window (matched on date_sort and date_max); with id, a page of such a
        # list in id or ascending date order is chosen from the index alone.
        Index(
            "ix_facts_type_kind_date_sort_date_max_id",
            "type",
            "kind",
            "date_sort",
            "date_max",
            "id",
        ),
        Index("ix_facts_type_date_sort_id", "type", "date_sort", "id"),
        Index("ix_facts_type_date_sort_desc_id", "type", "date_sort_desc", "id"),
        Index("ix_facts_date_sort_id", "date_sort", "id"),
        Index("ix_facts_type_title_id", "type", "title", "id"),
        Index("ix_facts_type_updated_at_id", "type", "updated_at", "id"),
    )

    sources: Mapped[list["Citation"]] = relationship(
        order_by="Citation.position", cascade="all, delete-orphan", back_populates="fact"
    )
    actors: Mapped[list["FactActor"]] = relationship(
        order_by="FactActor.position", cascade="all, delete-orphan", back_populates="fact"
    )
    contradiction_links: Mapped[list["Contradiction"]] = relationship(
        foreign_keys="Contradiction.fact_id",
        order_by="Contradiction.other_id",
        cascade="all, delete-orphan",
    )
    contradicts: AssociationProxy[list[str]] = association_proxy(
        "contradiction_links", "other_id", creator=lambda other_id: Contradiction(other_id=other_id)
    )


class Citation(Base):
    __tablename__ = "citations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fact_id: Mapped[str] = mapped_column(ForeignKey("facts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    article_id: Mapped[str] = mapped_column(ForeignKey("articles.id"))
    quote: Mapped[str] = mapped_column(Text)
    start: Mapped[int]
    end: Mapped[int]

    # An article's records in id order, a page at a time, from the index alone
    # (store.linked_facts); it serves lookups by article_id too. The records citing one
    # passage: what every write's duplicate check looks up (curation._same_citations).
    __table_args__ = (
        Index("ix_citations_article_id_fact_id", "article_id", "fact_id"),
        Index("ix_citations_article_id_start_end", "article_id", "start", "end"),
    )

    fact: Mapped[Fact] = relationship(back_populates="sources")


class FactActor(Base):
    __tablename__ = "fact_actors"

    fact_id: Mapped[str] = mapped_column(
        ForeignKey("facts.id", ondelete="CASCADE"), primary_key=True
    )
    actor_id: Mapped[str] = mapped_column(ForeignKey("actors.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int]

    # An actor's records in id order, a page at a time, from the index alone
    # (store.linked_facts); it serves lookups by actor_id too.
    __table_args__ = (Index("ix_fact_actors_actor_id_fact_id", "actor_id", "fact_id"),)

    fact: Mapped[Fact] = relationship(back_populates="actors")
    actor: Mapped[Actor] = relationship(lazy="joined")

    @property
    def id(self) -> str:
        return self.actor_id

    @property
    def name(self) -> str:
        return self.actor.name


class Contradiction(Base):
    """One direction of a 'contradicts' link; the dataset check keeps both directions present."""

    __tablename__ = "contradictions"

    fact_id: Mapped[str] = mapped_column(
        ForeignKey("facts.id", ondelete="CASCADE"), primary_key=True
    )
    other_id: Mapped[str] = mapped_column(
        ForeignKey("facts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class DatasetState(Base):
    """One row: the sequence number of the latest change (list ETags derive from it).

    Every write locks this row first and numbers its revisions from it, so that writes are
    serialised and sequence order is commit order.
    """

    __tablename__ = "dataset_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int]  # the sequence number of the latest change
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The feed is complete from this sequence number on (a mirror's history starts at the
    # snapshot it was seeded from).
    history_from: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    mirror_of: Mapped[str | None] = mapped_column(String(500))  # a mirror is read-only


class FacetCount(Base):
    """How many records of a type have each facet value: a whole collection's facets, kept
    by every write (store.count_facet_changes) so that they are read rather than counted."""

    __tablename__ = "facet_counts"

    record_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    facet: Mapped[str] = mapped_column(String(16), primary_key=True)
    # The value as JSON (2024, null, "article-id"): one key column holds years, ids and the
    # unknown year, which a key column could not hold as NULL.
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    tally: Mapped[int]


class SearchDocument(Base):
    """What full-text search sees of a record or article.

    `tokens` is the text already split and lower-cased by Python, so that SQLite FTS5 and
    PostgreSQL index exactly the same words; `text` is kept for snippets.
    """

    __tablename__ = "search_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doc_type: Mapped[str] = mapped_column(String(16))
    doc_id: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_search_documents_doc", "doc_type", "doc_id", unique=True),)


class SearchPosting(Base):
    """One document of a frequent word, keyed in the order its engine ranks the word's hits.

    For a one-word search the engine's score depends only on the word's occurrences in a
    document and, on SQLite (bm25), the document's length: within one (doc_type, occurrences)
    group the key's order is the ranking's, so a common word's best hits are the first few
    rows of each group (search.best_of_word) instead of a score for each of its 300k matches.
    Kept by every write (search.reindex) for the words in search_word_counts.
    """

    __tablename__ = "search_postings"

    word: Mapped[str] = mapped_column(String(100), primary_key=True)
    doc_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    # As the engine counts them: FTS5 every token; PostgreSQL the positions a tsvector keeps.
    occurrences: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The document's length as the engine's ranking weighs it: FTS5 its tokens (doc_type's
    # included); PostgreSQL's ts_rank ignores length, so 0 there.
    length: Mapped[int] = mapped_column(Integer, primary_key=True)
    doc_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    document_id: Mapped[int]  # search_documents.id

    # SQLite: the rows are the key's index itself, not a table beside it.
    __table_args__ = {"sqlite_with_rowid": False}


class SearchWordCount(Base):
    """How many documents of a type have a frequent word so many times: the groups of
    search_postings. A word listed here has all its documents there; a group may count 0."""

    __tablename__ = "search_word_counts"

    word: Mapped[str] = mapped_column(String(100), primary_key=True)
    doc_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    occurrences: Mapped[int] = mapped_column(Integer, primary_key=True)
    documents: Mapped[int]


class Revision(Base):
    """One change to one record: its state afterwards, and the JSON Patch that made it.

    `seq` numbers every change to every record, gap-free, in commit order (DatasetState);
    `version` counts the changes to this one record. A deletion leaves `record` null: the
    last revision of a deleted record is its tombstone.
    """

    __tablename__ = "revisions"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    record_type: Mapped[str] = mapped_column(String(16))
    record_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    token_name: Mapped[str | None] = mapped_column(String(100))
    summary: Mapped[str | None] = mapped_column(Text)
    record: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    patch: Mapped[list[Any]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_revisions_record", "record_type", "record_id", "version", unique=True),
        Index("ix_revisions_record_id", "record_id"),
        # A record's latest revision at a sequence number (as_of, snapshots at as_of).
        Index("ix_revisions_record_type_record_id_seq", "record_type", "record_id", "seq"),
    )

    id: Mapped[int] = synonym("seq")  # what store.paginate pages by


class Token(Base):
    """A curator's or admin's bearer token, stored only as its SHA-256."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
