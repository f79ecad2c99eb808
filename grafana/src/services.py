"""MAMOCHI · Services: one row per service (gateway, approval, distributor,
accounting, notifier, registry) with the same four questions — throughput,
consumer lag, errors, latency — asked by one function, `service_row`, so the
rule for what a service's row shows lives once.

A service is selected by Prometheus's `job` label (the job names of
deploy/prometheus/prometheus.yml), which covers every instance of it. What
differs between services is data: whether it serves HTTP (and under which
metric prefix), whether it consumes or produces Kafka records, its own
end-to-end histogram and its own failure counters. A service that consumes
nothing has no lag panel and its other panels widen to fill the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from house import Row, dashboard, timeseries_panel
from promql import group_lag, per_minute, quantile, sum_rate


@dataclass(frozen=True)
class Service:
    job: str
    title: str
    # Prefix of `<prefix>_requests_total` and `<prefix>_request_duration_seconds`.
    http: str | None = None
    consumes: bool = False
    produces: bool = False
    # (histogram family, legend) of the service's flow from event to effect.
    end_to_end: tuple[str, str] | None = None
    # (counter, legend) of failures only this service has.
    failures: tuple[tuple[str, str], ...] = ()


SERVICES = (
    Service("gateway", "Gateway (public API)", http="mamochi_gateway_http", produces=True),
    Service(
        "approval",
        "Approval",
        consumes=True,
        produces=True,
        end_to_end=("mamochi_approval_wait_seconds", "form → decision"),
    ),
    Service(
        "distributor",
        "Distributor",
        consumes=True,
        produces=True,
        end_to_end=("mamochi_distributor_end_to_end_seconds", "sale → stock"),
    ),
    Service(
        "accounting",
        "Accounting",
        consumes=True,
        produces=True,
        end_to_end=("mamochi_accounting_end_to_end_seconds", "sale → counted"),
    ),
    Service(
        "notifier",
        "Notifier (email)",
        consumes=True,
        produces=True,
        end_to_end=("mamochi_notifier_end_to_end_seconds", "request → SMTP"),
        failures=(("mamochi_notifier_send_failures_total", "SMTP failures {{category}}"),),
    ),
    Service("registry", "Schema registry", http="mamochi_registry_http"),
)


def service_row(service: Service) -> Row:
    """Throughput, consumer lag (if it consumes), errors and p95 latency of
    every instance of `service` together."""
    job = f'job="{service.job}"'
    throughput, errors, latency = [], [], []
    if service.http:
        requests = f"{service.http}_requests_total"
        throughput.append((sum_rate(requests, job, by=("route",)), "HTTP {{route}}"))
        errors.append(
            (per_minute(sum_rate(requests, f'{job}, status=~"4..|5.."', by=("status",))), "HTTP {{status}}")
        )
        latency.append((quantile(0.95, f"{service.http}_request_duration_seconds", matchers=job), "HTTP p95"))
    if service.consumes:
        throughput.append(
            (sum_rate("mamochi_kafka_records_consumed_total", job, by=("topic",)), "consumed {{topic}}")
        )
        errors.append(
            (
                per_minute(sum_rate("mamochi_kafka_dead_letters_total", job, by=("topic", "reason"))),
                "dead letters {{topic}} {{reason}}",
            )
        )
        latency.append(
            (quantile(0.95, "mamochi_kafka_handle_seconds", ("topic",), job), "handling {{topic}} p95")
        )
    if service.produces:
        throughput.append(
            (sum_rate("mamochi_kafka_records_produced_total", job, by=("topic",)), "produced {{topic}}")
        )
        latency.append(
            (quantile(0.95, "mamochi_kafka_produce_seconds", ("topic",), job), "produce {{topic}} p95")
        )
    for counter, legend in service.failures:
        errors.append((per_minute(sum_rate(counter, job, by=("category",))), legend))
    if service.end_to_end:
        histogram, legend = service.end_to_end
        latency.append((quantile(0.95, histogram, matchers=job), f"{legend} p95"))

    panels = [
        timeseries_panel(
            f"{service.title}: throughput",
            "Per second, every instance together: "
            + ", ".join(
                part
                for part, present in (
                    ("HTTP requests by route", service.http),
                    ("records consumed by topic", service.consumes),
                    ("records produced by topic", service.produces),
                )
                if present
            )
            + ".",
            "ops",
            throughput,
        )
    ]
    if service.consumes:
        panels.append(
            timeseries_panel(
                f"{service.title}: consumer lag",
                "Records behind per consumer group of this service, summed over partitions "
                "(each partition counted once, whichever instance holds it).",
                "short",
                [(group_lag(job), "{{group}}")],
            )
        )
    panels.append(
        timeseries_panel(
            f"{service.title}: errors per minute",
            "What this service could not do: "
            + ", ".join(
                part
                for part, present in (
                    ("HTTP 4xx and 5xx answers by status", service.http),
                    ("records parked in the dead letters by topic and reason", service.consumes),
                    ("its own failures", service.failures),
                )
                if present
            )
            + ".",
            "cpm",
            errors,
        )
    )
    panels.append(
        timeseries_panel(
            f"{service.title}: latency p95",
            "95th percentiles over every instance: "
            + ", ".join(
                part
                for part, present in (
                    ("HTTP answer time", service.http),
                    ("record handling by topic", service.consumes),
                    ("Kafka produce (acks=all) by topic", service.produces),
                    ("its flow from event to effect", service.end_to_end),
                )
                if present
            )
            + ".",
            "s",
            latency,
        )
    )
    width = 24 // len(panels)
    for panel in panels:
        panel.span(width)
    return Row(f"{service.title} — job {service.job}", panels)


def build():
    return dashboard(
        "mamochi-services",
        "MAMOCHI · Services",
        "One row per service, every instance together: throughput, consumer lag, errors and p95 latency. "
        "A service is its Prometheus job.",
        ["services"],
        [service_row(service) for service in SERVICES],
    )
