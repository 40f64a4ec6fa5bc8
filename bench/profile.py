"""Profile ``PATCH /api/sandboxes`` in-process with pyinstrument.

Run by bench/run.py (``--profile DIR``) as ``python -m bench.profile`` with a
server's environment. Django's test client sends the requests, one at a
time, so the CPU time per request excludes gunicorn and contention between
workers. Prints one JSON object: CPU and wall milliseconds per request,
measured without the profiler, and the profiler's call tree as text.
"""

import argparse
import json
import random
import time

import django

from bench.body import patch_body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--key-file", required=True, help="file with one 'KEY [ACCOUNT_ID]' per line"
    )
    parser.add_argument("--requests", type=int, default=300, help="requests per pass")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()

    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit(
            "pyinstrument is not installed. Install it with "
            "'.venv/bin/pip install pyinstrument' and rerun."
        ) from None
    django.setup()
    from django.test import Client

    with open(arguments.key_file) as lines:
        entries = [line.split() for line in lines if line.strip()]
    rng = random.Random(arguments.seed)
    client = Client()
    sent = 0

    def send():
        nonlocal sent
        sent += 1
        entry = rng.choice(entries)
        body = patch_body(entry, f"snap_profile_{sent}")
        response = client.generic(
            "PATCH",
            "/api/sandboxes",
            json.dumps(body),
            content_type="application/json",
            secure=True,
            headers={"x-api-key": entry[0], "host": "127.0.0.1"},
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"PATCH /api/sandboxes returned {response.status_code}: "
                f"{response.content[:300]!r}"
            )

    # Warm Django's caches and the connection before measuring.
    for _ in range(30):
        send()
    # The fastest of three passes is the least disturbed by other processes.
    cpu_ms, wall_ms = [], []
    for _ in range(3):
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        for _ in range(arguments.requests):
            send()
        cpu_ms.append((time.process_time() - cpu_started) * 1000 / arguments.requests)
        wall_ms.append((time.perf_counter() - wall_started) * 1000 / arguments.requests)

    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(arguments.requests):
        send()
    profiler.stop()
    print(
        json.dumps(
            {
                "cpu_ms_per_request": min(cpu_ms),
                "wall_ms_per_request": min(wall_ms),
                "tree": profiler.output_text(unicode=False, color=False),
            }
        )
    )


if __name__ == "__main__":
    main()
