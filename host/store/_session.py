"""The one way to open a session: read-only by default, commit on success, StoreError on failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from host.errors import StoreError
from host.store._engine import WRITE_OPTION, translate_error

__all__ = ["SessionFactory"]


class SessionFactory:
    """Makes managed sessions on one engine. Thread-safe: each ``session()`` is its own connection."""

    def __init__(self, engine: Engine, url: str) -> None:
        self._url = url
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(bind=engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False)

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """A session in one transaction. ``write=False`` rolls back at the end, so nothing it did is kept.

        Raises:
            StoreError: any database error, translated (the transaction is rolled back).
        """
        session = (self._write if write else self._read)()
        try:
            yield session
            if write:
                session.commit()
            else:
                session.rollback()
        except SQLAlchemyError as exc:
            session.rollback()
            raise translate_error(exc, self._url) from exc
        except OverflowError as exc:  # sqlite3 refuses integers beyond 64 bits before SQLAlchemy sees them
            session.rollback()
            raise StoreError(f"a value too large for the database: {exc}") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
