"""The board's learning-curve chart as a PNG, for a README: the Plotly figure the Metric board's "Learning curves"
tab draws (:func:`dashboard.components.charts.learning_curve_figure` of the ``bench curve`` JSON's points), put in
a page and photographed by headless Chromium through Playwright (the browser the browser test drives; kaleido is
not needed).

``python -m dashboard.components.curve_picture --json assets/bench/curve_X.json --png assets/curve_X.png``
(``--replace`` to write over an existing picture; ``CLAB_CHROMIUM`` or ``--chromium`` names the browser).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from dashboard.components.charts import learning_curve_figure
from engine.curve_words import curve_table
from engine.storage import CorruptFile, locked, read_json, write_bytes

CHROMIUM = Path(os.environ.get("CLAB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def read_curve_points(path: str | Path) -> list[dict]:
    """The points of the ``bench curve`` JSON at ``path``; anything else is refused with the problem and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--json {path}: no such file. Fix: give the JSON that `python -m engine bench curve` wrote.")
    try:
        payload = read_json(path, dict)
    except CorruptFile as exc:
        raise ValueError(f"--json {path} is not readable JSON ({exc.problem}). Fix: give a bench curve JSON.") from None
    if payload.get("kind") != "learning_curve" or not isinstance(payload.get("points"), list):
        raise ValueError(
            f"--json {path} is not a learning curve written by `python -m engine bench curve`. Fix: give its JSON."
        )
    if not curve_table(payload["points"]):
        raise ValueError(f"--json {path} holds no point with a ROC-AUC yet. Fix: let the curve land a point first.")
    return payload["points"]


def save_curve_png(
    points: list[dict],
    png: str | Path,
    *,
    replace: bool = False,
    width: int = 900,
    height: int = 480,
    chromium: str | Path | None = None,
) -> Path:
    """Draw ``points`` as the board does and write the picture to ``png`` (a new file, unless ``replace``)."""
    png = Path(png)
    if png.suffix.lower() != ".png":
        raise ValueError(f"--png {png}: the picture is written as PNG. Fix: give a name ending in .png.")
    if not png.parent.is_dir():
        raise ValueError(f"--png {png}: the folder {png.parent} does not exist. Fix: create it first.")
    if png.exists() and not replace:
        raise ValueError(f"--png {png} exists and is left as it is. Fix: give another name, or --replace.")
    browser = Path(chromium or CHROMIUM)
    if not browser.is_file():
        raise ValueError(
            f"Chromium not found at {browser}. Fix: install it (apt-get install -y chromium) or name it with "
            "--chromium or CLAB_CHROMIUM."
        )
    from playwright.sync_api import sync_playwright

    fig = learning_curve_figure(curve_table(points))
    fig.update_layout(width=width, height=height, margin=dict(l=60, r=20, t=50, b=40), template="plotly_white")
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=-0.3, x=0))
    with tempfile.TemporaryDirectory(prefix="curve_png_") as tmp:
        page_file = Path(tmp) / "curve.html"
        page_file.write_text(fig.to_html(include_plotlyjs=True, full_html=True, config={"staticPlot": True}))
        shot = Path(tmp) / "curve.png"
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=str(browser), args=CHROMIUM_ARGS, headless=True)
            try:
                page = b.new_page(viewport={"width": width + 40, "height": height + 40})
                page.goto(page_file.as_uri())
                page.wait_for_selector(".main-svg", timeout=30_000)
                page.locator(".plot-container").first.screenshot(path=str(shot))
            finally:
                b.close()
        with locked(png):
            if png.exists() and not replace:  # appeared while drawing: still never written over
                raise ValueError(f"--png {png} appeared meanwhile and is left as it is. Fix: give another name.")
            write_bytes(png, shot.read_bytes(), make_parents=False)
    return png


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m dashboard.components.curve_picture", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--json", required=True, help="the curve's JSON (python -m engine bench curve --json ...)")
    p.add_argument("--png", required=True, help="the picture to write (a new file unless --replace)")
    p.add_argument("--replace", action="store_true", help="write over an existing picture")
    p.add_argument("--chromium", help=f"the browser (default: CLAB_CHROMIUM or {CHROMIUM})")
    args = p.parse_args(argv)
    try:
        out = save_curve_png(read_curve_points(args.json), args.png, replace=args.replace, chromium=args.chromium)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
