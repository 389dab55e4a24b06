"""The results of a run as JSON, a Markdown table with the targets' ratios, and a chart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REQUIREMENTS = Path(__file__).resolve().parent / "requirements"
README = Path(__file__).resolve().parent.parent / "README.md"
README_START = "<!-- benchmark results: written by `make bench` -->"
README_END = "<!-- end of benchmark results -->"
PIN = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)")

COLUMNS = [
    ("enqueue_single", "enqueue 1 by 1 (jobs/s)", "{:,.0f}"),
    ("enqueue_bulk", "bulk enqueue (jobs/s)", "{:,.0f}"),
    ("drain_1x10", "drain, 1 proc × 10 (jobs/s)", "{:,.0f}"),
    ("drain_1x100", "drain, 1 proc × 100 (jobs/s)", "{:,.0f}"),
    ("drain_2x10", "drain, 2 procs × 10 (jobs/s)", "{:,.0f}"),
    ("drain_4x10", "drain, 4 procs × 10 (jobs/s)", "{:,.0f}"),
    ("busy_cores_1x10", "cores busy, 1 × 10", "{:.2f}"),
    ("busy_cores_2x10", "cores busy, 2 × 10", "{:.2f}"),
    ("latency_p50", "p50 (ms)", "{:.1f}"),
    ("latency_p95", "p95 (ms)", "{:.1f}"),
    ("latency_p99", "p99 (ms)", "{:.1f}"),
    ("worker_cpu_us", "worker CPU (µs/job)", "{:,.0f}"),
    ("server_cpu_us", "server CPU (µs/job)", "{:,.0f}"),
    ("server_ops", "server ops per job", "{:.2f}"),
    ("wal_bytes", "WAL (bytes/job)", "{:,.0f}"),
]
DRAINS = ["drain_1x10", "drain_1x100", "drain_2x10", "drain_4x10"]
SHAPE_COLUMNS = [
    ("drain_1x10{}", "jobs/s", "{:,.0f}"),
    ("worker_cpu_us{}", "worker CPU (µs/job)", "{:,.0f}"),
    ("server_ops{}", "server ops per job", "{:.2f}"),
    ("wal_bytes{}", "WAL (bytes/job)", "{:,.0f}"),
]
"""The table by job shape: each of these per shape, `{}` the shape's suffix."""
ENGINE_COST_US = 30
"""What queuekit's engine may cost per job beside the job's own work (memory backend)."""


def pinned_versions() -> dict[str, str]:
    """The versions of the peers, as pinned in benchmarks/requirements/."""
    versions = {}
    for path in sorted(REQUIREMENTS.glob("*.txt")):
        for line in path.read_text().splitlines():
            if match := PIN.match(line):
                versions[match[1]] = match[3]
    return versions


