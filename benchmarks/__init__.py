"""dumpcodec's benchmark suite: ``python -m benchmarks`` (see ``benchmarks/run.py``).

Run by hand, never by the test suite's timing: it compares dumpcodec with the
tools a user would otherwise pick (psycopg, asyncpg, pgcopy, pg_dump, pg_restore)
in one run on the same generated tables, and writes ``benchmarks/results/``.
"""
