"""Medians, ratios, target checks and the Markdown tables that run.py prints."""

from statistics import median

# The statements tests/test_queries.py pins for a steady-state request, BEGIN
# and COMMIT included: own account (test_own_account) and another account
# through an organization key (test_other_account).
PINNED_QUERIES = {"own": 3 + 2, "org": 4 + 2}
SCENARIO_TITLES = {
    "own": "own account",
    "org": "organization key, member's account_id",
}

MIN_THROUGHPUT_RATIO = 0.7
MAX_P99_GROWTH = 1.2


def _runs(results, **match):
    return [
        result
        for result in results
        if all(result[key] == value for key, value in match.items())
    ]


def summarize(results: list[dict]) -> list[dict]:
    """Return one row per (keys, scenario, server): medians over the runs."""
    rows = []
    seen = []
    for result in results:
        group = (result["keys"], result["scenario"], result["server"])
        if group not in seen:
            seen.append(group)
    for keys, scenario, server in seen:
        runs = _runs(results, keys=keys, scenario=scenario, server=server)
        per_request = {
            name: median(run["per_request"][name] for run in runs)
            for name in runs[0]["per_request"]
        }
        rows.append(
            {
                "keys": keys,
                "scenario": scenario,
                "server": server,
                "runs": len(runs),
                "requests_per_second": median(
                    run["requests_per_second"] for run in runs
                ),
                "p50_ms": median(run["p50_us"] for run in runs) / 1000,
                "p95_ms": median(run["p95_us"] for run in runs) / 1000,
                "p99_ms": median(run["p99_us"] for run in runs) / 1000,
                "errors": sum(
                    max(run["errors"] + run["warmup_errors"], run["server_non200"])
                    for run in runs
                ),
                "other_cores": max(run["other_cores"] for run in runs),
                "worker_restarts": sum(run["worker_restarts"] for run in runs),
                "gunicorn_cpu_ms": median(run["gunicorn_cpu_ms"] for run in runs),
                "postgres_cpu_ms": median(run["postgres_cpu_ms"] for run in runs),
                "requests": sum(run["requests"] for run in runs),
                "worker_rss_mib": median(max(run["worker_rss_kib"]) for run in runs)
                / 1024,
                "per_request": per_request,
            }
        )
    return rows


def throughput_ratios(results: list[dict]) -> dict:
    """Return service/baseline throughput per (keys, scenario): the median of
    the ratios of runs measured one after the other."""
    ratios = {}
    for result in _runs(results, server="service"):
        (baseline,) = _runs(
            results,
            keys=result["keys"],
            scenario=result["scenario"],
            run=result["run"],
            server="baseline",
        )
        ratios.setdefault((result["keys"], result["scenario"]), []).append(
            result["requests_per_second"] / baseline["requests_per_second"]
        )
    return {group: median(values) for group, values in ratios.items()}


def p99_growth(rows: list[dict]) -> dict:
    """Return p99 at the largest key count over p99 at the smallest, per
    (scenario, server)."""
    sizes = sorted({row["keys"] for row in rows})
    growth = {}
    if len(sizes) < 2:
        return growth
    for row in rows:
        if row["keys"] != sizes[-1]:
            continue
        (small,) = [
            other
            for other in rows
            if other["keys"] == sizes[0]
            and other["scenario"] == row["scenario"]
            and other["server"] == row["server"]
        ]
        growth[(row["scenario"], row["server"])] = row["p99_ms"] / small["p99_ms"]
    return growth


