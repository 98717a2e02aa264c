"""The sweep report: the HTML opened in headless Chromium with the network off (its plots must
render from the inlined plotly.js, its tables must fill and sort), the Markdown with its PNGs,
and the errors that leave nothing behind."""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("plotly")
pytest.importorskip("matplotlib")

from accelsim.errors import AccelsimError  # noqa: E402
from accelsim.explore.analysis import pareto_front  # noqa: E402
from accelsim.explore.runner import run_sweep  # noqa: E402
from accelsim.explore.spec import sweep_from_dict  # noqa: E402
from accelsim.explore.store import Store, results_frame  # noqa: E402
from accelsim.report import sweep_report  # noqa: E402
from accelsim.report.sweep_report import WORKLOAD_COLOURS, render_html, write_report  # noqa: E402

ENERGY = "energy_uj_per_inference"


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if found:
        return found
    message = "headless Chromium not installed (apt-get install -y chromium)"
    if os.environ.get("ACCELSIM_REQUIRE_CHROMIUM"):   # set by .ci/run: CI must render the report
        pytest.fail(message)
    pytest.skip(message)


def _run_chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    """Chromium on a local file, with every network request sent to a dead proxy and every host
    name unresolvable: whatever renders, renders offline."""
    cmd = [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--disable-extensions", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'chromium-profile'}",
           "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
           "--host-resolver-rules=MAP * ~NOTFOUND",
           "--virtual-time-budget=10000", *args, page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, timeout=90)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    """Two cost-only zoo networks and one trained model (accuracy on 50 images) over a small grid;
    PowerQuant needs a power unit the base hardware lacks, so its points are skipped."""
    path = tmp_path_factory.mktemp("sweep") / "results.db"
    spec = sweep_from_dict({"name": "report-test", "workloads": ["mobilenet_v2", "alexnet", "tiny_resnet"],
                            "recipes": ["naive", "powerquant"], "limit": 50,
                            "grid": {"pe_array.rows": [8, 16],
                                     "quantization.weight_scheme": ["symmetric", "asymmetric"]}})
    run_sweep(spec, path, workers=0, progress=False)
    return path


@pytest.fixture(scope="module")
def results(store_path):
    with Store(store_path, create=False) as s:
        return results_frame(s)


def _distinct_colours(pixels: np.ndarray) -> int:
    rgb = (pixels[..., :3] * 255).round().astype(np.uint32).reshape(-1, 3)
    return len(np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]))


def _rows(table_html: str) -> list[str]:
    body = table_html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


def _table(dom: str, table_id: str) -> str:
    m = re.search(rf'<table class="sortable" id="{table_id}">.*?</table>', dom, flags=re.S)
    assert m, f"table {table_id} missing"
    return m.group(0)


# ---------------------------------------------------------------------- HTML in Chromium


SORT_PROBE = """
<script>
// click the energy header of the results table twice; keep each order for the test to read
(function () {
  var t = document.getElementById("table-results");
  var col = Array.prototype.findIndex.call(t.tHead.rows[0].cells, function (c) { return c.textContent === "%s"; });
  var order = function () {
    return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.cells[col].dataset.v; }).join(",");
  };
  document.body.dataset.before = order();
  t.tHead.rows[0].cells[col].click(); document.body.dataset.asc = order();
  t.tHead.rows[0].cells[col].click(); document.body.dataset.desc = order();
})();
</script>
""" % ENERGY


def test_html_report_renders_offline_in_chromium(store_path, results, tmp_path):
    ok = results[results["status"] == "ok"]
    skipped = results[results["status"] == "skipped"]
    assert len(ok) and len(skipped) and ok["top1_integer"].notna().any()   # the case covers all three

    out = write_report(store_path, tmp_path / "report.html")
    page = out.read_text()
    # self-contained: no script or stylesheet from anywhere, and plots exist only once JS has drawn them
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?(?!data:)", page, flags=re.I)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?https?:", page, flags=re.I)
    assert 'class="main-svg"' not in page
    workloads = list(dict.fromkeys(ok["workload"]))
    figures = ["fig-pareto", "fig-accuracy", "fig-energy"] + [f"fig-layers-{i}" for i in range(len(workloads))]
    assert re.findall(r'<div class="figure" id="([^"]+)"', page) == figures

    # the hover text of each point carries its configuration and figures
    first = ok.iloc[0]
    hover = [f"recipe: {first['recipe']}", f"point #{first['point']}"]
    hover += [f"{axis}: {first[axis]}" for axis in ("pe_array.rows", "quantization.weight_scheme")]
    assert all(h in page for h in hover)
    assert f"{ENERGY}: {sweep_report._fmt(first[ENERGY])}" in page

    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", SORT_PROBE + "</body>"))
    dom = _run_chromium(tmp_path, probe, "--dump-dom").stdout.decode()

    # every figure was drawn by plotly.js: its SVG layers and data marks are in the live DOM
    chunks = re.split(r'<div class="figure" id="', dom)[1:]
    assert [c.split('"', 1)[0] for c in chunks] == figures
    for chunk in chunks:
        head = chunk.split("<h2>", 1)[0]
        assert 'class="plot-container plotly"' in head and 'class="main-svg"' in head, chunk[:80]
        assert re.search(r'class="point"', head), chunk[:80]
    # one marker per finished point in the energy/latency scatter, one per measured point in accuracy
    pareto, accuracy = (c.split("<h2>", 1)[0] for c in chunks[:2])
    assert len(re.findall(r'<path class="point"', pareto)) == len(ok)
    assert len(re.findall(r'<path class="point"', accuracy)) == ok["top1_integer"].notna().sum()

    assert len(_rows(_table(dom, "table-results"))) == len(ok)
    assert len(_rows(_table(dom, "table-front"))) == len(pareto_front(ok))
    problems = _rows(_table(dom, "table-problems"))
    assert len(problems) == len(skipped)
    problem_text = [html.unescape(re.sub(r"<[^>]+>", " ", row)) for row in problems]
    assert all(any(reason in row for row in problem_text) for reason in skipped["error"])
    assert len(_rows(_table(dom, "table-sensitivity"))) > 0

    # click-to-sort, in the browser: ascending, then descending, from an order that was neither
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attr = {k: [float(v) for v in s.split(",")] for k, s in re.findall(r'data-(before|asc|desc)="([^"]*)"', body)}
    assert attr["before"] != sorted(attr["before"])
    assert attr["asc"] == sorted(attr["before"])
    assert attr["desc"] == sorted(attr["before"], reverse=True)

    # a screenshot of the top of the page: not blank, and each workload's colour drawn in the scatter
    shot = tmp_path / "shot.png"
    _run_chromium(tmp_path, out, "--window-size=1400,1600", f"--screenshot={shot}")
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.std() > 0.05
    assert _distinct_colours(pixels) > 100
    for i in range(len(workloads)):
        rgb = np.array([int(WORKLOAD_COLOURS[i][k:k + 2], 16) for k in (1, 3, 5)]) / 255
        assert (np.abs(pixels - rgb).max(axis=-1) < 3 / 255).sum() > 30, workloads[i]


