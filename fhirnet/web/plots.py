"""Drawing a study's waterfall, spider and swimmer plots (``docs/trials.md`` "Plots") as SVG or
PNG with matplotlib, and their data as JSON. The only module of ``fhirnet`` that imports
matplotlib: the data comes from :mod:`fhirnet.trials.plot_data`, already derived.

Rendering uses the Agg canvas on a :class:`~matplotlib.figure.Figure` of its own (no pyplot, no
global figure), under a lock because matplotlib's ``rcParams`` are process-wide. The SVG is
byte-stable for the same data (golden files): a fixed ``svg.hashsalt``, text kept as text
(``svg.fonttype`` ``none``), no date in the metadata.
"""

from __future__ import annotations

import io
import textwrap
import threading
from decimal import Decimal
from typing import Any, Final

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from fhirnet.criteria.models import Response
from fhirnet.trials.plot_data import (
    CAP_PCT,
    PD_LINE_PCT,
    PR_LINE_PCT,
    Event,
    PlotData,
    PlotKind,
    SpiderLine,
    SwimmerLane,
    WaterfallBar,
)

#: The formats a plot is served in, with their media types.
MEDIA_TYPES: Final = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "json": "application/json",
}
#: Colour per best overall response (the criteria's equivalents share one).
_COLOURS: Final[dict[Response, str]] = {
    Response.CR: "#1a9850",
    Response.ICR: "#1a9850",
    Response.CMR: "#1a9850",
    Response.PR: "#91cf60",
    Response.IPR: "#91cf60",
    Response.PMR: "#91cf60",
    Response.SD: "#fdd663",
    Response.ISD: "#fdd663",
    Response.SMD: "#fdd663",
    Response.NON_CR_NON_PD: "#9ecae1",
    Response.NON_ICR_NON_IUPD: "#9ecae1",
    Response.PD: "#d73027",
    Response.IUPD: "#fc8d59",
    Response.ICPD: "#d73027",
    Response.PMD: "#d73027",
    Response.NE: "#bdbdbd",
}
_LOCK = threading.Lock()
_CAPTION_WIDTH: Final = 120


