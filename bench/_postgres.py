"""The PostgreSQL server the benchmarks use (``BENCH_PG``, default the local trust-auth one) and a fresh database
on it. Not a benchmark itself: ``make bench`` runs ``bench/[a-z]*.py`` only."""

from __future__ import annotations

import os

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def recreate_database(name: str) -> None:
    """Drop ``name`` (forcing its sessions off) and create it empty."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
