"""The weekly report: KPIs against the week before, charts, top movers, anomalies,
experiment read-outs and rule-based optimisation suggestions, as HTML, PDF and JSON."""

from siyu.analytics.report.models import Suggestion, WeeklyReport

__all__ = ["Suggestion", "WeeklyReport"]
