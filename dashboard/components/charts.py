"""Plotly figures shared by the pages. Each takes plain data and returns a figure."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engine.curve_words import APPROACH_WORDS

PALETTE = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777"]
GREEN, RED = "#16a34a", "#dc2626"


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=-0.35, x=0),
    )
    return fig


CURVE_KINDS = ("roc", "pr", "calibration", "gains")
CURVE_TITLES = {
    "roc": (
        "ROC curve",
        "share of non-converting leads called (false positive rate)",
        "share of converting leads called (true positive rate)",
    ),
    "pr": ("Precision-recall", "share of conversions found (recall)", "share of calls that convert (precision)"),
    "calibration": ("Calibration", "predicted chance of converting", "observed conversion rate"),
    "gains": ("Cumulative gains", "share of leads called (best scores first)", "share of conversions found"),
}


def _curve_traces(curves: dict[str, dict], kind: str) -> tuple[list[dict], float | None]:
    """Scatter traces (plain dicts) of one curve kind for every run, and the base rate line of the PR curve."""
    traces = []
    for i, (label, c) in enumerate(curves.items()):
        line = {"type": "scatter", "name": label, "mode": "lines", "line": {"color": PALETTE[i % len(PALETTE)]}}
        if kind == "roc" and c.get("roc", {}).get("fpr"):
            traces.append({**line, "x": c["roc"]["fpr"], "y": c["roc"]["tpr"]})
        elif kind == "pr" and c.get("pr", {}).get("recall"):
            traces.append({**line, "x": c["pr"]["recall"], "y": c["pr"]["precision"]})
        elif kind == "calibration" and c.get("calibration", {}).get("mean_predicted"):
            cal = c["calibration"]
            traces.append(
                {
                    **line,
                    "mode": "lines+markers",
                    "x": cal["mean_predicted"],
                    "y": cal["observed_rate"],
                    "text": [f"{n} leads" for n in cal["count"]],
                }
            )
        elif kind == "gains" and c.get("gains", {}).get("fraction"):
            g = c["gains"]
            traces.append({**line, "x": [0] + g["fraction"], "y": [0] + g["captured"]})
    if kind in ("roc", "calibration", "gains"):
        traces.append(
            {
                "type": "scatter",
                "x": [0, 1],
                "y": [0, 1],
                "mode": "lines",
                "name": "chance" if kind != "calibration" else "perfect",
                "line": {"dash": "dot", "color": "#9ca3af"},
            }
        )
    base = next(iter(curves.values())).get("pr", {}).get("base_rate") if kind == "pr" and curves else None
    return traces, base


def curve_grid(curves: dict[str, dict], kinds: tuple[str, ...] = CURVE_KINDS) -> go.Figure:
    """One curve per run (label -> run.curves) for each of ``kinds`` (roc | pr | calibration | gains), two panels
    to a row, as one figure: one chart for the browser to draw instead of several, with one legend entry per run.
    Built as one dict: plotly's incremental updates cost ~0.3 s here."""
    n_rows = (len(kinds) + 1) // 2
    gap = 0.16 / n_rows if n_rows > 1 else 0.0
    height = (1 - gap * (n_rows - 1)) / n_rows
    columns = ([0.0, 0.46], [0.54, 1.0])
    data, layout, seen = [], {}, set()
    annotations, shapes = [], []
    for i, kind in enumerate(kinds):
        n = "" if i == 0 else str(i + 1)
        top = 1 - (i // 2) * (height + gap)
        xdom, ydom = columns[i % 2], [top - height, top]
        title, xtitle, ytitle = CURVE_TITLES[kind]
        traces, base = _curve_traces(curves, kind)
        for trace in traces:
            data.append(
                {
                    **trace,
                    "xaxis": f"x{n}",
                    "yaxis": f"y{n}",
                    "legendgroup": trace["name"],
                    "showlegend": trace["name"] not in seen,
                }
            )
            seen.add(trace["name"])
        layout[f"xaxis{n}"] = {"domain": xdom, "anchor": f"y{n}", "range": [0, 1], "title": {"text": xtitle}}
        layout[f"yaxis{n}"] = {"domain": ydom, "anchor": f"x{n}", "range": [0, 1.02], "title": {"text": ytitle}}
        annotations.append(
            {
                "text": title,
                "x": sum(xdom) / 2,
                "y": ydom[1],
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 15},
            }
        )
        if base is not None:
            shapes.append(
                {
                    "type": "line",
                    "xref": f"x{n}",
                    "yref": f"y{n}",
                    "x0": 0,
                    "x1": 1,
                    "y0": base,
                    "y1": base,
                    "line": {"dash": "dot", "color": "#9ca3af"},
                }
            )
    layout.update(
        height=40 + 380 * n_rows,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        annotations=annotations,
        shapes=shapes,
        # hung below the axis titles: long run names wrap onto more lines downwards, never over the titles
        legend={"orientation": "h", "yanchor": "top", "y": -0.09 if n_rows > 1 else -0.17, "x": 0},
    )
    return go.Figure({"data": data, "layout": layout})


