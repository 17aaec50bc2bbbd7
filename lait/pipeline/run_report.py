"""Training curves of a `lait train` run folder, as text (`lait inspect RUN`) and as an HTML report.

    lait inspect runs/stage1                      # steps, last and best losses, a sparkline per curve
    lait inspect runs/stage1 --html report.html   # one inline-SVG chart per loss (training and validation),
                                                  # learning rate and throughput; no script, nothing from the net

The curves come from RUN/metrics.csv (written by :mod:`lait.imagebert.run_log`), or from RUN/log.jsonl
for a run of an older lait. RUN and the report may be URLs (`lait train --out s3://...`).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math

from lait import storage

METRICS_FILE, LOG_FILE = "metrics.csv", "log.jsonl"
NOT_CURVES = ("step", "stage")
THROUGHPUT = ("samples_per_s", "tokens_per_s", "mfu")
SPARKS = "▁▂▃▄▅▆▇█"
COLOURS = {"train": "#4a7bb7", "val": "#d95f02"}


def is_run_dir(path: str) -> bool:
    """True for a training run folder: metrics.csv or log.jsonl beside config.json or last.pt."""
    def has(name: str) -> bool:
        return storage.isfile(storage.join(path, name))

    return storage.isdir(path) and (has(METRICS_FILE) or has(LOG_FILE)) and (has("config.json") or has("last.pt"))


def _read_text(path: str) -> str:
    return storage.read_bytes(path).decode("utf-8")


def read_rows(run_dir: str) -> list[dict]:
    """The records of a run, oldest first: ``{"step": 10.0, "loss": 7.1, ...}`` (numbers only)."""
    rows = []
    path = storage.join(run_dir, METRICS_FILE)
    if storage.isfile(path):
        records = list(csv.DictReader(io.StringIO(_read_text(path), newline="")))
    else:
        lines = _read_text(storage.join(run_dir, LOG_FILE)).splitlines()
        records = [json.loads(line) for line in lines if line.strip().startswith("{")]
    for record in records:
        row = {}
        for key, value in record.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if key is not None and math.isfinite(number):
                row[key] = number
        if "step" in row:
            rows.append(row)
    return rows


def curves(rows: list[dict]) -> dict[str, tuple[list[float], list[float]]]:
    """``{name: (steps, values)}`` for every key of the records."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key not in NOT_CURVES:
                steps, values = out.setdefault(key, ([], []))
                steps.append(row["step"])
                values.append(value)
    return out


def _losses(found: dict) -> list[str]:
    """Loss names (training or validation), the total first."""
    names = {key[4:] if key.startswith("val_") else key for key in found}
    names -= {"lr", "grad_norm", *THROUGHPUT}
    return sorted(names, key=lambda name: (name != "loss", name))


def read_config(run_dir: str) -> dict:
    try:
        return json.loads(_read_text(storage.join(run_dir, "config.json")))
    except (OSError, ValueError):
        return {}


def sparkline(values: list[float], width: int = 32) -> str:
    """``▇▆▅▃▂▁``: `values` in `width` buckets (bucket means), lowest to highest."""
    if not values:
        return ""
    buckets = [values[i * len(values) // width:(i + 1) * len(values) // width] for i in range(width)]
    means = [sum(b) / len(b) for b in buckets if b]
    low, high = min(means), max(means)
    span = high - low or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int((m - low) / span * len(SPARKS)))] for m in means)


def summarize_run(run_dir: str) -> dict:
    """Steps, and for each curve its first, last and lowest value (JSON-ready)."""
    rows = read_rows(run_dir)
    config = read_config(run_dir)
    found = curves(rows)
    return {
        "run": run_dir, "stage": config.get("stage"), "steps": int(rows[-1]["step"]) if rows else 0,
        "max_steps": config.get("max_steps"), "records": len(rows),
        "curves": {name: {"first": _short(values[0]), "last": _short(values[-1]), "min": _short(min(values)),
                          "min_step": int(steps[values.index(min(values))]), "n": len(values)}
                   for name, (steps, values) in found.items()},
    }


def format_run_summary(run_dir: str) -> str:
    rows = read_rows(run_dir)
    summary = summarize_run(run_dir)
    found = curves(rows)
    lines = [f"{run_dir}: training run, stage {summary['stage']}, step {summary['steps']}"
             + (f" of {summary['max_steps']}" if summary["max_steps"] else "") + f", {len(rows)} records"]
    if not rows:
        return lines[0] + " (nothing logged yet)"
    names = [*_losses(found), "lr", "grad_norm", *THROUGHPUT]
    lines += ["", f"{'curve':<16}{'first':>10}{'last':>10}{'lowest':>10}  at step"]
    for loss in names:
        for name in ((loss, f"val_{loss}") if loss in _losses(found) else (loss,)):
            if name in found:
                c = summary["curves"][name]
                lines.append(f"{name:<16}{c['first']:>10.4g}{c['last']:>10.4g}{c['min']:>10.4g}  {c['min_step']:<8} "
                             + sparkline(found[name][1]))
    return "\n".join(lines)


