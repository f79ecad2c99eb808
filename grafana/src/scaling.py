"""MAMOCHI · Scaling: how many instances of each service run, how many
members each consumer group has, how the partitions are spread over them,
and the load (lag, records per instance) that says whether to add or remove
instances.

Members and partitions come from `mamochi_kafka_assigned_partitions`, a
gauge each process sets per group after every assignment and revocation (0
for a member left without partitions, when a group has more members than its
topic has partitions).
"""

from house import Row, dashboard, timeseries_panel
from promql import group_lag, sum_increase, sum_rate

ASSIGNED = "mamochi_kafka_assigned_partitions"


def build():
    return dashboard(
        "mamochi-scaling",
        "MAMOCHI · Scaling",
        "Instances per service and per consumer group, partitions per instance, and the load that drives scaling.",
        ["scaling", "kafka"],
        [
            Row(
                "Instances",
                [
                    timeseries_panel(
                        "Instances up per service",
                        "Processes of each service that Prometheus scrapes successfully (its `up` series summed per job).",
                        "short",
                        [("sum by (job) (up)", "{{job}}")],
                        decimals=0,
                    ),
                    timeseries_panel(
                        "Members per consumer group",
                        "Processes holding a membership in each consumer group, partitions or not.",
                        "short",
                        [(f"count by (group) ({ASSIGNED})", "{{group}}")],
                        decimals=0,
                    ),
                ],
            ),
            Row(
                "Partitions",
                [
                    timeseries_panel(
                        "Partitions per instance",
                        "Partitions each process holds in each group; 0 means an idle member "
                        "(more members than partitions).",
                        "short",
                        [(f"sum by (group, instance) ({ASSIGNED})", "{{group}} {{instance}}")],
                        decimals=0,
                    ),
                    timeseries_panel(
                        "Records consumed per instance",
                        "Records each process took from Kafka per second: how evenly the work is spread.",
                        "suffix: rec/s",
                        [
                            (
                                sum_rate("mamochi_kafka_records_consumed_total", by=("job", "instance")),
                                "{{job}} {{instance}}",
                            )
                        ],
                    ),
                ],
            ),
            Row(
                "Load that drives scaling",
                [
                    timeseries_panel(
                        "Lag by consumer group",
                        "Records behind per group, summed over its partitions: what a lag-driven autoscaler reads.",
                        "short",
                        [(group_lag(), "{{group}}")],
                    ),
                    timeseries_panel(
                        "Rebalances by group and kind",
                        "Assignments and revocations per interval: each change of membership shows here.",
                        "short",
                        [(sum_increase("mamochi_kafka_rebalances_total", by=("group", "kind")), "{{group}} {{kind}}")],
                        bars=True,
                        decimals=0,
                    ),
                ],
            ),
        ],
    )