def check_targets(rows, ratios, growth, query_counts) -> list[tuple[str, str, bool]]:
    """Return (target, measured, met) for each target."""
    checks = []
    for (keys, scenario), ratio in sorted(ratios.items()):
        checks.append(
            (
                f"throughput >= {MIN_THROUGHPUT_RATIO} x baseline, {keys:,} keys, "
                f"{SCENARIO_TITLES[scenario]}",
                f"{ratio:.3f}",
                ratio >= MIN_THROUGHPUT_RATIO,
            )
        )
    sizes = sorted({row["keys"] for row in rows})
    for (scenario, server), value in sorted(growth.items()):
        if server != "service":
            continue
        checks.append(
            (
                f"p99 at {sizes[-1]:,} keys <= {MAX_P99_GROWTH} x p99 at "
                f"{sizes[0]:,} keys, {SCENARIO_TITLES[scenario]}",
                f"{value:.3f}",
                value <= MAX_P99_GROWTH,
            )
        )
    errors = sum(row["errors"] for row in rows)
    requests = sum(row["requests"] for row in rows)
    checks.append(
        ("zero errors", f"{errors} in {requests:,} measured requests", errors == 0)
    )
    for (keys, scenario, server), counts in sorted(query_counts.items()):
        if server != "service":
            continue
        expected = PINNED_QUERIES[scenario]
        measured = ", ".join(
            f"{count} x {sampled}" for count, sampled in sorted(counts.items())
        )
        checks.append(
            (
                f"queries per request = {expected} as pinned, {keys:,} keys, "
                f"{SCENARIO_TITLES[scenario]}",
                f"{measured} (queries x requests)",
                set(counts) == {str(expected)},
            )
        )
    return checks


def _table(header: list[str], lines: list[list[str]]) -> str:
    rows = [header, ["---"] * len(header), *lines]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def markdown(rows, ratios, growth, query_counts, checks) -> str:
    """Render the results as the Markdown tables of docs/benchmarks.md."""
    results_table = _table(
        [
            "keys",
            "scenario",
            "server",
            "req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "errors",
            "SQL/req (sampled)",
            "commits/req (server)",
            "rows written/req",
            "key writes/req",
            "sessions/req",
            "gunicorn CPU ms/req",
            "PostgreSQL CPU ms/req",
            "max worker RSS MiB",
            "worker restarts",
            "other load, cores",
        ],
        [
            [
                f"{row['keys']:,}",
                row["scenario"],
                row["server"],
                f"{row['requests_per_second']:.0f}",
                f"{row['p50_ms']:.1f}",
                f"{row['p95_ms']:.1f}",
                f"{row['p99_ms']:.1f}",
                str(row["errors"]),
                "/".join(
                    sorted(
                        query_counts.get(
                            (row["keys"], row["scenario"], row["server"]), {}
                        )
                    )
                )
                or "-",
                f"{row['per_request']['commits']:.2f}",
                f"{row['per_request']['rows_written']:.2f}",
                f"{row['per_request']['key_rows_updated']:.3f}",
                f"{row['per_request']['sessions']:.3f}",
                f"{row['gunicorn_cpu_ms']:.2f}",
                _postgres_cpu(row),
                f"{row['worker_rss_mib']:.1f}",
                str(row["worker_restarts"]),
                f"{row['other_cores']:.2f}",
            ]
            for row in rows
        ],
    )
    ratio_table = _table(
        ["keys", "scenario", "service/baseline req/s", "service/baseline p99"],
        [
            [
                f"{keys:,}",
                scenario,
                f"{ratio:.2f}",
                f"{_p99_ratio(rows, keys, scenario):.2f}",
            ]
            for (keys, scenario), ratio in sorted(ratios.items())
        ],
    )
    sections = [results_table, ratio_table]
    if growth:
        sizes = sorted({row["keys"] for row in rows})
        sections.append(
            _table(
                ["scenario", "server", f"p99 {sizes[-1]:,} / p99 {sizes[0]:,} keys"],
                [
                    [scenario, server, f"{value:.2f}"]
                    for (scenario, server), value in sorted(growth.items())
                ],
            )
        )
    sections.append(
        _table(
            ["target", "measured", "met"],
            [[name, value, "yes" if met else "NO"] for name, value, met in checks],
        )
    )
    return "\n\n".join(sections)


def _postgres_cpu(row) -> str:
    # A backend that lives for one request exits between two polls of
    # cpu.BackendCPU, so its time is not seen.
    if row["per_request"]["sessions"] > 0.1:
        return "n/a"
    return f"{row['postgres_cpu_ms']:.2f}"


def _p99_ratio(rows, keys, scenario) -> float:
    values = {
        row["server"]: row["p99_ms"]
        for row in rows
        if row["keys"] == keys and row["scenario"] == scenario
    }
    return values["service"] / values["baseline"]