def write(document: dict[str, Any], directory: Path, name: str, update_readme: bool) -> list[Path]:
    """Write `name`.json, .md and .png under `directory`; put the table in the README if asked."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path, chart_path = (
        directory / f"{name}{ext}" for ext in (".json", ".md", ".png")
    )
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    chart(document, chart_path)
    markdown_path.write_text(markdown(document, chart_path.name) + "\n")
    written = [json_path, markdown_path, chart_path]
    if update_readme:
        image = chart_path.relative_to(README.parent).as_posix()
        section = markdown(document, image, heading_level=3)
        text = README.read_text()
        start, end = text.index(README_START) + len(README_START), text.index(README_END)
        README.write_text(f"{text[:start]}\n{section}\n{text[end:]}")
        written.append(README)
    return written


def _label(row: dict[str, Any]) -> str:
    """`library (server)`, or `library (server, setting)` for a row with a setting."""
    where = ", ".join(part for part in (row["server"], row.get("setting")) if part)
    return f"{row['library']} ({where})"


def _cell(row: dict[str, Any], measure: str, style: str) -> str:
    if measure in row["medians"]:
        return style.format(row["medians"][measure])
    error = row["errors"].get(measure) or row["errors"].get(_phase_of(measure))
    return f"✗ {_escape(error)}" if error else "—"


def _phase_of(measure: str) -> str:
    if measure.startswith("latency"):
        return "latency"
    if measure.startswith("busy_cores_"):
        return "drain_" + measure.removeprefix("busy_cores_")
    for figure in ("worker_cpu_us", "server_cpu_us", "server_ops", "wal_bytes"):
        if measure.startswith(figure):
            return "drain_1x10" + measure.removeprefix(figure)
    return measure


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _accounting(row: dict[str, Any]) -> str:
    duplicates = sum(a["duplicates"] for a in row["accounting"].values())
    missing = sum(a["missing"] for a in row["accounting"].values())
    return f"{duplicates} / {missing}"


def markdown(document: dict[str, Any], image: str, heading_level: int = 2) -> str:
    """The results table, the references, and each target as met or as the gap."""
    h = "#" * heading_level
    machine, servers = document["machine"], document["servers"]
    settings = document["settings"]
    lines = [
        f"{h} Benchmark results",
        "",
        f"Run {document['started_at']} at commit `{document['commit']}`"
        f"{' (quick)' if document['quick'] else ''}, {document['seconds'] // 60} min; "
        f"{machine['cpu']}, {machine['memory']}, {machine['os']}, Python {machine['python']}; "
        f"{servers['postgres']}, {servers['redis']}, all on the same machine.",
        "",
        f"Medians of {settings['repetitions']} repetitions. "
        f"Drains: {settings['drain_jobs']:,} jobs queued before the workers start, together "
        "once each has loaded its library. "
        f"Latency: {settings['latency_jobs']} jobs enqueued "
        f"{settings['spacing_ms']:g} ms apart to an idle worker, enqueue to job start. Every job "
        "writes the same probe line; duplicates / missing count those lines over every phase. "
        f"Then it does the run's job shape, {_shape_text(settings['shape'])}. Server ops: "
        "PostgreSQL's transactions per job (each a round trip), or Redis's commands per job "
        "(the commands its scripts run included), the job's own PING left out. Cores busy: "
        "the machine's busy CPU time over the drain's wall time, every process on it "
        "counted (workers, servers, the run itself).",
        "",
        "| library (server) | "
        + " | ".join(title for _, title, _ in COLUMNS)
        + " | duplicates / missing |",
        "|---|" + "---:|" * (len(COLUMNS) + 1),
    ]
    for row in document["rows"]:
        label = _label(row)
        if row["reference"]:
            label = f"*reference: {label}*"
        cells = [_cell(row, measure, style) for measure, _, style in COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_accounting(row)} |")
    lines += _by_shape(document)
    lines += ["", f"![Drain throughput and latency per library]({image})", ""]
    redis = document["references"].get("redis-benchmark", {})
    if "error" in redis:
        lines.append(f"`redis-benchmark`: {redis['error']}")
    elif redis:
        figures = ", ".join(f"{command} {rate:,.0f}" for command, rate in redis.items())
        lines.append(f"`redis-benchmark` (10 clients, no pipelining), requests/s: {figures}.")
    lines += ["", f"{h}# Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [
        f"| {target} | {measured} | {'yes' if met else '**no**'} |"
        for target, measured, met in targets(document)
    ]
    versions = ", ".join(f"{name} {version}" for name, version in document["versions"].items())
    lines += ["", f"Versions: {versions}."]
    return "\n".join(lines)


def _shape_text(shape: str) -> str:
    return {
        "noop": "nothing (`noop`)",
        "io": "one Redis PING awaited (`io`), as a real job awaits a database or an API",
        "cpu": "1 ms of CPU (`cpu`)",
    }[shape]


def _shapes(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Each shape of the run with the suffix of its measures (none for the run's own)."""
    settings = document["settings"]
    shapes = [(settings["shape"], "")]
    return shapes + [(shape, f"_{shape}") for shape in settings.get("other_shapes", ())]


