"""The one place couponmix renders HTML: every page (a study's report, a batch's index, an estimate) comes
from a template in ``couponmix/outputs/templates`` through one Jinja environment, which escapes every value
(autoescape) and refuses an undefined name (``StrictUndefined``).
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["in_words", "render"]


def in_words(text: str, word: str) -> str:
    """An estimator's plain words for this study's reward: 'the logged revenue' becomes 'the logged clicks'
    in a click study ('revenue model' stays the model's name, said once in the methods).

    Parameters
    ----------
    text : str
        An estimator's plain words, written for revenue.
    word : str
        The study's reward ("revenue", "clicks", ...).

    Returns
    -------
    str
    """
    if word == "revenue":
        return text
    text = text.replace("logged revenue", f"logged {word}").replace("revenue model's", "model's")
    return text.replace("revenue model", f"model of {word}")


@functools.lru_cache(maxsize=1)
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("couponmix.outputs", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["pct"] = lambda v, digits=1: f"{100 * v:.{digits}f}%"
    env.filters["num"] = lambda v, digits=4: f"{v:.{digits}f}"
    env.filters["thousands"] = lambda v: f"{v:,.0f}"
    env.filters["in_words"] = in_words
    return env


def render(template: str, **context: Any) -> str:
    """The page ``template`` (a file of ``couponmix/outputs/templates``) rendered with ``context``.

    Parameters
    ----------
    template : str
        The template's file name.
    **context
        The names the template reads.

    Returns
    -------
    str
        The HTML page.
    """
    return _environment().get_template(template).render(**context)
