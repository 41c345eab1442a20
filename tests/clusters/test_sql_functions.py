"""The database runs the functions and triggers written in each app's sql/ folder (clusters, billing,
accounts): the files are their readable source and the migrations carry copies, so a copy that
drifted from its file (or a file changed without a migration) fails here."""

import re
from pathlib import Path

from django.conf import settings
from django.db import connection

SQL_FILES = sorted(
    path
    for app in ("accounts", "clusters", "billing")
    for path in (Path(settings.BASE_DIR) / app / "sql").glob("*.sql")
)
FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\(")
TRIGGER = re.compile(r"CREATE OR REPLACE TRIGGER (\w+) ")

DEFINITIONS_SQL = """
SELECT 'function ' || p.proname, pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.proname = ANY(%(functions)s)
UNION ALL
SELECT 'trigger ' || t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t WHERE t.tgname = ANY(%(triggers)s)
"""


def definitions(text: str) -> dict[str, str]:
    """What the database holds of the functions and triggers the text creates."""
    names = {"functions": FUNCTION.findall(text), "triggers": TRIGGER.findall(text)}
    with connection.cursor() as cursor:
        cursor.execute(DEFINITIONS_SQL, names)
        return dict(cursor.fetchall())


def test_the_database_runs_exactly_the_functions_and_triggers_of_the_sql_files(db) -> None:
    assert len(SQL_FILES) >= 4
    for path in SQL_FILES:
        text = path.read_text()
        installed = definitions(text)
        expected = [f"function {n}" for n in FUNCTION.findall(text)] + [
            f"trigger {n}" for n in TRIGGER.findall(text)
        ]
        assert sorted(installed) == sorted(expected), f"{path.name}: not all installed by a migration"
        with connection.cursor() as cursor:
            cursor.execute(text)  # CREATE OR REPLACE, rolled back with the test's transaction
        assert definitions(text) == installed, f"{path.name} differs from its latest migration's copy"