def _by_shape(document: dict[str, Any]) -> list[str]:
    """The table by job shape (1 process × 10) with the job bodies' own CPU, when the run
    drained more than one shape."""
    shapes = _shapes(document)
    if len(shapes) < 2:
        return []
    heads = [f"{shape}: {title}" for shape, _ in shapes for _, title, _ in SHAPE_COLUMNS]
    lines = [
        "",
        "By job shape, 1 process × 10: "
        + "; ".join(f"`{shape}` is {_shape_text(shape)}" for shape, _ in shapes)
        + ".",
        "",
        "| library (server) | " + " | ".join(heads) + " |",
        "|---|" + "---:|" * len(heads),
    ]
    for row in document["rows"]:
        cells = [
            _cell(row, measure.format(suffix), style)
            for _, suffix in shapes
            for measure, _, style in SHAPE_COLUMNS
        ]
        lines.append(f"| {_label(row)} | " + " | ".join(cells) + " |")
    bodies = document["references"].get("job body CPU (µs/job)", {})
    if bodies:
        figures = ", ".join(f"{shape} {cost:,.0f}" for shape, cost in bodies.items())
        lines += [
            "",
            f"The job bodies alone, 10 at a time in one process, CPU µs per job: {figures}.",
        ]
    return lines


def _median(row: dict[str, Any] | None, measure: str) -> float | None:
    return None if row is None else row["medians"].get(measure)


