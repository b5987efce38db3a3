"""The migration runner: a pure core that plans (`plan`), and the database side that carries plans out
(`runner`). The SQL files ship inside this package as `sql/` (from the repository's `migrations/`)."""
