"""What the README and the docs pages show, produced by running it (with cog).

A page holds blocks such as::

    <!-- [[[cog docs.command("mbprof profile mobilenet_v2 --res 96") ]]] -->
    (the command and its output, written here by cog)
    <!-- [[[end]]] -->

``cog -r -I tools -p "import docs" README.md docs/*.md`` regenerates every block; CI runs
``cog --check -I tools -p "import docs" README.md docs/*.md``, which fails when a page is stale. Figures that
do not depend on the machine (counts, memory, errors, help) are run again each time and
compared exactly. Figures that do (latency, speeds) are measured by ``python
tools/measure.py`` into ``docs/measured/NAME.md`` with the machine they came from, and pages
include that file (``docs.measured(NAME)``): never hand-edited, never re-measured by a check.
"""

from __future__ import annotations

import re
import tempfile
import textwrap
from pathlib import Path

import cog
from runner import ROOT, output_of, tidy

MEASURED = ROOT / "docs" / "measured"
FENCE = "```"


def _run(line: str, cwd: Path | None, expect: int, env: dict[str, str] | None = None) -> list[str]:
    code, text = output_of(line, cwd, env)
    if code != expect:
        # a page never shows a failure it did not mean to show, nor hides one it meant to
        raise SystemExit(f"{line!r} exited {code}, expected {expect}:\n{text}")
    return tidy(text, cwd)


def _cut(
    lines: list[str], head: int | None, grep: str | None, part: tuple[str, str] | None = None
) -> list[str]:
    if part is not None:
        # from the first line matching part[0] to the line before the next matching part[1]
        first = next(i for i, row in enumerate(lines) if re.search(part[0], row))
        last = next(
            (i for i in range(first + 1, len(lines)) if re.search(part[1], lines[i])),
            len(lines),
        )
        lines = lines[first:last]
    if grep is not None:
        kept = [row for row in lines if re.search(grep, row)]
        if len(kept) < len(lines):
            kept.append("...")
        lines = kept
    if head is not None and len(lines) > head:
        lines = lines[:head] + [f"... ({len(lines) - head} more lines)"]
    return lines


def command(
    line: str,
    *,
    expect: int = 0,
    head: int | None = None,
    grep: str | None = None,
    part: tuple[str, str] | None = None,
    cwd: Path | None = None,
) -> None:
    """``$ line`` and its output as a console block. ``head``: the first lines only (the
    block says how many more there were); ``grep``: only the lines matching it; ``part``:
    as in ``markdown``."""
    lines = _cut(_run(line, cwd, expect), head, grep, part)
    cog.outl(f"{FENCE}console\n$ {line}")
    for row in lines:
        cog.outl(row)
    cog.outl(FENCE)


def markdown(
    line: str, *, expect: int = 0, head: int | None = None, part: tuple[str, str] | None = None
) -> None:
    """A command that prints Markdown (``--format markdown``): the command, then its output
    as part of the page, so that its tables render as tables. ``part``: only the lines from
    one matching ``part[0]`` to the one before the next matching ``part[1]``."""
    lines = _cut(_run(line, None, expect), None, None, part)
    if head is not None and len(lines) > head:
        lines = lines[:head] + ["", f"({len(lines) - head} more lines)"]
    cog.outl(f"{FENCE}console\n$ {line}\n{FENCE}\n")
    cog.outl("\n".join(lines))


