"""Count the SQL statements of ``PATCH /api/sandboxes`` requests, in-process.

Run by bench/run.py as ``python -m bench.queries`` with the server's
environment, so the requests go through the same settings, middleware and
database as the server's. Django's test client sends each request and
CaptureQueriesContext records its statements, counting BEGIN and COMMIT as
the tests in tests/test_queries.py do. Prints one JSON object.
"""

import argparse
import json
import random
import re
from collections import Counter

import django

from bench.body import patch_body


def _label(statement: str) -> str:
    """Name a statement by its verb and main table, e.g. ``INSERT table``.

    A SELECT is named by its last FROM, which is the outer query's when the
    statement has subqueries in its select list.
    """
    verb = statement.split(None, 1)[0].upper()
    if verb == "SELECT":
        tables = re.findall(r'\bFROM\s+"?(\w+)"?', statement, re.IGNORECASE)
    else:
        tables = re.findall(r'\b(?:INTO|UPDATE)\s+"?(\w+)"?', statement, re.IGNORECASE)
        tables = tables[:1]
    return f"{verb} {tables[-1]}" if tables else verb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--key-file", required=True, help="file with one 'KEY [ACCOUNT_ID]' per line"
    )
    parser.add_argument("--requests", type=int, default=20, help="requests to sample")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--show-sql", action="store_true", help="include the first request's SQL"
    )
    arguments = parser.parse_args()

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    with open(arguments.key_file) as lines:
        entries = [line.split() for line in lines if line.strip()]
    rng = random.Random(arguments.seed)
    client = Client()

    def send(entry, number):
        body = patch_body(entry, f"snap_count_{number}")
        return client.generic(
            "PATCH",
            "/api/sandboxes",
            json.dumps(body),
            content_type="application/json",
            secure=True,
            headers={"x-api-key": entry[0], "host": "127.0.0.1"},
        )

    # The first request opens the connection and fills Django's caches.
    send(rng.choice(entries), 0)

    counts, statuses, shapes = Counter(), Counter(), Counter()
    first_sql = None
    for number in range(1, arguments.requests + 1):
        entry = rng.choice(entries)
        with CaptureQueriesContext(connection) as captured:
            response = send(entry, number)
        statuses[response.status_code] += 1
        if response.status_code == 200:
            expected = entry[1] if len(entry) > 1 else None
            returned = response.json()["account_id"]
            if expected is not None and returned != expected:
                statuses["wrong_account"] += 1
        statements = [query["sql"] for query in captured.captured_queries]
        counts[len(statements)] += 1
        shapes[" | ".join(_label(statement) for statement in statements)] += 1
        if first_sql is None:
            first_sql = statements

    result = {
        "queries_per_request": {str(key): value for key, value in counts.items()},
        "statuses": {str(key): value for key, value in statuses.items()},
        "statement_sequences": dict(shapes),
    }
    if arguments.show_sql:
        result["first_request_sql"] = first_sql
    print(json.dumps(result))


if __name__ == "__main__":
    main()
