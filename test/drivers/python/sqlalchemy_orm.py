"""SQLAlchemy (Core and ORM, on psycopg2) through shardproxy.

Run by test/drivers (go test) with Debian's /usr/bin/python3 as
    sqlalchemy_orm.py URL MODE
where MODE is the proxy's pool mode or "direct". It runs the dialect's connect-time
queries and reflection, create_all, Core inserts (executemany), selects
with filters and joins, UPDATE ... RETURNING, savepoints, per-connection
isolation levels and ORM sessions with commits and rollbacks, and prints
one JSON object of what it saw; the Go test checks it and the tables left
behind (sa_authors_MODE, sa_books_MODE). Written for SQLAlchemy 1.4
(Debian bookworm) in its 2.0 style, so it runs on 2.x too.
"""

import json
import sys

import sqlalchemy as sa
from sqlalchemy import orm


def main():
    url, mode = sys.argv[1], sys.argv[2]
    url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    out = {"sqlalchemy": sa.__version__}
    # Two pooled connections at most, as many as the proxy's pool in
    # transaction mode has server connections.
    engine = sa.create_engine(url, future=True, pool_size=2, max_overflow=0, pool_pre_ping=True,
                              connect_args={"connect_timeout": 10, "application_name": "drivers-sqlalchemy"})

    Base = orm.declarative_base()

    class Author(Base):
        __tablename__ = "sa_authors_" + mode
        id = sa.Column(sa.Integer, sa.Identity(), primary_key=True)
        name = sa.Column(sa.Text, nullable=False, unique=True)
        born = sa.Column(sa.Date)
        books = orm.relationship("Book", back_populates="author", order_by="Book.id")

    class Book(Base):
        __tablename__ = "sa_books_" + mode
        id = sa.Column(sa.Integer, sa.Identity(), primary_key=True)
        author_id = sa.Column(sa.ForeignKey(Author.id), nullable=False)
        title = sa.Column(sa.Text, nullable=False)
        year = sa.Column(sa.Integer, nullable=False)
        price = sa.Column(sa.Numeric(8, 2))
        author = orm.relationship(Author, back_populates="books")

    Base.metadata.create_all(engine)
    # A second create_all finds the tables and creates nothing.
    Base.metadata.create_all(engine)
    out["reflected_tables"] = sorted(t for t in sa.inspect(engine).get_table_names()
                                     if t in (Author.__tablename__, Book.__tablename__))
    out["reflected_book_columns"] = [c["name"] for c in sa.inspect(engine).get_columns(Book.__tablename__)]

    authors, books = Author.__table__, Book.__table__
    # Core: executemany inserts, filtered selects, UPDATE ... RETURNING.
    with engine.begin() as conn:
        conn.execute(sa.insert(authors), [{"name": "author %d" % i} for i in range(10)])
        ids = dict(conn.execute(sa.select(authors.c.name, authors.c.id)).all())
        conn.execute(sa.insert(books), [
            {"author_id": ids["author %d" % (i % 10)], "title": "book %d" % i, "year": 1900 + i, "price": i}
            for i in range(100)])
    with engine.connect() as conn:
        out["core_books_after_1950"] = conn.execute(
            sa.select(sa.func.count()).select_from(books).where(books.c.year > 1950)).scalar_one()
        out["core_join"] = conn.execute(
            sa.select(authors.c.name, sa.func.count(books.c.id))
            .join(books, books.c.author_id == authors.c.id)
            .where(authors.c.name.in_(["author 3", "author 7"]))
            .group_by(authors.c.name).order_by(authors.c.name)).all()
        out["core_join"] = [list(r) for r in out["core_join"]]
        out["core_text_param"] = conn.execute(
            sa.text("select title from %s where year = :y" % Book.__tablename__), {"y": 1942}).scalar_one()
        out["core_update_returning"] = sorted(conn.execute(
            sa.update(books).where(books.c.year < 1903).values(price=books.c.price + 100)
            .returning(books.c.year)).scalars().all())
        conn.commit()

    # A transaction that raises is rolled back; a savepoint rolls back
    # alone.
    try:
        with engine.begin() as conn:
            conn.execute(sa.delete(books))
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    with engine.begin() as conn:
        conn.execute(sa.insert(authors).values(name="kept"))
        sp = conn.begin_nested()
        conn.execute(sa.insert(authors).values(name="savepoint only"))
        sp.rollback()
    with engine.connect() as conn:
        out["core_books_after_rollback"] = conn.execute(sa.select(sa.func.count()).select_from(books)).scalar_one()
        out["core_authors_after_savepoint"] = sorted(conn.execute(
            sa.select(authors.c.name).where(authors.c.name.in_(["kept", "savepoint only"]))).scalars().all())

    # Isolation level per connection, reset when it goes back to the pool.
    with engine.connect().execution_options(isolation_level="SERIALIZABLE") as conn:
        out["isolation_serializable"] = conn.execute(sa.text("show transaction_isolation")).scalar_one()
    with engine.connect() as conn:
        out["isolation_default"] = conn.execute(sa.text("show transaction_isolation")).scalar_one()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        out["autocommit_in_transaction"] = conn.execute(
            sa.text("select now() = statement_timestamp()")).scalar_one()

    # ORM: add/commit, queries with filters and relationships, rollback of
    # pending changes, an IntegrityError and recovery.
    Session = orm.sessionmaker(engine, future=True)
    with Session() as session:
        le_guin = Author(name="Ursula K. Le Guin", born=sa.func.to_date("1929-10-21", "YYYY-MM-DD"))
        le_guin.books = [Book(title="A Wizard of Earthsea", year=1968, price=9.5),
                         Book(title="The Dispossessed", year=1974, price=12)]
        session.add(le_guin)
        session.commit()
        out["orm_author_id_assigned"] = le_guin.id is not None
        out["orm_born"] = le_guin.born.isoformat()

    with Session() as session:
        found = session.execute(
            sa.select(Book).join(Book.author).where(Author.name.like("Ursula%"), Book.year < 1970)).scalars().all()
        out["orm_filtered_titles"] = [b.title for b in found]
        out["orm_legacy_query_count"] = session.query(Book).filter(Book.year.between(1960, 1980)).count()
        a = session.execute(sa.select(Author).where(Author.name == "Ursula K. Le Guin")).scalar_one()
        out["orm_relationship_titles"] = [b.title for b in a.books]
        a.name = "renamed"
        session.add(Book(author=a, title="pending", year=2000))
        session.flush()
        session.rollback()
        out["orm_name_after_rollback"] = a.name
        out["orm_pending_after_rollback"] = session.query(Book).filter_by(title="pending").count()
        session.add(Author(name="author 1"))
        try:
            session.commit()
            out["orm_duplicate_code"] = ""
        except sa.exc.IntegrityError as e:
            out["orm_duplicate_code"] = e.orig.pgcode
            session.rollback()
        b = session.execute(sa.select(Book).where(Book.title == "The Dispossessed")).scalar_one()
        b.price = 13
        session.commit()
        out["orm_price_after_commit"] = str(session.get(Book, b.id).price)

    engine.dispose()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
