"""A first, simple report for marketing teams: plain words first, the figure, then the detail."""
from __future__ import annotations

import base64
import io

from .optimize import Front


def front_figure(front: Front, summary: dict) -> bytes:
    """PNG of the Pareto front with the recommended and revenue-only mixtures marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec, only = summary["recommended"], summary["revenue_only"]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    ax.plot(front.rmse, front.revenue, "-o", ms=3, color="#4c72b0", label="best trade-offs (Pareto front)")
    ax.plot([rec["ope_rmse"]], [rec["revenue"]], "*", ms=16, color="#dd8452", label="recommended mix")
    ax.plot([only["ope_rmse"]], [only["revenue"]], "s", ms=8, color="#55a868", label="revenue-only mix")
    ax.set_xlabel(f"evaluation error later (RMSE, {summary['aggregate']} over future policies, "
                  f"log of {summary['n']:,} customers)")
    ax.set_ylabel("revenue now (per customer)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def headline(summary: dict) -> str:
    rec, only, cost = summary["recommended"], summary["revenue_only"], summary["revenue_cost"]
    mix = ", ".join(f"{w:.0%} {name}" for name, w in rec["alpha"].items())
    pct = cost["pct"]
    return (f"Log with {mix}: revenue is {rec['revenue']:.4f} per customer, "
            f"{cost['per_customer'] * 10_000:,.0f} less per 10,000 customers"
            + (f" ({pct:.1f}%)" if pct is not None else "")
            + f" than the revenue-only mix, and in exchange a log of {summary['n']:,} customers evaluates "
              f"every future policy with RMSE at most {rec['ope_rmse']:.4f} "
              f"(revenue-only: {only['ope_rmse']:.4f}).")


def render_html(summary: dict, front: Front, figure_png: bytes) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("couponmix", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]))
    tmpl = env.get_template("report.html")
    return tmpl.render(s=summary, headline=headline(summary),
                       figure=base64.b64encode(figure_png).decode(),
                       front_rows=front.to_frame().round(6).to_dict("records"))
