"""Scrapes Sluice's admin console once with PyPI's prometheus-pgbouncer-exporter, as it scrapes PgBouncer.

    python pgbouncer_exporter_check.py DSN

Prints each metric the exporter produced as one JSON object per line; exits 1 when the exporter's own
pgbouncer_up says the scrape failed.
"""

import json
import logging
import sys

from prometheus_pgbouncer_exporter.collector import PgbouncerMetricsCollector
from prometheus_pgbouncer_exporter.config import PgbouncerConfig

logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
metrics = PgbouncerMetricsCollector(PgbouncerConfig({"dsn": sys.argv[1], "connect_timeout": 5})).collect()
up = 0
for metric in metrics:
    print(json.dumps({"name": metric["name"], "labels": metric["labels"], "value": float(metric["value"])}))
    if metric["name"] == "pgbouncer_up":
        up = metric["value"]
sys.exit(0 if up == 1 else 1)
