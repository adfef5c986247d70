"""Server-rendered SVG charts: well-formed, and every text escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from trustgate.ui.charts import stacked_by_day, top_bars


def test_stacked_bars_are_svg_with_a_bar_per_day_and_series() -> None:
    svg = stacked_by_day(
        ["2026-01-01", "2026-01-02"],
        {"allow": {"2026-01-01": 3}, "deny": {"2026-01-01": 1, "2026-01-02": 2}},
        title="per day",
    )
    root = ET.fromstring(svg)
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.find("{*}title") is not None]
    assert len(bars) == 3
    assert {b.find("{*}title").text for b in bars} == {  # type: ignore[union-attr]
        "2026-01-01 allow: 3",
        "2026-01-01 deny: 1",
        "2026-01-02 deny: 2",
    }


def test_labels_are_escaped() -> None:
    svg = top_bars([("<script>alert(1)</script>", 2), ("a&b", 1)], title="t<")
    assert "<script>" not in svg
    root = ET.fromstring(svg)  # still well-formed
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "<script>alert(1)</script>" in texts and "a&b" in texts


def test_empty_charts_say_so() -> None:
    assert "no decisions" in stacked_by_day([], {}, title="x")
    assert ">none<" in top_bars([], title="x")
