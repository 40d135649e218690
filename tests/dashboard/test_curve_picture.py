"""The learning-curve chart as a PNG (dashboard.components.curve_picture): the board's Plotly figure drawn by
headless Chromium from a real ``bench curve`` JSON, and every bad input refused with the problem and the fix,
nothing written over."""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path

import pytest

from dashboard.components import curve_picture
from dashboard.components.curve_picture import main, read_curve_points, save_curve_png

REPO = Path(__file__).resolve().parents[2]
DEMO_CURVE = REPO / "assets" / "bench" / "curve_demo_leads_2026-12-05.json"


def _needs_browser():
    if not curve_picture.CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {curve_picture.CHROMIUM} (apt-get install -y chromium)")
    pytest.importorskip("playwright")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_the_demo_curve_is_drawn_as_the_board_draws_it(tmp_path, capsys):
    _needs_browser()
    out = tmp_path / "curve.png"
    assert main(["--json", str(DEMO_CURVE), "--png", str(out)]) == 0
    width, height = _png_size(out)
    assert 800 <= width <= 1000 and 400 <= height <= 560, (width, height)
    from PIL import Image

    colours = Image.open(out).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "the picture is blank"
    assert f"written {out}" in capsys.readouterr().out


def _curve_file(tmp_path: Path, payload) -> Path:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(payload) if not isinstance(payload, str) else payload)
    return path


@pytest.mark.parametrize(
    "payload, words",
    [
        (None, "no such file"),
        ("{not json", "not readable JSON"),
        ([1, 2], "not readable JSON"),
        ({"kind": "leads", "models": {}}, "not a learning curve"),
        ({"kind": "learning_curve", "points": "many"}, "not a learning curve"),
        ({"kind": "learning_curve", "points": []}, "no point with a ROC-AUC"),
        (
            {"kind": "learning_curve", "points": [{"approach": "stacking", "size": 50, "seed": 0, "roc_auc": None}]},
            "no point with a ROC-AUC",
        ),
    ],
)
def test_a_json_that_is_not_a_curve_is_refused_with_the_fix(tmp_path, capsys, payload, words):
    path = tmp_path / "missing.json" if payload is None else _curve_file(tmp_path, payload)
    with pytest.raises(ValueError, match=words) as info:
        read_curve_points(path)
    assert "Fix:" in str(info.value)
    out = tmp_path / "c.png"
    assert main(["--json", str(path), "--png", str(out)]) == 2
    assert words in capsys.readouterr().err and not out.exists()


def test_a_bad_picture_path_is_refused_and_nothing_is_written_over(tmp_path):
    points = read_curve_points(DEMO_CURVE)
    with pytest.raises(ValueError, match="ending in .png"):
        save_curve_png(points, tmp_path / "c.jpg")
    with pytest.raises(ValueError, match="does not exist. Fix: create it"):
        save_curve_png(points, tmp_path / "nowhere" / "c.png")
    kept = tmp_path / "mine.png"
    kept.write_bytes(b"the user's own picture")
    with pytest.raises(ValueError, match="exists and is left as it is. Fix: give another name, or --replace"):
        save_curve_png(points, kept)
    assert kept.read_bytes() == b"the user's own picture"
    with pytest.raises(ValueError, match="Chromium not found at .*Fix"):
        save_curve_png(points, tmp_path / "new.png", chromium=tmp_path / "no-browser")
    assert not (tmp_path / "new.png").exists()


def test_replace_writes_over_and_two_writers_of_one_new_picture_leave_one(tmp_path):
    _needs_browser()
    points = read_curve_points(DEMO_CURVE)
    kept = tmp_path / "old.png"
    kept.write_bytes(b"old")
    save_curve_png(points, kept, replace=True)
    assert _png_size(kept)[0] > 0

    out, results = tmp_path / "both.png", []

    def draw():
        try:
            save_curve_png(points, out)
            results.append("written")
        except ValueError as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=draw) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("written") == 1, results
    assert any("left as it is" in r for r in results), results
    _png_size(out)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
