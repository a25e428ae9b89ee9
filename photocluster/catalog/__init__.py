"""The catalog: SQLite or PostgreSQL tables, migrations, the write lock, what photos and names
are."""
