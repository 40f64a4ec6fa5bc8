"""Benchmark PATCH /api/sandboxes under gunicorn against a plain-Django
baseline, at several numbers of API keys.

    .venv/bin/python bench/run.py [--keys 1000 --keys 1000000] [--runs 3]
                                  [--duration 10] [--quick]

For each key count it recreates a PostgreSQL database (``recoup_bench_1000``
and so on), migrates and seeds it. Each run then measures every key count,
scenario and server in turn, with wrk against the service or against the
baseline (bench/baseline.py), each started and stopped for its measurement.
The two scenarios are a key acting for its own account, and an
organization's key acting for a member's ``account_id``. The script prints
Markdown tables of medians, ratios and the targets of docs/benchmarks.md,
and drops the databases at the end. Every server it starts listens on
127.0.0.1 only.
"""

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cpu, database, load, report, server
from bench.paths import PROJECT_ROOT, VENV_PYTHON

SCENARIOS = ("own", "org")
SERVERS = {"service": "recoup.settings", "baseline": "bench.settings"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# The service writes last_used_at at most once a minute per key
# (accounts.keys.LAST_USED_RESOLUTION).
LAST_USED_RESOLUTION_SECONDS = 60
# Rates so high that no benchmark request is throttled, while the limiter
# still reads and writes its counters as in production. An empty rate would
# switch the limiter off, skipping that work.
BENCH_RATE_LIMIT = "1000000/minute"
# Variables of recoup/settings.py and gunicorn.conf.py that the benchmark sets
# itself; inherited values are dropped so they cannot change a run.
CONTROLLED_VARIABLES = (
    "DJANGO_SETTINGS_MODULE",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "API_KEY_HASH_SECRET",
    "SNAPSHOT_TTL_DAYS",
    "PLATFORM_ORGANIZATION_ID",
    "DATABASE_URL",
    "CACHE_URL",
    "API_RATE_LIMIT",
    "AUTH_FAILURE_RATE_LIMIT",
    "CORS_ALLOWED_ORIGINS",
    "NUM_PROXIES",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "DB_CONN_MAX_AGE",
    "DB_CONNECT_TIMEOUT",
    "SECURE_HSTS_SECONDS",
    "GUNICORN_BIND",
    "GUNICORN_TIMEOUT",
    "GUNICORN_ACCESS_LOG",
    "WEB_CONCURRENCY",
    "FORWARDED_ALLOW_IPS",
)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark PATCH /api/sandboxes against a plain-Django baseline."
    )
    parser.add_argument(
        "--keys",
        type=int,
        action="append",
        help="number of API keys (and accounts) to seed; repeat for several "
        "sizes (default: 1000 and 1000000; with --quick 1000 and 20000)",
    )
    parser.add_argument(
        "--runs", type=int, help="measured runs per size, scenario and server (5)"
    )
    parser.add_argument(
        "--duration", type=float, help="seconds of load per measured run (10)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        help="seconds of load before each measured run, not measured (2)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short run: 1 run of 3 s per case, 1000 and 20000 keys",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=8,
        help="concurrent connections of the load generator (8)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument(
        "--worker-class",
        default="sync",
        choices=["sync", "gthread"],
        help="gunicorn worker class (sync, as in gunicorn.conf.py)",
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per gthread worker (4)"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        help="run only this scenario; repeat for several (default: both)",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="seconds a worker keeps its database connection (60, the "
        "settings' DB_CONN_MAX_AGE default)",
    )
    parser.add_argument(
        "--conn-max-age-via",
        choices=["url", "env"],
        default="env",
        help="how the servers get it: 'env' sets only DB_CONN_MAX_AGE, as the "
        "README's production setup does, and 'url' adds conn_max_age and "
        "conn_health_checks to DATABASE_URL, which django-environ applies "
        "(default: env)",
    )
    parser.add_argument(
        "--admin-url",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL URL used to create and drop the benchmark database; "
        "the host must be a loopback address",
    )
    parser.add_argument(
        "--database",
        default="recoup_bench",
        help="prefix of the benchmark databases, one per key count: "
        "recoup_bench_1000 and so on",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="leave the benchmark databases in place at the end",
    )
    parser.add_argument(
        "--sample-keys",
        type=int,
        default=20_000,
        help="keys the load generator picks from at random, spread over the "
        "seeded set (20000); organization keys: a tenth of it",
    )
    parser.add_argument(
        "--query-samples",
        type=int,
        default=20,
        help="requests per scenario and server whose SQL is counted (20)",
    )
    parser.add_argument("--json", type=Path, help="also write raw results here")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after the runs of each size, profile each case in-process with "
        "pyinstrument, write the call trees to DIR, and time a forked "
        "worker's first requests and full garbage collection",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="fail instead of installing wrk with apt-get when it is missing",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    arguments = parser.parse_args()

    quick = arguments.quick
    arguments.keys = arguments.keys or ([1000, 20_000] if quick else [1000, 1_000_000])
    arguments.runs = arguments.runs or (1 if quick else 5)
    arguments.duration = arguments.duration or (3.0 if quick else 10.0)
    arguments.warmup = arguments.warmup if arguments.warmup is not None else 2.0
    arguments.scenario = arguments.scenario or list(SCENARIOS)
    host = urlsplit(arguments.admin_url).hostname
    if host not in LOOPBACK_HOSTS:
        parser.error(f"--admin-url must point at a loopback address, not {host!r}.")
    return arguments


def server_env(arguments, database_url: str, settings_module: str) -> dict:
    """Return the environment of a server: production settings (DEBUG off,
    secrets set, 127.0.0.1 allowed), with limits no benchmark request reaches."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in CONTROLLED_VARIABLES
    }
    url = database_url
    if arguments.conn_max_age_via == "url":
        url += f"?conn_max_age={arguments.conn_max_age}&conn_health_checks=true"
    env.update(
        DJANGO_SETTINGS_MODULE=settings_module,
        DEBUG="false",
        SECRET_KEY=arguments.secret_key,
        API_KEY_HASH_SECRET=arguments.hash_secret,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=url,
        DB_CONN_MAX_AGE=str(arguments.conn_max_age),
        API_RATE_LIMIT=BENCH_RATE_LIMIT,
        AUTH_FAILURE_RATE_LIMIT=BENCH_RATE_LIMIT,
        PLATFORM_ORGANIZATION_ID="",
        CACHE_URL="locmemcache://",
        LOG_FORMAT="text",
        LOG_LEVEL="INFO",
        GUNICORN_ACCESS_LOG="-",
        WEB_CONCURRENCY=str(arguments.workers),
    )
    return env


class KeySample:
    """The keys the load generator uses for one size, and their key files."""

    def __init__(self, dataset: database.Dataset, arguments, folder: Path):
        rng = random.Random(arguments.seed)
        people = rng.sample(
            range(dataset.organizations, dataset.keys),
            min(dataset.people, arguments.sample_keys),
        )
        organizations = rng.sample(
            range(dataset.organizations),
            min(dataset.organizations, max(1, arguments.sample_keys // 10)),
        )
        self.files = {"own": folder / "own.keys", "org": folder / "org.keys"}
        database.write_key_file(
            self.files["own"], [dataset.raw_keys[person] for person in people]
        )
        database.write_key_file(
            self.files["org"],
            [
                f"{dataset.raw_keys[organization]} {dataset.account_ids[member]}"
                for organization in organizations
                for member in dataset.members_of(organization)
            ],
        )
        self.key_ids = [index + 1 for index in people + organizations]
        self.marked_at = None

    def mark_used_if_stale(self, url: str, seconds_ahead: float) -> None:
        """Mark the sample's keys used unless that was done recently enough
        to last ``seconds_ahead`` more seconds."""
        if (
            self.marked_at is not None
            and time.monotonic() - self.marked_at + seconds_ahead
            < LAST_USED_RESOLUTION_SECONDS
        ):
            return
        database.mark_keys_used(url, self.key_ids)
        self.marked_at = time.monotonic()


def per_request(before: dict, after: dict, requests: int, health_checks: int) -> dict:
    """Return the server's counters per request, less the health checks'."""
    delta = {name: after[name] - before[name] for name in before}
    # Each GET /healthz commits one SELECT 1.
    delta["commits"] -= health_checks
    return {
        "sessions": delta["sessions"] / requests,
        "commits": delta["commits"] / requests,
        "rollbacks": delta["rollbacks"] / requests,
        "rows_written": (delta["rows_inserted"] + delta["rows_updated"]) / requests,
        "key_rows_updated": delta["key_rows_updated"] / requests,
    }


def _load_server(arguments, context: dict, scenario: str, running) -> dict:
    """Warm up a started server, measure one run against it, and read its
    workers' memory and the CPU time that the run cost."""
    wrk, key_file = context["wrk"], context["sample"].files[scenario]
    warmup = load.run_wrk(
        wrk,
        running.port,
        key_file,
        duration=arguments.warmup,
        connections=arguments.connections,
    )

    master = running.process.pid
    gunicorn_before = cpu.gunicorn_seconds(master, server.worker_pids(master))
    with cpu.BackendCPU(arguments.admin_url, context["name"]) as backends:
        result = load.run_wrk(
            wrk,
            running.port,
            key_file,
            duration=arguments.duration,
            connections=arguments.connections,
        )
    gunicorn_cpu = (
        cpu.gunicorn_seconds(master, server.worker_pids(master)) - gunicorn_before
    )

    # Workers restart after max_requests (gunicorn.conf.py), so read the
    # current ones.
    rss = [server.resident_memory_kib(pid) for pid in server.worker_pids(master)]
    return {
        "warmup": warmup,
        "result": result,
        "worker_rss_kib": [value for value in rss if value is not None],
        "master_rss_kib": server.resident_memory_kib(master),
        "gunicorn_cpu_ms": gunicorn_cpu * 1000 / result["requests"],
        "postgres_cpu_ms": backends.seconds * 1000 / result["requests"],
    }


def measure(arguments, context: dict, scenario: str, server_name: str) -> dict:
    """Start one server, warm it up, measure one run, stop it."""
    url, sample = context["url"], context["sample"]
    config = server.GunicornConfig(
        arguments.workers, arguments.worker_class, arguments.threads
    )
    # Starting and stopping take a few seconds on top of the load.
    sample.mark_used_if_stale(url, arguments.warmup + arguments.duration + 15)
    before = database.read_counters(arguments.admin_url, url, context["name"])

    env = server_env(arguments, url, SERVERS[server_name])
    context["blocks"] += 1
    log_path = context["folder"] / f"gunicorn-{context['blocks']:03d}.log"
    cpu_before = cpu.sample(context["postmaster"])
    running = server.start(config, env, log_path)
    try:
        loaded = _load_server(arguments, context, scenario, running)
    finally:
        running.stop()
    other_cores = cpu.other_cores(cpu_before, cpu.sample(context["postmaster"]))
    after = database.read_counters(arguments.admin_url, url, context["name"])

    warmup, result = loaded.pop("warmup"), loaded.pop("result")
    # wrk does not count the requests still in flight when it stops, but the
    # access log has every request the server handled.
    handled, handled_not_ok = server.count_patch_requests(log_path)
    # A worker restarts after max_requests (gunicorn.conf.py). While the new
    # one starts, requests queue, and that shows in p99.
    restarts = server.count_worker_boots(log_path) - arguments.workers

    result.update(
        server=server_name,
        scenario=scenario,
        warmup_requests=warmup["requests"],
        warmup_errors=warmup["errors"],
        server_requests=handled,
        server_non200=handled_not_ok,
        worker_restarts=restarts,
        other_cores=other_cores,
        **loaded,
        per_request=per_request(before, after, handled, running.health_checks),
    )
    if result["errors"] or warmup["errors"] or handled_not_ok:
        database.log(
            f"  errors: {handled_not_ok} non-200 in the access log; the first "
            f"one wrk saw was {result['first_error']!r}. See {log_path}."
        )
    return result


def run_module(module: str, arguments: list[str], env: dict) -> dict:
    """Run ``python -m module`` in the project and return its JSON output."""
    completed = subprocess.run(
        [str(VENV_PYTHON), "-m", module, *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{module} {' '.join(arguments)} failed with status "
            f"{completed.returncode}:\n{completed.stderr[-3000:]}"
        )
    return json.loads(completed.stdout)


def count_queries(arguments, context: dict) -> dict:
    """Count the statements of sampled requests in-process, per scenario and
    server (bench/queries.py)."""
    counts = {}
    context["sample"].mark_used_if_stale(context["url"], 60)
    for server_name, settings_module in SERVERS.items():
        env = server_env(arguments, context["url"], settings_module)
        for scenario in arguments.scenario:
            counted = run_module(
                "bench.queries",
                [
                    "--key-file",
                    str(context["sample"].files[scenario]),
                    "--requests",
                    str(arguments.query_samples),
                ],
                env,
            )
            counts[(server_name, scenario)] = counted
            database.log(
                f"  SQL {server_name} {scenario}: {counted['queries_per_request']} "
                f"{counted['statement_sequences']} statuses {counted['statuses']}"
            )
    return counts


def profile(arguments, context: dict) -> dict:
    """Profile each scenario and server in-process (bench/profile.py), write
    the call trees to ``--profile``, and measure a forked worker's start
    (bench/worker_start.py). Return the CPU ms per request."""
    cpu_ms = {}
    arguments.profile.mkdir(parents=True, exist_ok=True)
    for server_name, settings_module in SERVERS.items():
        env = server_env(arguments, context["url"], settings_module)
        for scenario in arguments.scenario:
            context["sample"].mark_used_if_stale(context["url"], 30)
            profiled = run_module(
                "bench.profile",
                ["--key-file", str(context["sample"].files[scenario])],
                env,
            )
            keys = context["keys"]
            path = arguments.profile / f"{keys}-{server_name}-{scenario}.txt"
            path.write_text(profiled["tree"])
            cpu_ms[(keys, scenario, server_name)] = profiled["cpu_ms_per_request"]
            database.log(
                f"  in-process {server_name} {scenario}: "
                f"{profiled['cpu_ms_per_request']:.2f} ms CPU per request; "
                f"call tree in {path}"
            )
            started = run_module(
                "bench.worker_start",
                ["--key-file", str(context["sample"].files[scenario])],
                env,
            )
            collection = started["full_collection_ms"]
            database.log(
                f"  forked worker {server_name} {scenario}: first request "
                f"{started['first_request_ms']:.1f} ms, later ones "
                f"{started['later_request_ms']:.1f} ms; full collection "
                f"{collection['frozen']:.1f} ms frozen, "
                f"{collection['unfrozen']:.1f} ms unfrozen "
                f"({started['tracked_objects']:,} objects)"
            )
    return cpu_ms


def prepare_size(arguments, keys: int, wrk: str, folder: Path) -> dict:
    """Create, migrate and seed the database of one key count; return the
    context its runs need."""
    name = f"{arguments.database}_{keys}"
    url = database.database_url(arguments.admin_url, name)
    database.log(f"== {keys:,} keys: creating database {name}")
    database.recreate_database(arguments.admin_url, name)
    database.migrate(server_env(arguments, url, SERVERS["service"]))
    started = time.perf_counter()
    dataset = database.build_dataset(keys, random.Random(arguments.seed))
    seconds = database.seed(url, dataset, arguments.hash_secret)
    database.log(
        f"  seeded {keys:,} accounts and keys, {dataset.organizations:,} of them "
        f"organizations, in {time.perf_counter() - started:.0f} s "
        f"({seconds:.0f} s writing)"
    )
    size_folder = folder / str(keys)
    size_folder.mkdir()
    return {
        "keys": keys,
        "name": name,
        "url": url,
        "wrk": wrk,
        "sample": KeySample(dataset, arguments, size_folder),
        "folder": size_folder,
        "blocks": 0,
        "postmaster": database.postmaster_pid(url),
    }


def run_all(arguments, contexts: list[dict]) -> list[dict]:
    """Measure every case ``--runs`` times, interleaved.

    Each run goes through all key counts, scenarios and both servers, and
    alternates which server goes first, so that a change of the machine's
    load over time does not favour one side of a ratio.
    """
    results = []
    for run in range(1, arguments.runs + 1):
        order = ["service", "baseline"] if run % 2 else ["baseline", "service"]
        for context in contexts:
            for scenario in arguments.scenario:
                for server_name in order:
                    result = measure(arguments, context, scenario, server_name)
                    result.update(keys=context["keys"], run=run)
                    results.append(result)
                    database.log(
                        f"  run {run} {context['keys']:>9,} keys {scenario:<3} "
                        f"{server_name:<8} "
                        f"{result['requests_per_second']:7.1f} req/s  "
                        f"p50 {result['p50_us'] / 1000:6.1f}  "
                        f"p99 {result['p99_us'] / 1000:6.1f} ms  "
                        f"errors {result['errors']}  "
                        f"other load {result['other_cores']:.2f} cores"
                    )
    return results


def write_json(arguments, results: list[dict], query_counts: dict) -> None:
    """Write the options and every run's figures to ``--json``, without the
    generated secrets."""
    options = {
        key: value
        for key, value in vars(arguments).items()
        if key not in ("secret_key", "hash_secret")
    }
    counts = {" ".join(map(str, key)): value for key, value in query_counts.items()}
    arguments.json.write_text(
        json.dumps(
            {"arguments": options, "results": results, "query_counts": counts},
            indent=2,
            default=str,
        )
    )


def revision() -> str:
    """Return the measured code's git revision, with -dirty for local changes."""
    completed = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return completed.stdout.strip() or "unknown"


def count_all_queries(arguments, contexts: list[dict]) -> dict:
    """Return the sampled queries per request of every case, keyed by
    (keys, scenario, server), and write the profiles if ``--profile`` is set."""
    query_counts = {}
    for context in contexts:
        database.log(f"== {context['keys']:,} keys: counting queries")
        counts = count_queries(arguments, context)
        for (server_name, scenario), counted in counts.items():
            key = (context["keys"], scenario, server_name)
            query_counts[key] = counted["queries_per_request"]
        if arguments.profile:
            profile(arguments, context)
    return query_counts


def main() -> None:
    arguments = parse_arguments()
    arguments.revision = revision()
    arguments.secret_key = secrets.token_urlsafe(50)
    arguments.hash_secret = secrets.token_urlsafe(32)
    wrk = load.ensure_wrk(install=not arguments.no_install)
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="recoup-bench-"))
    database.log(
        f"revision {arguments.revision}; "
        f"gunicorn: {arguments.workers} {arguments.worker_class} workers; wrk: "
        f"{arguments.connections} connections; {arguments.runs} runs of "
        f"{arguments.duration:g} s after {arguments.warmup:g} s of warm-up; "
        f"server logs in {folder}"
    )

    try:
        contexts = [
            prepare_size(arguments, keys, wrk, folder) for keys in arguments.keys
        ]
        results = run_all(arguments, contexts)
        query_counts = count_all_queries(arguments, contexts)
    finally:
        if not arguments.keep_database:
            for keys in arguments.keys:
                name = f"{arguments.database}_{keys}"
                database.drop_database(arguments.admin_url, name)

    rows = report.summarize(results)
    ratios = report.throughput_ratios(results)
    growth = report.p99_growth(rows)
    checks = report.check_targets(rows, ratios, growth, query_counts)
    print(report.markdown(rows, ratios, growth, query_counts, checks))
    print(f"\nTotal time: {time.perf_counter() - started:.0f} s")
    if arguments.json:
        write_json(arguments, results, query_counts)

    if any(row["errors"] for row in rows):
        print(f"Server logs and key files are kept in {folder}.")
    else:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
