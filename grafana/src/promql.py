"""PromQL fragments the dashboards share, so a rule (rate window, how lag is
deduplicated, how a quantile is taken from a histogram) is written once.

Every function returns the query text exactly as Grafana sends it to
Prometheus; metric names are passed in whole, never assembled from pieces, so
a grep for a metric name finds every query that uses it.
"""

# Grafana's rate window: at least four scrapes of the data source's 5 s
# interval (grafana/provisioning/datasources/prometheus.yml).
RATE_INTERVAL = "$__rate_interval"


def selector(metric: str, matchers: str = "") -> str:
    """`metric{matchers}`, or the bare name without matchers."""
    return f"{metric}{{{matchers}}}" if matchers else metric


def _by(labels: tuple[str, ...]) -> str:
    return f"sum by ({', '.join(labels)}) " if labels else "sum"


def rate(metric: str, matchers: str = "", window: str = RATE_INTERVAL) -> str:
    """Per-second rate of a counter."""
    return f"rate({selector(metric, matchers)}[{window}])"


def sum_rate(metric: str, matchers: str = "", by: tuple[str, ...] = (), window: str = RATE_INTERVAL) -> str:
    """Per-second rate of a counter, summed (by `by`) over every instance."""
    return f"{_by(by)}({rate(metric, matchers, window)})"


def sum_increase(metric: str, matchers: str = "", by: tuple[str, ...] = (), window: str = RATE_INTERVAL) -> str:
    """How much a counter grew over `window`, summed (by `by`)."""
    return f"{_by(by)}(increase({selector(metric, matchers)}[{window}]))"


def per_minute(expr: str) -> str:
    """A per-second expression shown per minute (rare events read better so)."""
    return f"{expr} * 60"


def quantile(q: float, histogram: str, by: tuple[str, ...] = (), matchers: str = "") -> str:
    """The `q` quantile of a histogram family (named without `_bucket`),
    over every instance, kept apart by `by`."""
    labels = ", ".join(("le",) + by)
    return f"histogram_quantile({q}, sum by ({labels}) ({rate(histogram + '_bucket', matchers)}))"


LAG = "mamochi_kafka_consumer_lag"


def partition_lag(matchers: str = "") -> str:
    """Records behind per group, topic and partition. Every member of a group
    reports the partitions it holds, and a partition can be reported twice
    around a rebalance: `max` keeps one value per partition before any sum."""
    return f"max by (group, topic, partition) ({selector(LAG, matchers)})"


def group_lag(matchers: str = "") -> str:
    """Records behind per consumer group, summed over its partitions."""
    return f"sum by (group) ({partition_lag(matchers)})"
