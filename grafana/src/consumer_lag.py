"""MAMOCHI · Consumer lag: records each consumer group still has to process,
how fast that backlog moves, and why (produced versus consumed, handling
time, rebalances). Filtered by the `$group` and `$topic` variables."""

from house import Row, dashboard, query_variable, stat_panel, timeseries_panel
from promql import LAG, partition_lag, quantile, sum_increase, sum_rate

SELECTED = 'group=~"$group", topic=~"$topic"'
GROUPS = 'group=~"$group"'
TOPICS = 'topic=~"$topic"'
REBALANCES = "mamochi_kafka_rebalances_total"
# Lag's slope over 2 minutes, per minute: above zero, consumers fall behind.
GROWTH = f"deriv({LAG}{{{SELECTED}}}[2m])"


def build():
    return dashboard(
        "mamochi-consumer-lag",
        "MAMOCHI · Consumer lag",
        "Records each consumer group still has to process (behind the partition's high watermark), "
        "from librdkafka's statistics every 2 s.",
        ["kafka", "lag"],
        [
            Row(
                "Backlog",
                [
                    stat_panel(
                        "Total lag",
                        "Records behind, summed over the selected groups and partitions.",
                        "short",
                        [(f"sum({partition_lag(SELECTED)})", "records")],
                        steps=((None, "green"), (100, "yellow"), (1000, "red")),
                    ),
                    stat_panel(
                        "Largest partition lag",
                        "The partition furthest behind among the selected ones.",
                        "short",
                        [(f"max({partition_lag(SELECTED)})", "records")],
                        steps=((None, "green"), (100, "yellow"), (1000, "red")),
                    ),
                    stat_panel(
                        "Lag change per minute",
                        "How fast the selected backlog grows (positive) or drains (negative), over 2 minutes.",
                        "short",
                        [(f"sum({GROWTH}) * 60", "records/min")],
                        steps=((None, "green"), (1, "yellow"), (100, "red")),
                    ),
                    stat_panel(
                        "Rebalances (last hour)",
                        "Partition assignments and revocations of the selected groups in the last hour.",
                        "short",
                        [(sum_increase(REBALANCES, GROUPS, window="1h"), "rebalances")],
                        steps=((None, "green"), (10, "yellow")),
                        decimals=0,
                    ),
                    timeseries_panel(
                        "Lag by consumer group",
                        "Records behind per group, summed over its partitions.",
                        "short",
                        [(f"sum by (group) ({partition_lag(SELECTED)})", "{{group}}")],
                        dashed_steps=((None, "green"), (1000, "red")),
                    ),
                    timeseries_panel(
                        "Lag by group, topic and partition",
                        "Records behind per partition. On mamochi.registrations, partition 0 is the paid lane.",
                        "short",
                        [(partition_lag(SELECTED), "{{group}} {{topic}}[{{partition}}]")],
                    ),
                ],
            ),
            Row(
                "Why it moves",
                [
                    timeseries_panel(
                        "Lag growth by group (records/min)",
                        "Derivative of each group's lag over 2 minutes: above zero, consumers are slower than producers.",
                        "short",
                        [(f"sum by (group) ({GROWTH}) * 60", "{{group}}")],
                        from_zero=False,
                    ),
                    timeseries_panel(
                        "Produced versus consumed per topic",
                        "Records written to a topic against records taken from it, per consuming service.",
                        "suffix: rec/s",
                        [
                            (sum_rate("mamochi_kafka_records_produced_total", TOPICS, by=("topic",)), "{{topic}} produced"),
                            (
                                sum_rate("mamochi_kafka_records_consumed_total", TOPICS, by=("topic", "job")),
                                "{{topic}} consumed by {{job}}",
                            ),
                        ],
                    ),
                    timeseries_panel(
                        "Handling time p95 by topic",
                        "95th percentile from a record reaching the consumer loop to its effect committed "
                        "(database included): the cost of each record.",
                        "s",
                        [(quantile(0.95, "mamochi_kafka_handle_seconds", ("topic",), TOPICS), "{{topic}}")],
                    ),
                    timeseries_panel(
                        "Rebalances by group and kind",
                        "Assignments and revocations per interval; a steady stream means members keep joining and leaving.",
                        "short",
                        [(sum_increase(REBALANCES, GROUPS, by=("group", "kind")), "{{group}} {{kind}}")],
                        bars=True,
                        decimals=0,
                    ),
                ],
            ),
        ],
        variables=[
            query_variable("group", "Consumer group", f"label_values({LAG}, group)"),
            query_variable("topic", "Topic", f'label_values({LAG}{{group=~"$group"}}, topic)'),
        ],
    )