def _short(value: float) -> float:
    return float(f"{value:.6g}")


# ---------------------------------------------------------------- charts


def _ticks(low: float, high: float, n: int = 5) -> list[float]:
    """About `n` round values from `low` to `high`."""
    if high <= low:
        return [low]
    raw = (high - low) / max(1, n - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def line_chart_svg(title: str, series: dict[str, tuple[list[float], list[float]]], width: int = 440,
                   height: int = 220) -> str:
    """An inline SVG chart of `series` (`{label: (steps, values)}`), with axes, ticks and a legend."""
    series = {label: xy for label, xy in series.items() if xy[0]}
    if not series:
        return ""
    left, right, top, bottom = 56, 12, 24, 34
    xs = [x for steps, _ in series.values() for x in steps]
    ys = [y for _, values in series.values() for y in values]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) or 1) * 0.05, y1 + (abs(y1) or 1) * 0.05
    x1 = x1 if x1 > x0 else x0 + 1
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * plot_h

    parts = [f'<figure class="chart"><figcaption>{html.escape(title)}</figcaption>'
             f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="plot"/>']
    for tick in _ticks(y0, y1):
        y = py(tick)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{tick:.4g}</text>')
    for tick in _ticks(x0, x1):
        x = px(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" class="axis"/>'
                     f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{tick:.6g}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 3}" text-anchor="middle">step</text>')
    for i, (label, (steps, values)) in enumerate(series.items()):
        colour = COLOURS.get(label, ("#4a7bb7", "#d95f02", "#1b9e77", "#7570b3")[i % 4])
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(steps, values))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5">'
                     f"<title>{html.escape(label)}: last {values[-1]:.4g} at step {steps[-1]:.6g}</title></polyline>")
        if len(steps) <= 60:
            parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2" fill="{colour}">'
                      f"<title>{html.escape(label)} step {x:.6g}: {y:.4g}</title></circle>" for x, y in zip(steps, values)]
        lx = left + 8 + i * 90
        parts.append(f'<line x1="{lx}" x2="{lx + 16}" y1="{top - 10}" y2="{top - 10}" stroke="{colour}" stroke-width="2"/>'
                     f'<text x="{lx + 20}" y="{top - 6}">{html.escape(label)}</text>')
    parts.append("</svg></figure>")
    return "".join(parts)


def run_charts(rows: list[dict]) -> list[str]:
    """One chart per loss (training and validation lines), then learning rate, gradient norm, throughput."""
    found = curves(rows)
    charts = []
    for loss in _losses(found):
        series = {kind: found[name] for kind, name in (("train", loss), ("val", f"val_{loss}")) if name in found}
        charts.append(line_chart_svg(f"{loss} loss" if loss != "loss" else "loss (all tasks)", series))
    for name, title in (("lr", "learning rate"), ("grad_norm", "gradient norm"),
                        ("samples_per_s", "samples per second"), ("tokens_per_s", "tokens per second"),
                        ("mfu", "model FLOPs utilisation")):
        if name in found:
            charts.append(line_chart_svg(title, {name: found[name]}))
    return [chart for chart in charts if chart]


CHART_STYLE = """.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0}.chart svg{font-size:10px;display:block}
.chart .plot{fill:#fafafa;stroke:#ccc}.chart .grid{stroke:#e4e4e4}.chart .axis{stroke:#999}
.chart figcaption{font-weight:600;margin-bottom:2px}"""


def write_run_report(run_dir: str, path: str) -> dict:
    """A self-contained HTML page of the run's curves; returns ``{path, charts, bytes}``."""
    rows = read_rows(run_dir)
    summary = summarize_run(run_dir)
    charts = run_charts(rows)
    config = read_config(run_dir)
    settings = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v))}</td></tr>"
                       for k, v in config.items() if not isinstance(v, dict))
    page = [
        "<!doctype html><html><head><meta charset='utf-8'><title>lait training report</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}"
        "td{padding:2px 8px;border-bottom:1px solid #eee}" + CHART_STYLE + "</style></head><body>",
        f"<h1>{html.escape(run_dir)}</h1><p>stage {summary['stage']}, step {summary['steps']}"
        + (f" of {summary['max_steps']}" if summary["max_steps"] else "") + f", {len(rows)} records</p>",
        "<h2>Curves</h2><div class='charts'>" + ("".join(charts) or "<p>nothing logged yet</p>") + "</div>",
        f"<h2>Settings</h2><table>{settings}</table>" if settings else "",
        "</body></html>",
    ]
    data = "\n".join(page).encode("utf-8")
    storage.write_whole(path, data)
    return {"path": path, "charts": len(charts), "bytes": len(data)}
