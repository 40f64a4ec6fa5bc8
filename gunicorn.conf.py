"""gunicorn settings for production: ``gunicorn -c gunicorn.conf.py recoup.wsgi``.

Each value can be overridden from the environment, or on the command line.
"""

import gc
import multiprocessing
import os

# The address to listen on; behind a load balancer usually 0.0.0.0:8000.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Sync workers: each handles one request at a time and keeps one persistent
# database connection (CONN_MAX_AGE), so a PostgreSQL server needs at least
# workers x instances connections. Gunicorn's rule of thumb is 2 x cores + 1.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"

# A request that takes longer than this is killed and its worker restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5

# Restart each worker after this many requests, against slow memory growth.
max_requests = 2000
max_requests_jitter = 200

# Load the application once in the master and fork each worker from it. A
# worker then starts in milliseconds instead of loading Django itself, so a
# restart after max_requests does not stall the requests queued behind it.
# The master opens no database or cache connection, because Django connects on
# a worker's first request. A new release needs a full restart, not HUP.
preload_app = True


def when_ready(server):
    """Freeze the loaded application's objects before the first fork.

    The workers' garbage collector then skips them, so a full collection does
    not walk the whole application (measured in a forked worker: 37 ms
    unfrozen against under 1 ms, docs/benchmarks.md) and does not write to the
    pages that the workers share with the master.
    """
    gc.freeze()


# The service's own log lines carry request ids; gunicorn's access log adds
# the client, the status and the time taken, in microseconds.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(D)sus request_id=%({x-request-id}o)s'
errorlog = "-"

if os.environ.get("LOG_FORMAT", "text") == "json":
    # gunicorn's own lines and its access log in the service's JSON format,
    # so that every line of the output is one object. The access line stays a
    # string, in the "message" field.
    from recoup.logs import json_formatter

    _json = json_formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    if accesslog == "-":
        _access = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    else:
        _access = {"class": "logging.FileHandler", "filename": accesslog}
    logconfig_dict = {
        "formatters": {"json": _json},
        "handlers": {
            "console": {**_access, "formatter": "json"},
            "error_console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "json",
            },
        },
        "loggers": {
            "gunicorn.error": {"handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "propagate": False},
        },
    }

# Addresses of the proxies allowed to set X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# gunicorn 27 opens a control socket at one fixed path per user, so a second
# server on the same host would take it over. The service does not use it.
control_socket_disable = True