def test_html_carries_title_notes_and_escapes_them(results):
    meta = {"store": "some/results.db", "sweep": "s",
            "sweeps": {"s": {"title": "Edge NPU <study>", "notes": "rows & weights", "grid": {"pe_array.rows": []}}}}
    page = render_html(results, results.iloc[:0], meta)
    assert "<h1>Edge NPU &lt;study&gt;</h1>" in page
    assert "rows &amp; weights" in page and "some/results.db" in page
    n_ok = int((results["status"] == "ok").sum())
    n_skipped = int((results["status"] == "skipped").sum())
    assert f"points: {len(results)} ({n_ok} ok, {n_skipped} skipped)" in page
    assert "fig-layers-0" not in page          # no per-layer rows given: no per-layer plot


# ---------------------------------------------------------------------- Markdown and PNGs


def test_markdown_report_has_tables_and_valid_pngs(store_path, results, tmp_path):
    out = write_report(store_path, tmp_path / "sweep.md")
    text = out.read_text()
    ok = results[results["status"] == "ok"]
    skipped = results[results["status"] == "skipped"]
    assert text.startswith("# Sweep report: report-test")
    assert f"- store: {store_path}" in text
    for heading in ("## Pareto front", "## Energy by component", "## Cycles per layer", "## Sensitivity",
                    "## Skipped and failed points", "## All finished points"):
        assert heading in text

    def section(heading: str) -> list[str]:
        part = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
        return [line for line in part.splitlines() if line.startswith("| ")]

    assert len(section("## All finished points")) == len(ok) + 1           # + the header row
    assert len(section("## Skipped and failed points")) == len(skipped) + 1
    assert all(reason in text for reason in skipped["error"])

    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images == ["sweep-pareto.png", "sweep-accuracy.png", "sweep-energy.png", "sweep-layers.png"]
    import matplotlib.image

    for name in images:
        png = tmp_path / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = matplotlib.image.imread(png)[..., :3]
        assert pixels.shape[0] > 200 and pixels.shape[1] > 200
        assert pixels.std() > 0.05 and _distinct_colours(pixels) > 20, name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(images + ["sweep.md"])


def test_a_store_with_no_finished_points_says_so(tmp_path):
    path = tmp_path / "skipped.db"
    spec = sweep_from_dict({"name": "all-skipped", "workloads": ["mobilenet_v2"], "recipes": ["powerquant"],
                            "grid": {"pe_array.rows": [8, 16]}})
    run_sweep(spec, path, workers=0, progress=False)
    page = write_report(path, tmp_path / "r.html").read_text()
    assert "No finished points" in page and "plotly-graph-div" not in page
    assert len(_rows(_table(page, "table-problems"))) == 2
    text = write_report(path, tmp_path / "r.md").read_text()
    assert "No finished points" in text and "power unit" in text
    assert not list(tmp_path.glob("*.png"))

    Store(tmp_path / "empty.db").close()        # no sweep at all
    assert "points: 0" in write_report(tmp_path / "empty.db", tmp_path / "e.md").read_text()


# ---------------------------------------------------------------------- errors leave nothing


def test_bad_suffix_or_missing_store_is_a_clear_error_and_writes_nothing(store_path, tmp_path):
    with pytest.raises(AccelsimError, match=r"\.html, \.htm, \.md.*'\.pdf'"):
        write_report(store_path, tmp_path / "report.pdf")
    with pytest.raises(AccelsimError, match="no result store"):
        write_report(tmp_path / "missing.db", tmp_path / "report.html")
    with pytest.raises(AccelsimError, match="no sweep named 'nope'"):
        write_report(store_path, tmp_path / "report.md", sweep="nope")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_no_half_report(store_path, tmp_path, monkeypatch):
    real = Path.write_bytes
    calls = []

    def fail_on_second(self, data):
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", fail_on_second)
    with pytest.raises(AccelsimError, match="No space left"):
        write_report(store_path, tmp_path / "sweep.md")
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []


def test_missing_plotting_libraries_name_the_extra(store_path, results, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    for name in ("r.html", "r.md"):
        with pytest.raises(AccelsimError, match=re.escape("pip install 'accelsim[report]'")):
            write_report(store_path, tmp_path / name)
    with pytest.raises(AccelsimError, match="plotly and matplotlib"):
        sweep_report.render_html(results, None, {})
    assert list(tmp_path.iterdir()) == []