def _confusion_trace(cm: dict) -> dict:
    """A labelled 2x2 heatmap (plain dict) of a confusion matrix's counts, in a caller's words (the technical
    names, TN FP FN TP, are in the hover)."""
    words = [
        [f"{cm['tn']} rightly not called", f"{cm['fp']} calls that did not convert"],
        [f"{cm['fn']} conversions missed", f"{cm['tp']} calls that converted"],
    ]
    return {
        "type": "heatmap",
        "z": [[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]],
        "x": ["not called", "called"],
        "y": ["did not convert", "converted"],
        "text": words,
        "texttemplate": "%{text}",
        "colorscale": "Blues",
        "showscale": False,
        "customdata": [["true negatives", "false positives"], ["false negatives", "true positives"]],
        "hovertemplate": "%{z} %{customdata}<extra></extra>",
    }


def confusion_grid(cms: list[tuple[dict, str]]) -> go.Figure:
    """Several confusion matrices (``(cm, title)`` pairs) side by side in one figure."""
    k, gap = max(len(cms), 1), 0.1
    width = (1 - gap * (k - 1)) / k
    data, layout, annotations = [], {}, []
    for i, (cm, title) in enumerate(cms):
        n = "" if i == 0 else str(i + 1)
        dom = [i * (width + gap), i * (width + gap) + width]
        data.append({**_confusion_trace(cm), "xaxis": f"x{n}", "yaxis": f"y{n}"})
        layout[f"xaxis{n}"] = {"domain": dom, "anchor": f"y{n}"}
        layout[f"yaxis{n}"] = {"anchor": f"x{n}", "autorange": "reversed", "showticklabels": i == 0}
        annotations.append(
            {
                "text": title,
                "x": sum(dom) / 2,
                "y": 1,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
            }
        )
    layout.update(height=280, margin={"l": 10, "r": 10, "t": 40, "b": 10}, annotations=annotations)
    return go.Figure({"data": data, "layout": layout})


def score_bands_figure(bands: dict[str, dict]) -> go.Figure:
    """Conversion rate in each 1-99 score band, one horizontal bar per run and band (best band on top), labelled
    with the rate, written level; the number of leads in the band is in the hover."""
    data = []
    order = None
    for i, (label, b) in enumerate(bands.items()):
        order = order or list(b["band"])
        rates = [None if r is None else float(r) for r in b["conversion_rate"]]
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "y": list(b["band"]),
                "x": rates,
                "name": label,
                "marker": {"color": PALETTE[i % len(PALETTE)]},
                "text": ["" if r is None else f"{r:.0%}" for r in rates],
                "textposition": "outside",
                "textangle": 0,
                "cliponaxis": False,
                "customdata": list(b["count"]),
                "hovertemplate": "score %{y}: %{x:.1%} converted (%{customdata} leads)<extra>"
                + html.escape(label)
                + "</extra>",
            }
        )
    n_bands = len(order or [])
    layout = {
        "title": {"text": "Conversion rate by score band"},
        "barmode": "group",
        "height": 150 + 20 * len(bands) + n_bands * (14 * max(len(bands), 1) + 16),
        "margin": {"l": 10, "r": 40, "t": 50 + 20 * len(bands), "b": 10},
        "xaxis": {
            "title": {"text": "share of leads in the band that converted"},
            "tickformat": ".0%",
            "rangemode": "tozero",
        },
        "yaxis": {
            "title": {"text": "score band"},
            "categoryorder": "array",
            "categoryarray": order or [],
            "type": "category",
        },
        "legend": {"orientation": "v", "yanchor": "bottom", "y": 1.0, "x": 0, "traceorder": "reversed"},
    }
    return go.Figure({"data": data, "layout": layout})


