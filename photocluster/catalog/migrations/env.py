"""Alembic environment: runs against the engine photocluster hands over in the config."""

from __future__ import annotations

from alembic import context

from photocluster.catalog.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite rebuilds tables to alter them (batch mode); with foreign keys on, dropping
            # the old table would cascade-delete rows that point at it. The pragma only takes
            # effect outside a transaction, so it is set before the migration begins.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
            )
            with context.begin_transaction():
                if sqlite:
                    # Python's sqlite3 runs DDL outside any transaction: begin one, and take the
                    # write lock now, so that a migration is all or nothing and a second process
                    # creating the same catalog waits, then finds the tables already there.
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                if connection.dialect.name == "postgresql":
                    # Clients opening a new shared catalog at once: one migrates while the
                    # others wait here, then find the schema already at head.
                    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(1346594626)")
                context.run_migrations()
            connection.commit()
            if sqlite:
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise RuntimeError(f"migration left broken references: {problems[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")


run_migrations_online()