def render(data: PlotData, fmt: str) -> bytes:
    """The plot as ``svg`` or ``png`` bytes (deterministic for the same data and matplotlib)."""
    with (
        _LOCK,
        mpl.rc_context(
            {
                "svg.hashsalt": "fhirnet",
                "svg.fonttype": "none",
                "font.family": "DejaVu Sans",
                "font.size": 9,
                "axes.spines.top": False,
                "axes.spines.right": False,
            }
        ),
    ):
        figure = Figure(figsize=(9, 5.5), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_axes((0.08, 0.3, 0.66, 0.6))
        {
            PlotKind.WATERFALL: _waterfall,
            PlotKind.SPIDER: _spider,
            PlotKind.SWIMMER: _swimmer,
        }[data.kind](axes, data)
        arm = f", arm {data.arm}" if data.arm else ""
        axes.set_title(
            f"{data.kind.value.capitalize()} plot: {data.study_id}{arm}, {data.evaluator}",
            loc="left",
        )
        figure.text(
            0.02, 0.02, textwrap.fill(data.caption, _CAPTION_WIDTH), fontsize=7, va="bottom"
        )
        buffer = io.BytesIO()
        if fmt == "svg":
            figure.savefig(buffer, format="svg", metadata={"Date": None})
        else:
            figure.savefig(buffer, format="png", metadata={"Software": None})
        return buffer.getvalue()


def _colour(response: Response) -> str:
    return _COLOURS.get(response, "#bdbdbd")


def _legend(axes: Any, responses: list[Response], extra: list[Any]) -> None:
    seen = list(dict.fromkeys(responses))
    handles = [Patch(facecolor=_colour(r), edgecolor="#444444", label=str(r)) for r in seen]
    axes.legend(
        handles=[*handles, *extra],
        title="Best overall response",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )


def _guides(axes: Any) -> None:
    for level in (PD_LINE_PCT, PR_LINE_PCT):
        axes.axhline(float(level), linestyle="--", color="#555555", linewidth=0.8)
    axes.axhline(0, color="#000000", linewidth=0.6)
    axes.set_ylabel("Change of the sum of diameters from baseline (%)")


def _waterfall(axes: Any, data: PlotData) -> None:
    bars = data.bars
    shown = [max(min(float(b.change_pct), float(CAP_PCT)), -100.0) for b in bars]
    positions = list(range(len(bars)))
    axes.bar(
        positions,
        shown,
        color=[_colour(b.best_response) for b in bars],
        edgecolor="#444444",
        linewidth=0.5,
    )
    for x, height, bar in zip(positions, shown, bars, strict=True):
        if bar.progression_by:
            axes.plot(x, max(height, 0.0) + 5, marker="*", color="#000000", markersize=8)
        if bar.capped:
            axes.plot(x, height + 3, marker="^", color="#000000", markersize=6)
    axes.set_xticks(positions, [b.subject for b in bars], rotation=90)
    axes.set_xlabel("Subject")
    axes.set_ylim(-100, 110)
    _guides(axes)
    extra = [
        Line2D([], [], marker="*", color="#000000", linestyle="", label="PD: new / non-target"),
        Line2D([], [], marker="^", color="#000000", linestyle="", label=f"> +{CAP_PCT} %"),
    ]
    _legend(axes, [b.best_response for b in bars], extra)


def _spider(axes: Any, data: PlotData) -> None:
    for line in data.lines:
        weeks = [float(p.study_week) for p in line.points]
        changes = [float(p.change_pct) for p in line.points]
        colour = _colour(line.best_response)
        axes.plot(weeks, changes, color=colour, marker="o", markersize=3, linewidth=1.2)
        for point in line.points:
            if point.new_lesion:  # above the point, so a progression marker cannot hide it
                axes.plot(
                    float(point.study_week),
                    float(point.change_pct) + 4,
                    marker="^",
                    color="#000000",
                    markersize=6,
                    linestyle="",
                )
            if point.progression:
                axes.plot(
                    float(point.study_week),
                    float(point.change_pct),
                    marker="X",
                    color="#d73027",
                    markersize=7,
                    linestyle="",
                )
        axes.annotate(
            line.subject,
            (weeks[-1], changes[-1]),
            xytext=(4, 0),
            textcoords="offset points",
            fontsize=7,
            va="center",
        )
    axes.set_xlabel("Study week (weeks from the reference date)")
    _guides(axes)
    extra = [
        Line2D([], [], marker="^", color="#000000", linestyle="", label="New lesion"),
        Line2D([], [], marker="X", color="#d73027", linestyle="", label="Progression"),
    ]
    _legend(axes, [line.best_response for line in data.lines], extra)


def _swimmer(axes: Any, data: PlotData) -> None:
    lanes = data.lanes
    rows = list(range(len(lanes)))[::-1]  # the longest on top
    axes.barh(
        rows,
        [float(lane.study_week) for lane in lanes],
        color=[_colour(lane.best_response) for lane in lanes],
        edgecolor="#444444",
        linewidth=0.5,
        height=0.6,
    )
    for y, lane in zip(rows, lanes, strict=True):
        _event(axes, lane.response, y, "o", "#1a9850")
        _event(axes, lane.progression, y, "X", "#d73027")
        _event(axes, lane.withdrawal, y, "s", "#000000")
        if lane.ongoing:
            end = float(lane.study_week)
            axes.annotate(
                "",
                xy=(end + 2.0, y),
                xytext=(end, y),
                arrowprops={"arrowstyle": "->", "color": "#000000"},
            )
    longest = max((float(lane.study_week) for lane in lanes), default=0.0)
    axes.set_xlim(0, longest + 4.0)  # room for the ongoing arrows
    axes.set_yticks(rows, [lane.subject for lane in lanes])
    axes.set_xlabel("Weeks on study (from the reference date)")
    axes.set_ylabel("Subject")
    extra = [
        Line2D([], [], marker="o", color="#1a9850", linestyle="", label="First CR/PR"),
        Line2D([], [], marker="X", color="#d73027", linestyle="", label="Progression"),
        Line2D([], [], marker="s", color="#000000", linestyle="", label="Withdrawal"),
        Line2D([], [], marker=r"$\rightarrow$", color="#000000", linestyle="", label="Ongoing"),
    ]
    _legend(axes, [lane.best_response for lane in lanes], extra)


def _event(axes: Any, event: Event | None, y: int, marker: str, colour: str) -> None:
    if event is not None:
        axes.plot(
            float(event.study_week), y, marker=marker, color=colour, markersize=7, linestyle=""
        )


# -- JSON -------------------------------------------------------------------------------------


def plot_json(data: PlotData) -> dict[str, Any]:
    """The data behind the plot (numbers as JSON numbers, dates ISO 8601)."""
    body: dict[str, Any] = {
        "kind": data.kind.value,
        "studyId": data.study_id,
        "criteria": data.criteria,
        "evaluator": data.evaluator,
        "arm": data.arm,
        "confirmation": data.confirmation,
        "caption": data.caption,
        "notEvaluable": list(data.not_evaluable),
        "notRead": list(data.not_read),
    }
    if data.kind is PlotKind.WATERFALL:
        body["bars"] = [_bar(b) for b in data.bars]
    elif data.kind is PlotKind.SPIDER:
        body["lines"] = [_line(line) for line in data.lines]
    else:
        body["lanes"] = [_lane(lane) for lane in data.lanes]
    return body


def _number(value: Decimal) -> float:
    return float(value)


def _bar(bar: WaterfallBar) -> dict[str, Any]:
    return {
        "subjectId": bar.subject,
        "arm": bar.arm,
        "changePct": _number(bar.change_pct),
        "date": bar.date.isoformat(),
        "studyWeek": _number(bar.study_week),
        "bestOverallResponse": str(bar.best_response),
        "progressionBy": list(bar.progression_by),
        "capped": bar.capped,
    }


def _line(line: SpiderLine) -> dict[str, Any]:
    return {
        "subjectId": line.subject,
        "arm": line.arm,
        "bestOverallResponse": str(line.best_response),
        "endedByProgression": line.ended_by_progression,
        "points": [
            {
                "studyWeek": _number(p.study_week),
                "date": p.date.isoformat() if p.date else None,
                "changePct": _number(p.change_pct),
                "newLesion": p.new_lesion,
                "progression": p.progression,
            }
            for p in line.points
        ],
    }


def _event_json(event: Event | None) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "date": event.date.isoformat(),
        "studyWeek": _number(event.study_week),
        "label": event.label,
    }


def _lane(lane: SwimmerLane) -> dict[str, Any]:
    return {
        "subjectId": lane.subject,
        "arm": lane.arm,
        "bestOverallResponse": str(lane.best_response),
        "endDate": lane.end_date.isoformat(),
        "studyWeek": _number(lane.study_week),
        "ongoing": lane.ongoing,
        "response": _event_json(lane.response),
        "progression": _event_json(lane.progression),
        "withdrawal": _event_json(lane.withdrawal),
    }