def loss_figure(history: list[dict]) -> go.Figure:
    fig = go.Figure()
    frame = pd.DataFrame(history)
    if not frame.empty:
        for i, (stage, part) in enumerate(frame.groupby("stage", sort=False)):
            fig.add_scatter(
                x=part["step"], y=part["loss"], name=str(stage), mode="lines", line_color=PALETTE[i % len(PALETTE)]
            )
    return _layout(fig, "Training loss", "step", "loss", height=280)


def importance_figure(importance: pd.DataFrame, top: int = 15) -> go.Figure:
    imp = importance.head(top).iloc[::-1]
    # in percentage points of the probability, as every other contribution on the pages
    fig = go.Figure(go.Bar(x=imp["importance"] * 100, y=imp["feature"], orientation="h", marker_color=PALETTE[0]))
    return _layout(
        fig,
        "Global importance: mean size of the effect",
        "percentage points of the probability",
        "",
        height=80 + 24 * len(imp),
    )


def strip_figure(contrib: pd.DataFrame, features: list[str]) -> go.Figure:
    """Beeswarm-like strip plot: one dot per row and feature, x = contribution, colour = value rank.
    All dots are one trace (far quicker for the browser to draw than a trace per feature)."""
    rng = np.random.default_rng(0)
    xs, ys, colors, texts = [], [], [], []
    for i, feat in enumerate(features[::-1]):
        part = contrib[contrib["feature"] == feat]
        values = pd.to_numeric(part["value"], errors="coerce")
        if values.notna().sum() >= 2:
            color = values.rank(pct=True).fillna(0.5).to_numpy()
        else:  # categorical: colour by the mean contribution of the category
            color = part.groupby("value")["contribution"].transform("mean").rank(pct=True).fillna(0.5).to_numpy()
        xs.append(part["contribution"].to_numpy())
        ys.append(i + rng.uniform(-0.3, 0.3, len(part)))
        colors.append(color)
        texts += [f"{feat} = {v}" for v in part["value"]]
    fig = go.Figure(
        go.Scatter(
            x=np.concatenate(xs) if xs else [],
            y=np.concatenate(ys) if ys else [],
            mode="markers",
            marker=dict(
                size=6,
                color=np.concatenate(colors) if colors else [],
                colorscale="RdBu_r",
                cmin=0,
                cmax=1,
                opacity=0.75,
                showscale=True,
                colorbar=dict(title="value", tickvals=[0, 1], ticktext=["low", "high"]),
            ),
            text=texts,
            hovertemplate="%{text}: %{x:+.3f}<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_yaxes(tickvals=list(range(len(features))), ticktext=features[::-1])
    fig.add_vline(x=0, line_color="#9ca3af")
    return _layout(
        fig,
        "Contributions per lead (each dot is a lead)",
        "contribution to P(convert)",
        "",
        height=80 + 30 * len(features),
    )


def dependence_figure(contrib: pd.DataFrame, feature: str) -> go.Figure:
    part = contrib[contrib["feature"] == feature]
    values = pd.to_numeric(part["value"], errors="coerce")
    if values.notna().mean() > 0.5:
        fig = go.Figure(go.Scatter(x=values, y=part["contribution"], mode="markers", marker_color=PALETTE[0]))
    else:
        fig = go.Figure(go.Box(x=part["value"], y=part["contribution"], boxpoints="all", marker_color=PALETTE[0]))
    fig.add_hline(y=0, line_color="#9ca3af")
    return _layout(fig, f"Dependence on {feature}", feature, "contribution to P(convert)")


def highlight_text(text: str, phrases: pd.DataFrame, max_alpha: float = 0.55) -> str:
    """HTML of ``text`` with each phrase (``feature`` column) shaded green (raises the score) or red
    (lowers it), opacity by |contribution|."""
    spans: list[tuple[int, int, float]] = []
    lowered = text.lower()
    scale = max(phrases["contribution"].abs().max(), 1e-9) if len(phrases) else 1.0
    for feat, contrib in zip(phrases["feature"], phrases["contribution"]):
        needle = str(feat).strip().lower()
        if not needle:
            continue
        start = lowered.find(needle)
        while start >= 0:
            end = start + len(needle)
            if all(end <= s or start >= e for s, e, _ in spans):
                spans.append((start, end, float(contrib)))
            start = lowered.find(needle, end)
    spans.sort()
    out, pos = [], 0
    for start, end, contrib in spans:
        out.append(html.escape(text[pos:start]))
        alpha = max_alpha * min(abs(contrib) / scale, 1.0) + 0.1
        rgb = "22,163,74" if contrib > 0 else "220,38,38"
        out.append(
            f'<span title="{contrib:+.3f}" style="background: rgba({rgb},{alpha:.2f}); '
            f'border-radius: 3px; padding: 0 2px">{html.escape(text[start:end])}</span>'
        )
        pos = end
    out.append(html.escape(text[pos:]))
    return '<div style="line-height: 1.8; white-space: pre-wrap">' + "".join(out) + "</div>"


def projection_figure(coords: np.ndarray, color: list, hover: list[str], title: str) -> go.Figure:
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "colour": [str(c) for c in color], "hover": hover})
    fig = go.Figure()
    for i, (value, part) in enumerate(frame.groupby("colour", sort=True)):
        fig.add_scatter(
            x=part["x"],
            y=part["y"],
            mode="markers",
            name=value,
            text=part["hover"],
            hovertemplate="%{text}<extra>" + html.escape(value) + "</extra>",
            marker=dict(size=6, color=PALETTE[i % len(PALETTE)], opacity=0.8),
        )
    fig = _layout(fig, title, "", "", height=420)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def learning_curve_figure(table: dict[str, list[dict]]) -> go.Figure:
    """ROC-AUC against training rows (log scale), a line per approach with its mean bootstrap interval as a band
    and the seeds' spread as error bars (``engine.curve_words.curve_table``'s rows)."""
    fig = go.Figure()
    for i, (approach, rows) in enumerate(sorted(table.items())):
        colour = PALETTE[i % len(PALETTE)]
        sizes = [r["size"] for r in rows]
        r, g, b = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
        fig.add_trace(
            go.Scatter(
                x=sizes + sizes[::-1],
                y=[r_["ci_high"] for r_ in rows] + [r_["ci_low"] for r_ in rows][::-1],
                fill="toself",
                fillcolor=f"rgba({r},{g},{b},0.15)",
                mode="lines",  # the band's outline only: no markers at its corners
                line=dict(width=0),
                hoverinfo="skip",
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=sizes,
                y=[r_["roc_auc"] for r_ in rows],
                mode="lines+markers",
                name=APPROACH_WORDS.get(approach, approach),
                line=dict(color=colour),
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[r_["high_seed"] - r_["roc_auc"] for r_ in rows],
                    arrayminus=[r_["roc_auc"] - r_["low_seed"] for r_ in rows],
                    visible=any(r_["seeds"] > 1 for r_ in rows),
                ),
                customdata=[[r_["seeds"], r_["ci_low"], r_["ci_high"]] for r_ in rows],
                hovertemplate="%{x:,} rows: ROC-AUC %{y:.3f} (95 % interval %{customdata[1]:.3f} to "
                "%{customdata[2]:.3f}; %{customdata[0]} seed(s))<extra></extra>",
            )
        )
    sizes = sorted({r_["size"] for rows in table.values() for r_ in rows})
    fig.update_xaxes(type="log", tickvals=sizes, ticktext=[f"{s:,}" for s in sizes])  # the sizes trained at
    return _layout(fig, "Learning curves: ROC-AUC on the same test rows", "training rows (log scale)", "ROC-AUC")
