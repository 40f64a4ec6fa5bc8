"""Measure what a gunicorn worker forked from the preloaded application pays
at its start, and what a full garbage collection costs it.

Run by bench/run.py (``--profile DIR``) as ``python -m bench.worker_start``
with a server's environment. Loads ``recoup.wsgi`` as gunicorn's master does
with ``preload_app``, then forks children that call the WSGI application
directly, one request at a time. Prints one JSON object:

- ``first_request_ms`` and ``later_request_ms``: the median latency of a
  child's first request (it connects to PostgreSQL) and of its next ones;
- ``full_collection_ms``: the median duration of ``gc.collect()`` in a child
  that has served requests, with the master's objects frozen
  (``gc.freeze()``, as ``gunicorn.conf.py`` does) and without;
- ``tracked_objects``: how many objects the collector tracked in the master
  once the application was loaded.
"""

import argparse
import gc
import io
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

from bench.body import patch_body

CHILDREN = 5
REQUESTS_PER_CHILD = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--key-file", required=True, help="file with one 'KEY [ACCOUNT_ID]' per line"
    )
    arguments = parser.parse_args()
    # One string, which the collector does not track: the key file is this
    # script's, not the application's, and must not add to the collections.
    keys = Path(arguments.key_file).read_text()

    from recoup.wsgi import application

    tracked = len(gc.get_objects())
    unfrozen = [_child(application, keys, number) for number in range(CHILDREN)]
    gc.freeze()
    frozen = [
        _child(application, keys, number) for number in range(CHILDREN, 2 * CHILDREN)
    ]
    gc.unfreeze()
    print(
        json.dumps(
            {
                "tracked_objects": tracked,
                "first_request_ms": _median(frozen, "first_request_ms"),
                "later_request_ms": _median(frozen, "later_request_ms"),
                "full_collection_ms": {
                    "frozen": _median(frozen, "full_collection_ms"),
                    "unfrozen": _median(unfrozen, "full_collection_ms"),
                },
            }
        )
    )


def _median(results: list[dict], name: str) -> float:
    return round(statistics.median(result[name] for result in results), 2)


def _child(application, keys: str, number: int) -> dict:
    """Fork a child that serves REQUESTS_PER_CHILD requests and then runs one
    full collection. Return its timings in milliseconds."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        try:
            lines = keys.splitlines()
            start = number * REQUESTS_PER_CHILD
            entries = [
                lines[(start + sent) % len(lines)].split()
                for sent in range(REQUESTS_PER_CHILD)
            ]
            del lines
            latencies = [
                _request(application, entry, sent) for sent, entry in enumerate(entries)
            ]
            started = time.perf_counter()
            gc.collect()
            result = {
                "first_request_ms": latencies[0],
                "later_request_ms": statistics.median(latencies[1:]),
                "full_collection_ms": (time.perf_counter() - started) * 1000,
            }
            os.write(writer, json.dumps(result).encode())
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        output = pipe.read()
    os.waitpid(pid, 0)
    if not output:
        raise SystemExit(f"Child {number} failed; see its output above.")
    return json.loads(output)


def _request(application, entry, sent: int) -> float:
    """Send one PATCH /api/sandboxes to ``application`` and return its
    latency in milliseconds. Raise RuntimeError unless the status is 200."""
    body = patch_body(entry, f"snap_worker_start_{os.getpid()}_{sent}")
    payload = json.dumps(body).encode()

    environ = {
        "REQUEST_METHOD": "PATCH",
        "PATH_INFO": "/api/sandboxes",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_X_API_KEY": entry[0],
        "HTTP_X_FORWARDED_PROTO": "https",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "https",
    }

    statuses = []
    started = time.perf_counter()
    chunks = application(environ, lambda status, headers: statuses.append(status))
    content = b"".join(chunks)
    latency = (time.perf_counter() - started) * 1000
    if not statuses[0].startswith("200"):
        raise RuntimeError(
            f"PATCH /api/sandboxes returned {statuses[0]}: {content[:300]!r}"
        )
    return latency


if __name__ == "__main__":
    main()
