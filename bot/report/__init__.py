"""The post-class report (``classpulse report``, ``GET /api/meetings/{id}/report``): storage
queries in, one printable self-contained HTML page out."""

from __future__ import annotations

from bot.report.data import ReportData, choose_bucket, load_report
from bot.report.page import REPORT_CSP, render_report

__all__ = ["REPORT_CSP", "ReportData", "choose_bucket", "load_report", "render_report"]
