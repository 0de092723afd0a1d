"""What leaves mbprof for other programs and people: every command's JSON against the
published schema (mbprof/data/results.schema.json), the self-contained HTML page (in a
real headless browser where one is installed) and the notebook display."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources

import pytest

from mbprof.render.document import SCHEMA_VERSION
from tests.conftest import assert_one_line_error

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = json.loads(resources.files("mbprof").joinpath("data/results.schema.json").read_text())
SMALL = ("mobilenet_v1", "--width", "0.25", "--res", "64")
PAGES = ("profile", "compare", "bench")  # --html, beside their JSON
BUDGET = '[[budget]]\nmodel = "mobilenet_v1"\nwidth = 0.25\nresolution = 64\nmax_madds = "4M"\n'


@pytest.fixture(scope="module")
def written(tmp_path_factory, worker_id):
    """Each command's JSON as it writes it (small configurations, a short timing), written
    once a test run: pytest-xdist's workers read the folder the first of them wrote."""
    from filelock import FileLock

    if worker_id == "master":
        folder = tmp_path_factory.mktemp("json")
        write_every_kind(folder)
    else:
        folder = tmp_path_factory.getbasetemp().parent / "reports-json"
        with FileLock(f"{folder}.lock"):
            if not (folder / "done").exists():
                folder.mkdir(exist_ok=True)
                write_every_kind(folder)
                (folder / "done").touch()
    out = {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}
    out["pages"] = {kind: folder / f"{kind}.html" for kind in PAGES}
    return out


def write_every_kind(folder):
    from typer.testing import CliRunner

    from mbprof.cli import app

    (folder / "budgets.toml").write_text(BUDGET)
    timing = ("--min-time", "0.02", "--warmup", "1", "--threads", "1")
    commands = {
        "profile": ["profile", *SMALL],
        # Published top-1 figures, for the Pareto plot of its page.
        "compare": ["compare", "-m", "mobilenet_v2", "-w", "0.35,0.5", "-r", "96", "--no-latency"],
        "bench": ["bench", *SMALL, *timing, "--layers"],
        "memory": ["memory", *SMALL],
        "cost": ["cost", "--input", "8x8x4", "--filters", "8"],
        "check": ["check", str(folder / "budgets.toml")],
        "cache": ["cache", "info"],
        "models": ["models"],
        "plot": ["plot", str(folder / "compare.json"), "--x", "madds", "--y", "params",
                 "--figure", str(folder / "plot.svg")],
        "diff": ["diff", str(folder / "profile.json"), str(folder / "profile.json")],
    }  # fmt: skip
    from mbprof.analysis.latency import roofline

    with pytest.MonkeyPatch.context() as patch:  # fixed ceilings: the machine is not measured
        patch.setattr(roofline, "machine_peak_gflops", lambda *a, **k: 50.0)
        patch.setattr(roofline, "machine_bandwidth_gbs", lambda *a, **k: 10.0)
        for kind, args in commands.items():
            path = folder / f"{kind}.json"
            html = ["--html", str(folder / f"{kind}.html")] if kind in PAGES else []
            result = CliRunner().invoke(app, [*args, "-f", "json", "-o", str(path), *html])
            assert result.exit_code == 0, (kind, result.output)
    import mbprof.api.reporting as rep
    from mbprof.render.command_views import reproduce_document
    from mbprof.render.document import to_json

    result = rep.reproduce(folder / "reports", parts=(), latency=False)  # writes its index only
    (folder / "reproduce.json").write_text(to_json(reproduce_document(result)))


def test_the_schema_is_a_valid_json_schema_naming_every_kind(written):
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    kinds = set(written) - {"pages"}
    assert set(SCHEMA["properties"]["kind"]["enum"]) == kinds == set(SCHEMA["$defs"])
    assert SCHEMA["properties"]["schema_version"]["const"] == SCHEMA_VERSION


@pytest.mark.parametrize(
    "kind",
    ["profile", "compare", "bench", "memory", "cost", "check", "cache", "models", "plot", "diff",
     "reproduce"],
)  # fmt: skip
def test_every_command_s_json_validates_against_its_schema(written, kind):
    document = written[kind]
    assert document["kind"] == kind and document["schema_version"] == SCHEMA_VERSION
    jsonschema.validate(document, SCHEMA)


def test_the_schema_refuses_what_breaks_its_promise(written):
    broken = json.loads(json.dumps(written["profile"]))
    broken["tables"]["layers"][0]["madds"] = "many"  # a count that is not an integer
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)
    del broken["kind"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


# --- HTML ----------------------------------------------------------------------------

BROWSER = shutil.which("chromium-headless-shell") or shutil.which("chromium")


@pytest.fixture(scope="module")
def pages(written):
    return written["pages"]


def test_the_page_is_one_file_that_fetches_nothing(pages):
    for path in pages.values():  # profile, compare, bench --layers
        text = path.read_text()
        assert text.startswith("<!DOCTYPE html>") and "<style>" in text and "<script>" in text
        references = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", text)
        assert all(ref.startswith("data:") for ref in references), references
        assert "@import" not in text and "url(http" not in text
    compare = pages["compare"].read_text()
    assert 'src="data:image/svg+xml;base64,' in compare  # the Pareto plot, inline
    assert "0.35" in compare and "Conventions and notes" in compare
    assert "features.13.dw.0" in pages["profile"].read_text()
    assert 'src="data:' not in pages["profile"].read_text()  # no figure of its own


def test_bench_layers_page_holds_its_roofline(written):
    page = written["pages"]["bench"].read_text()
    assert page.count('src="data:image/svg+xml;base64,') == 1 and ": roofline (eager" in page


@pytest.mark.skipif(BROWSER is None, reason="no chromium-headless-shell or chromium installed")
def test_a_real_browser_renders_the_page_not_blank(pages, tmp_path):
    png = tmp_path / "page.png"
    subprocess.run(
        [BROWSER, f"--screenshot={png}", "--window-size=800,900", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--no-first-run", pages["compare"].as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    from PIL import Image

    image = Image.open(png).convert("L")
    low, high = image.getextrema()
    assert high - low > 100  # text and a figure on white, not a blank page
    dark = sum(image.histogram()[:128]) / (image.width * image.height)
    assert 0.005 < dark < 0.5, dark


def test_records_show_in_notebooks_and_convert_to_frames():
    from tests.conftest import counted

    profile = counted("mobilenet_v1", width=0.25, resolution=64)
    frame = profile.to_dataframe()
    assert frame["madds"].sum() == profile.counts.madds and "path" in frame
    html = profile._repr_html_()
    assert html.startswith("<div>") and "features.1.dw.0" in html and "<html" not in html


def test_html_and_output_naming_one_file_are_refused_before_any_work(tmp_path, run):
    same = str(tmp_path / "report.html")
    result = run("profile", *SMALL, "--output", same, "--html", same)
    assert_one_line_error(result, "--output and --html name the same file")