def session(
    lines: list[str],
    files: dict[str, str] | None = None,
    expect: list[int] | None = None,
    own_cache: bool = False,
) -> None:
    """Several commands run one after the other in a fresh folder holding ``files``
    (name -> text), shown as one console block; ``expect``: the exit code of each (0 by
    default), and ``$ echo $?`` lines show the last one. ``own_cache``: a result cache of
    the session's own, empty at its start (``$MBPROF_CACHE_DIR`` = ``./cache``)."""
    with tempfile.TemporaryDirectory(prefix="mbprof-docs-") as folder:
        cwd = Path(folder)
        env = {"MBPROF_CACHE_DIR": "cache"} if own_cache else None  # as the reader would type it
        for name, text in (files or {}).items():
            (cwd / name).parent.mkdir(parents=True, exist_ok=True)
            (cwd / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        codes = list(expect or [0] * len(lines))
        cog.outl(f"{FENCE}console")
        last = 0
        for line in lines:
            if line == "echo $?":
                cog.outl(f"$ echo $?\n{last}")
                continue
            code = codes.pop(0)
            cog.outl(f"$ {line}")
            for row in _run(line, cwd, code, env):
                cog.outl(row)
            last = code
        cog.outl(FENCE)


def show_file(text: str, name: str, language: str = "") -> None:
    """A file a session uses, shown as the reader would write it."""
    cog.outl(f"{FENCE}{language}\n# {name}\n{textwrap.dedent(text).strip()}\n{FENCE}")


def python(code: str, *, show: bool = True) -> None:
    """Run a Python snippet (``import mbprof`` ...); show it and what it printed, or with
    ``show=False`` only what it printed (a snippet that writes a Markdown table)."""
    code = textwrap.dedent(code).strip()
    status, text = output_of(f"python -c {_quote(code)}")
    if status != 0:
        raise SystemExit(f"snippet failed:\n{code}\n{text}")
    if not show:
        cog.outl(text.rstrip("\n"))
        return
    cog.outl(f"{FENCE}python\n{code}\n{FENCE}\n\nprints\n\n{FENCE}text")
    cog.outl("\n".join(tidy(text)))
    cog.outl(FENCE)


def _quote(code: str) -> str:
    return "'" + code.replace("'", "'\"'\"'") + "'"


def include(path: str, start: str | None = None, stop: str | None = None) -> None:
    """The part of a file (written by a command, such as ``reports/table4.md``) from the
    first line containing ``start`` up to the line before the one containing ``stop``."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    if start is not None:
        lines = lines[next(i for i, row in enumerate(lines) if start in row) :]
    if stop is not None:
        lines = lines[: next(i for i, row in enumerate(lines) if stop in row and i > 0)]
    cog.outl("\n".join(lines).strip("\n"))


def image(path: str, alt: str) -> None:
    """A figure a command wrote (``path`` from the repository root, such as
    ``reports/figures/top1_vs_madds.png``), copied under docs/img/ for the site and shown."""
    source, target = ROOT / path, ROOT / "docs" / "img" / Path(path).name
    if source != target:
        target.write_bytes(source.read_bytes())
    cog.outl(f"![{alt}](img/{target.name})")


def measured(name: str) -> None:
    """``docs/measured/NAME.md``, written by ``tools/measure.py`` on the machine it names."""
    cog.out((MEASURED / f"{name}.md").read_text(encoding="utf-8"))


def by_kind(name: str) -> None:
    """The "By kind" note of a measured ``bench --layers`` as a table, with each kind's
    share of the time spent in layers that have MAdds (the time outside any layer, batch
    norm and activations left out), beside its share of the MAdds."""
    text = (MEASURED / f"{name}.md").read_text(encoding="utf-8")
    note = next(row for row in text.splitlines() if row.startswith("- By kind: "))
    found = re.findall(
        r"([a-z ]+) \((\d+) layers?\): ([\d.]+)% of the time, ([\d.]+)% of the MAdds", note
    )
    kinds = [(k.strip(), int(n), float(t), float(m)) for k, n, t, m in found]
    counted = sum(t for _, _, t, m in kinds if m > 0)
    cog.outl(
        "| Layer kind | Layers | Share of all the time | Share of the time in layers with MAdds | Share of the MAdds |"
    )
    cog.outl("| --- | ---: | ---: | ---: | ---: |")
    for kind, layers, time_pct, madds_pct in kinds:
        in_layers = f"{100 * time_pct / counted:.1f}%" if madds_pct > 0 else "-"
        cog.outl(f"| {kind} | {layers} | {time_pct:.1f}% | {in_layers} | {madds_pct:.1f}% |")


def api_function(name: str) -> None:
    """One public function of ``mbprof`` that is made at import time (``profile``,
    ``memory``, ``bench``, ``compare``: from ``*_spec`` and ``prepare_*`` forms), which static
    analysis cannot document: its heading, signature and docstring, read from the imported
    function."""
    code = (
        "import inspect, mbprof\n"
        f"f = mbprof.{name}\n"
        "sig = inspect.signature(f)\n"
        "print(f.__name__ + '(')\n"
        "star = False\n"
        "for p in sig.parameters.values():\n"
        "    if p.kind is p.KEYWORD_ONLY and not star:\n"
        "        print('    *,'); star = True\n"
        "    note = '' if p.annotation is p.empty else f': {p.annotation}'\n"
        "    value = '' if p.default is p.empty else f' = {p.default!r}'\n"
        "    print(f'    {p.name}{note}{value},')\n"
        "print(f') -> {sig.return_annotation}')\n"
        "print('---')\n"
        "print(inspect.getdoc(f))\n"
    )
    status, text = output_of(f"python -c {_quote(code)}")
    if status != 0:
        raise SystemExit(f"mbprof.{name}: {text}")
    signature, doc = text.split("\n---\n", 1)
    cog.outl(f"### `{name}`\n\n{FENCE}python\nmbprof.{signature.strip()}\n{FENCE}\n")
    cog.outl(_rst_to_markdown(doc.strip()))


def _rst_to_markdown(doc: str) -> str:
    """Docstrings write code as ``x`` and examples after ``>>>``: Markdown's `x` and a
    code block."""
    out, example = [], False
    for row in doc.splitlines():
        if row.startswith(">>>") and not example:
            out.append(f"{FENCE}python")
            example = True
        elif example and not row.strip():
            out.append(FENCE)
            example = False
        out.append(row if example else row.replace("``", "`"))
    if example:
        out.append(FENCE)
    return "\n".join(out)