def targets(document: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """Each target of the benchmark issue, with the measured ratio and whether it was met."""
    rows = {row["key"]: row for row in document["rows"]}

    def peers(server: str) -> list[dict[str, Any]]:
        return [
            row
            for row in document["rows"]
            if row["server"] == server and row["library"] != "queuekit" and not row["reference"]
        ]

    postgres_peers = peers("postgres")
    for server, whom, rivals, factor in (
        ("postgres", "pgqueuer", [r for r in postgres_peers if r["library"] == "pgqueuer"], 2.0),
        (
            "postgres",
            "every other peer",
            [r for r in postgres_peers if r["library"] != "pgqueuer"],
            3.0,
        ),
        ("redis", "the fastest peer", peers("redis"), 3.0),
    ):
        ours = rows.get(f"queuekit-{server}")
        for drain in DRAINS:
            mine = _median(ours, drain)
            best = max(rivals, key=lambda r: r["medians"].get(drain, 0), default=None)
            theirs = _median(best, drain)
            if mine is None or best is None or not theirs:
                continue
            ratio = mine / theirs
            yield (
                f"{server} {drain}: ≥ {factor:g}× {whom}",
                f"{ratio:.2f}× ({mine:,.0f} vs {best['library']} {theirs:,.0f})",
                ratio >= factor,
            )
    raw = _median(rows.get("asyncpg-batched"), "drain_1x10")
    mine_pg = _median(rows.get("queuekit-postgres"), "drain_1x10")
    if raw and mine_pg:
        yield (
            "postgres drain_1x10: ≥ 50% of the raw batched SKIP LOCKED loop",
            f"{mine_pg / raw:.0%} ({mine_pg:,.0f} vs {raw:,.0f})",
            mine_pg / raw >= 0.5,
        )
    for server in ("postgres", "redis"):
        ours = rows.get(f"queuekit-{server}")
        p50, p99 = _median(ours, "latency_p50"), _median(ours, "latency_p99")
        if p50 is not None:
            best = min(
                peers(server), key=lambda r: r["medians"].get("latency_p50", 1e9), default=None
            )
            theirs = _median(best, "latency_p50")
            if best is not None and theirs is not None:
                yield (
                    f"{server} p50 latency below every peer",
                    f"{p50:.2f} ms vs {best['library']} {theirs:.2f} ms",
                    p50 < theirs,
                )
        if p99 is not None:
            yield (f"{server} p99 latency under 10 ms", f"{p99:.2f} ms", p99 < 10)
        for measure, factor, what in (
            ("enqueue_single", 1.0, "enqueue 1 by 1: ≥ every peer"),
            ("enqueue_bulk", 2.0, "bulk enqueue: ≥ 2× the best peer bulk API"),
        ):
            mine = _median(ours, measure)
            best = max(peers(server), key=lambda r: r["medians"].get(measure, 0), default=None)
            theirs = _median(best, measure)
            if mine is not None and best is not None and theirs:
                yield (
                    f"{server} {what}",
                    f"{mine / theirs:.2f}× ({mine:,.0f} vs {best['library']} {theirs:,.0f})",
                    mine / theirs >= factor,
                )
    for server in ("postgres", "redis"):
        mine = _median(rows.get(f"queuekit-{server}"), "worker_cpu_us")
        best = min(
            peers(server), key=lambda r: r["medians"].get("worker_cpu_us", 1e12), default=None
        )
        theirs = _median(best, "worker_cpu_us")
        if mine is not None and best is not None and theirs is not None:
            yield (
                f"{server} worker CPU per job below every peer's",
                f"{mine:,.0f} µs vs {best['library']} {theirs:,.0f} µs",
                mine < theirs,
            )
    server_cpu = _median(rows.get("queuekit-postgres"), "server_cpu_us")
    if server_cpu is not None:
        yield ("postgres server CPU per job ≤ 100 µs", f"{server_cpu:,.0f} µs", server_cpu <= 100)
    bodies = document["references"].get("job body CPU (µs/job)", {})
    for shape, suffix in _shapes(document):
        worker = _median(rows.get("queuekit-memory"), f"worker_cpu_us{suffix}")
        if worker is not None and shape in bodies:
            engine = worker - bodies[shape]
            yield (
                f"engine's own cost (memory backend), {shape} jobs: ≤ {ENGINE_COST_US} µs/job",
                f"{engine:,.0f} µs ({worker:,.0f} µs less the body's {bodies[shape]:,.0f})",
                engine <= ENGINE_COST_US,
            )
    bad = [
        f"{row['key']} {phase}: {a['duplicates']} duplicates, {a['missing']} missing"
        for row in document["rows"]
        for phase, a in row["accounting"].items()
        if a["duplicates"] or a["missing"]
    ]
    yield (
        "exactly once in every phase",
        "; ".join(bad) if bad else "0 duplicates, 0 missing",
        not bad,
    )


def chart(document: dict[str, Any], path: Path) -> None:
    """Drain throughput (1 process × 10) and latency p50/p99 per row, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [
        row
        for row in document["rows"]
        if "drain_1x10" in row["medians"] or "latency_p50" in row["medians"]
    ]
    labels = [_label(row) for row in rows]
    colors = ["#2b6cb0" if row["library"] == "queuekit" else "#a0aec0" for row in rows]
    figure, (drain_axes, latency_axes) = plt.subplots(
        1, 2, figsize=(13, 0.45 * len(rows) + 1.6), sharey=True
    )
    positions = list(range(len(rows)))
    drains = [row["medians"].get("drain_1x10", 0) for row in rows]
    drain_axes.barh(positions, drains, color=colors)
    drain_axes.bar_label(drain_axes.containers[0], fmt="{:,.0f}", padding=3, fontsize=8)
    drain_axes.set_title("Drain, 1 process × 10 (jobs/s, higher is better)")
    drain_axes.set_yticks(positions, labels)
    drain_axes.invert_yaxis()
    for offset, (measure, shade) in enumerate((("latency_p50", 1.0), ("latency_p99", 0.45))):
        values = [row["medians"].get(measure, 0) for row in rows]
        bars = latency_axes.barh(
            [p - 0.2 + 0.4 * offset for p in positions],
            values,
            height=0.4,
            color=colors,
            alpha=shade,
            label=measure.removeprefix("latency_"),
        )
        texts = [f"{value:.1f}" if value else "" for value in values]
        latency_axes.bar_label(bars, labels=texts, padding=3, fontsize=8)
    latency_axes.set_title("Enqueue to start at low load (ms, lower is better)")
    latency_axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
