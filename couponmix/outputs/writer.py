"""The files one study writes, in the order they are renamed into place (summary.json last: its presence
marks a complete study)."""

from __future__ import annotations

from couponmix.outputs.report import FIGURES, OPTIONAL_FIGURES, figures, render_html
from couponmix.studies.study import StudyResult
from couponmix.studies.summary import to_json

__all__ = ["STUDY_FILES", "study_files_for"]

#: the names study_files_for returns
STUDY_FILES = ("pareto.csv", *FIGURES, *OPTIONAL_FIGURES, "report.html", "summary.json")


def study_files_for(result: StudyResult) -> dict[str, bytes | str]:
    """The files of one study by name (``STUDY_FILES``): pareto.csv, the figures, report.html and summary.json.

    Parameters
    ----------
    result : StudyResult

    Returns
    -------
    dict of str to bytes or str
        Each file's content (PNG figures as bytes, the others as text), in the order they are renamed into place.
    """
    pngs = figures(result.summary, result.front)
    return {
        "pareto.csv": result.front.to_frame().to_csv(index=False, float_format="%.10g"),
        **pngs,
        "report.html": render_html(result.summary, result.front, pngs),
        "summary.json": to_json(result.summary),
    }
