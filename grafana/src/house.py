"""The house style of every MAMOCHI dashboard, built with Grafana's Foundation
SDK: the Prometheus data source by uid, how a stat and a time series look,
rows, panel ids, and the dashboard frame (time range, refresh, the link menu
to the other MAMOCHI dashboards, Grafana's built-in annotations).

Guarantees: every query names the provisioned data source
(`mamochi-prometheus`, grafana/provisioning/datasources/prometheus.yml);
every panel has a title, a description, a unit and distinct refIds; panel
ids are 1, 2, 3… in reading order; the layout is the SDK's left-to-right,
top-to-bottom flow, so the output depends on the source alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.prometheus import QueryEditorMode

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="mamochi-prometheus")
GRAFANA_ANNOTATIONS = models.DataSourceRef(type_val="grafana", uid="-- Grafana --")

# (value, colour): the first step's value is None, Grafana's "from -infinity".
Steps = Sequence[tuple[Union[float, None], str]]
GREEN: Steps = ((None, "green"),)

# A query: (PromQL, legend).
Query = tuple[str, str]


def _targets(queries: Sequence[Query]) -> list[prometheus.Dataquery]:
    return [
        prometheus.Dataquery()
        .ref_id(chr(ord("A") + index))
        .datasource(DATASOURCE)
        .editor_mode(QueryEditorMode.CODE)
        .expr(expr)
        .legend_format(legend)
        .range()
        for index, (expr, legend) in enumerate(queries)
    ]


def _thresholds(steps: Steps) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=colour) for value, colour in steps])
    )


def stat_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 6,
    height: int = 4,
    steps: Steps = GREEN,
    decimals: int | None = None,
    sparkline: bool = True,
) -> stat.Panel:
    """A single figure (last value) with an optional sparkline; coloured by `steps`."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .span(width)
        .height(height)
        .unit(unit)
        .color_scheme(dashboard_builders.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .thresholds(_thresholds(steps))
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA if sparkline else common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.AUTO)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
        .wide_layout(True)
        .show_percent_change(False)
    )
    if decimals is not None:
        panel.decimals(decimals)
    return panel


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 12,
    height: int = 8,
    bars: bool = False,
    decimals: int | None = None,
    from_zero: bool = True,
    dashed_steps: Steps | None = None,
    legend_calcs: Sequence[str] = ("mean", "max", "lastNotNull"),
) -> timeseries.Panel:
    """Lines (or bars, for counts per interval) with a table legend.
    `from_zero` keeps zero on the axis (off for values that go negative);
    `dashed_steps` draws thresholds as dashed lines."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .span(width)
        .height(height)
        .unit(unit)
        .color_scheme(dashboard_builders.FieldColor().mode(models.FieldColorModeId.PALETTE_CLASSIC))
        .draw_style(common.GraphDrawStyle.BARS if bars else common.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(80 if bars else 10)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .axis_placement(common.AxisPlacement.AUTO)
        .stacking(common_builders.StackingConfig().mode(common.StackingMode.NONE).group("A"))
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(list(legend_calcs))
        )
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING))
    )
    if from_zero:
        panel.axis_soft_min(0)
    if decimals is not None:
        panel.decimals(decimals)
    if dashed_steps is not None:
        panel.thresholds(_thresholds(dashed_steps))
        panel.thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return panel


@dataclass
class Row:
    """A row header and the panels under it (shown expanded)."""

    title: str
    panels: list = field(default_factory=list)


def dashboard(
    uid: str,
    title: str,
    description: str,
    tags: Sequence[str],
    rows: Sequence[Row],
    variables: Sequence[dashboard_builders.QueryVariable] = (),
) -> models.Dashboard:
    """A MAMOCHI dashboard: the last 30 minutes, refreshed every 10 s, shared
    crosshair, a menu of every dashboard tagged `mamochi`. No version and no
    timestamps: Grafana numbers provisioned dashboards itself."""
    builder = (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["mamochi", *tags])
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .timezone("browser")
        .refresh("10s")
        .time("now-30m", "now")
        .timepicker(dashboard_builders.TimePicker().refresh_intervals(["5s", "10s", "30s", "1m", "5m"]))
        .live_now(False)
        .annotation(
            dashboard_builders.AnnotationQuery()
            .name("Annotations & Alerts")
            .datasource(GRAFANA_ANNOTATIONS)
            .built_in(1)
            .enable(True)
            .hide(True)
            .icon_color("rgba(0, 211, 255, 1)")
            .type("dashboard")
        )
        .link(
            dashboard_builders.DashboardLink("MAMOCHI dashboards")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags(["mamochi"])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
            .icon("external link")
            .target_blank(False)
            .tooltip("")
            .url("")
        )
    )
    # An empty list, not an absent one, when there are no variables.
    builder.variables(list(variables))
    panel_id = 0
    for row in rows:
        panel_id += 1
        builder.with_row(dashboard_builders.Row(row.title).id(panel_id))
        for panel in row.panels:
            panel_id += 1
            builder.with_panel(panel.id(panel_id))
    return builder.build()


def query_variable(name: str, label: str, query: str) -> dashboard_builders.QueryVariable:
    """A multi-value variable over label values, "All" by default (`.*`),
    refreshed when the time range changes."""
    return (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query({"query": query, "refId": f"{name}-variable"})
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .multi(True)
        .all_value(".*")
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .hide(models.VariableHide.DONT_HIDE)
        .regex("")
        .options([])
        .current(models.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )
