"""The database runs the functions written in clusters/sql/: the file is their readable source and
the migrations carry copies, so a copy that drifted from the file (or a file changed without a
migration) fails here."""

import re
from pathlib import Path

from django.conf import settings
from django.db import connection

SQL_DIR = Path(settings.BASE_DIR) / "clusters" / "sql"
FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\(")


def definitions(names: list[str]) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.proname = ANY(%s)", [names]
        )
        return dict(cursor.fetchall())


def test_the_database_runs_exactly_the_functions_of_clusters_sql(db) -> None:
    for path in sorted(SQL_DIR.glob("*.sql")):
        text = path.read_text()
        names = FUNCTION.findall(text)
        installed = definitions(names)
        assert sorted(installed) == sorted(names), f"{path.name}: not installed by a migration"
        with connection.cursor() as cursor:
            cursor.execute(text)  # CREATE OR REPLACE, rolled back with the test's transaction
        assert definitions(names) == installed, f"{path.name} differs from its latest migration's copy"
