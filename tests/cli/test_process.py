"""Issue 10, clear errors (continued): the Python API refuses with MbprofError naming the
parameter, fvcore stays loud for the user, and what belongs to the process (a closed
stdout, an ASCII locale, a bare `mbprof`) is tested in a child process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import mbprof
import mbprof.api
from mbprof.core.errors import MbprofError
from tests.support import ROOT


def mbprof_process(*args: str, shell_tail: str = ""):
    """The real command in a child process (what belongs to the process: exit code, fds)."""
    command = [sys.executable, "-m", "mbprof", *args]
    if shell_tail:  # e.g. '>&-': closed by the shell before Python starts
        command = ["sh", "-c", f'exec "$@" {shell_tail}', "sh", *command]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT)


# --- the Python API --------------------------------------------------------------------------


def test_lone_values_are_one_item():
    specs = mbprof.api.make_specs(models="mobilenet_v2", widths=0.5, depths=1.0, resolutions=224)
    assert [(s.model, s.width, s.resolution) for s in specs] == [("mobilenet_v2", 0.5, (224, 224))]
    frame = mbprof.compare(
        models="mobilenet_v2", resolutions="32", with_memory=False, accuracy=False
    )
    assert frame["model"].tolist() == ["mobilenet_v2"]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(resolution=(224,)), "resolution: (224,) is not a resolution"),
        (dict(resolution=(224.0, 224)), "is not a resolution"),
        (dict(width=True), "width: True is not a number"),
        (dict(depth=False), "depth: False is not a number"),
        (dict(model=3), "model: an object of type int is not a model"),
        (dict(num_classes=10**12), "num_classes: 1000000000000 is too many"),
    ],
)
def test_api_refuses_with_mbprof_error(kwargs, fragment):
    with pytest.raises(MbprofError) as err:
        mbprof.profile(**kwargs)
    assert fragment in str(err.value)


def test_api_refuses_empty_and_wrong_lists():
    with pytest.raises(MbprofError, match="models: the list is empty"):
        mbprof.compare(models=[])
    with pytest.raises(MbprofError, match="widths: None is neither"):
        mbprof.compare(widths=None)
    assert mbprof.make_spec(resolution=(160, 224)).resolution == (160, 224)


# --- fvcore's logger ---------------------------------------------------------------------------


def test_fvcore_warnings_stay_on_for_the_user(caplog):
    from fvcore.nn import FlopCountAnalysis

    from mbprof.analysis.counting import FVCORE_LOGGER, count

    logger = logging.getLogger(FVCORE_LOGGER)
    before = logger.level
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sigmoid())  # fvcore has no sigmoid estimate
    with caplog.at_level(logging.WARNING):  # the root's level: fvcore's own logger untouched
        count(model, (1, 3, 8, 8))  # mbprof's own call: quiet
        assert not [r for r in caplog.records if r.name.startswith("fvcore")]
        assert logger.level == before
        FlopCountAnalysis(model, torch.zeros(1, 3, 8, 8)).total()  # the user's own call
    warned = [r.getMessage() for r in caplog.records if r.name == FVCORE_LOGGER]
    assert any("aten::sigmoid" in m for m in warned), warned


# --- what belongs to the process: closed stdout, an ASCII locale, a bare mbprof -----------


def test_closed_stdout_is_one_line():
    result = mbprof_process("models", shell_tail=">&-")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "mbprof: error: standard output is closed, so the results cannot be printed; "
        "redirect it to a file, or give --output FILE"
    ]


def test_closed_stdout_with_output_file_works(tmp_path):
    out = tmp_path / "models.csv"
    result = mbprof_process("models", "-f", "csv", "-o", str(out), shell_tail=">&-")
    assert result.returncode == 0, result.stderr
    assert "mobilenet_v2" in out.read_text()


@pytest.mark.slow  # whole processes
def test_ascii_locale_degrades_to_ascii(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(
        '[[budget]]\nname = "small \u2264 8M \u00d7 1"\nmodel = "mobilenet_v2"\n'
        'resolution = 32\nmax_madds = "8M"\n',
        encoding="utf-8",
    )
    env = {"LC_ALL": "C", "LANG": "C", "PYTHONIOENCODING": "ascii", "PYTHONUTF8": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "mbprof", "check", str(path)],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    text = result.stdout.decode("ascii")  # every byte ASCII
    assert "small <= 8M x 1" in text and "held" in text


def test_bare_mbprof_prints_help_and_no_empty_error():
    result = mbprof_process()
    assert result.returncode == 2
    assert "Usage" in result.stdout and "Commands" in result.stdout
    assert "error" not in result.stderr
