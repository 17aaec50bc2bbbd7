"""Read a corpus directory back: summary, filtered samples, rejects and a self-contained HTML report.

Everything here reads only the columns it needs (Parquet column projection), so a summary of
gigabytes of shards never touches the `image` column; the HTML report decodes only the images it
shows, as small thumbnails. The corpus may be a local folder or any URL of :mod:`lait.storage`.
"""

from __future__ import annotations

import ast
import html
import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from lait import storage
from lait.filters.urls import url_host
from lait.pipeline.funnel import format_funnel
from lait.pipeline.output_dir import SUCCESS, TMP_PREFIX
from lait.pipeline.schema import COLUMN_NAMES, image_bytes, image_column_problem
from lait.pipeline.thumbnails import thumbnail_base64

SCORE_COLUMNS = [name for name in COLUMN_NAMES if name.endswith("score")]
SUMMARY_COLUMNS = ["width", "height", "text", "text_source", "page_url", "image_url", "n_pages", *SCORE_COLUMNS]
SAMPLE_COLUMNS = ["text", "text_source", "image_url", "page_url", "width", "height", *SCORE_COLUMNS]
QUANTILES = (0.0, 0.1, 0.5, 0.9, 1.0)


class CorpusError(ValueError):
    """The directory is not a lait corpus, or an expression is not understood."""


def read_manifest(directory: str) -> dict | None:
    """The `_SUCCESS` manifest `lait run` writes last (its `files`); None when it is missing or cut."""
    try:
        manifest = json.loads(storage.read_bytes(storage.join(directory, SUCCESS)))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("files"), list) else None


def _unfinished_runs(directory: str) -> list[str]:
    return storage.glob(storage.join(directory, TMP_PREFIX + "*"))


def corpus_warning(directory: str) -> str | None:
    """One line when `directory` holds shards that no finished run vouches for (no `_SUCCESS`)."""
    if not storage.isdir(directory) or read_manifest(directory) is not None:
        return None
    if not storage.glob(storage.join(directory, "shard-*.parquet")):
        return None
    if storage.glob(storage.join(directory, TMP_PREFIX + "*", "_COMMIT.json")):
        return (f"{directory} is half replaced: a run was stopped while it moved its corpus in "
                f"('lait run' with --output {directory} finishes the move)")
    return (f"{directory} has no {SUCCESS}: the run that wrote it did not finish (or an older lait wrote it), "
            "so it may be incomplete")


def shard_paths(directory: str) -> list[str]:
    """The corpus's shards: those its `_SUCCESS` lists, else (an unfinished corpus) every `shard-*.parquet`."""
    if storage.isfile(directory):
        raise CorpusError(f"{directory} is a file: give the --output folder of 'lait run'")
    manifest = read_manifest(directory)
    if manifest is not None:
        paths = [storage.join(directory, name) for name in manifest["files"]
                 if name.startswith("shard-") and name.endswith(".parquet")]
        present = set(storage.glob(storage.join(directory, "shard-*.parquet")))  # one listing, not one per shard
        missing = [path for path in paths if path not in present]
        if missing:
            raise CorpusError(f"{missing[0]} is listed in {SUCCESS} but missing: the corpus is damaged")
    else:
        paths = storage.glob(storage.join(directory, "shard-*.parquet"))
    if not paths:
        unfinished = _unfinished_runs(directory)
        if unfinished:
            raise CorpusError(f"no shards in {directory} yet: its run has not finished ('lait run --resume' "
                              "with the same inputs and options continues it)")
        raise CorpusError(f"no shard-*.parquet files in {directory}: run 'lait run --output {directory}' first")
    empty = [path for path in paths if storage.size(path) == 0]
    if empty:
        raise CorpusError(f"{empty[0]} is empty: a run was stopped while writing it; run 'lait run' again")
    return paths


def read_funnel(directory: str) -> dict | None:
    path = storage.join(directory, "_funnel.json")
    if not storage.isfile(path):
        return None
    return json.loads(storage.read_bytes(path))


def _quantiles(values: np.ndarray) -> dict:
    values = values[~np.isnan(values)]
    if not len(values):
        return {}
    return {f"p{int(q * 100)}": round(float(np.quantile(values, q)), 3) for q in QUANTILES} | {
        "mean": round(float(values.mean()), 3), "n": int(len(values))}


def _column(table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(float)


def summarize(directory: str, top: int = 10) -> dict:
    """Shard count, rows, bytes, funnel and the distributions of a corpus, from metadata and small columns."""
    paths = shard_paths(directory)
    table = storage.parquet_dataset(paths).to_table(columns=SUMMARY_COLUMNS)
    words = np.array([len((t or "").split()) for t in table.column("text").to_pylist()], dtype=float)
    n_pages = table.column("n_pages").to_numpy(zero_copy_only=False)
    funnel = read_funnel(directory)
    merged = None
    if funnel:
        aggregate = next((s for s in funnel["stages"] if s["name"] == "Aggregate"), {"dropped": {}})
        merged = aggregate["dropped"].get("duplicate_image", 0)
    return {
        "directory": directory,
        "shards": len(paths),
        "rows": sum(storage.parquet_file(p).metadata.num_rows for p in paths),
        "bytes": sum(storage.size(p) for p in paths),
        "funnel": funnel,
        "distributions": {
            "width": _quantiles(_column(table, "width")),
            "height": _quantiles(_column(table, "height")),
            "text_words": _quantiles(words),
            **{name: _quantiles(_column(table, name)) for name in SCORE_COLUMNS},
        },
        "text_sources": dict(Counter(table.column("text_source").to_pylist()).most_common()),
        "top_page_domains": dict(Counter(map(url_host, table.column("page_url").to_pylist())).most_common(top)),
        "top_image_domains": dict(Counter(map(url_host, table.column("image_url").to_pylist())).most_common(top)),
        "images_on_several_pages": int(np.nansum(np.asarray(n_pages, dtype=float) > 1)),
        "duplicate_pairs_merged": merged,
    }


def format_summary(summary: dict) -> str:
    lines = [f"{summary['directory']}: {summary['shards']} shards, {summary['rows']} rows, "
             f"{summary['bytes'] / 2**20:.1f} MiB"]
    if summary["funnel"]:
        lines += ["", format_funnel(summary["funnel"])]
    lines += ["", f"{'column':<22}" + "".join(f"{k:>9}" for k in ("min", "p10", "p50", "p90", "max", "mean"))]
    for name, q in summary["distributions"].items():
        if q:
            values = [q["p0"], q["p10"], q["p50"], q["p90"], q["p100"], q["mean"]]
            lines.append(f"{name:<22}" + "".join(f"{v:>9.3g}" for v in values))
    for title, key in (("text sources", "text_sources"), ("top page domains", "top_page_domains"),
                       ("top image domains", "top_image_domains")):
        counts = ", ".join(f"{k} {v}" for k, v in summary[key].items()) or "-"
        lines.append(f"{title}: {counts}")
    lines.append(f"images used on several pages: {summary['images_on_several_pages']}; "
                 f"duplicate pairs merged: {summary['duplicate_pairs_merged']}")
    return "\n".join(lines)


_COMPARE = {ast.Lt: "__lt__", ast.LtE: "__le__", ast.Gt: "__gt__", ast.GtE: "__ge__", ast.Eq: "__eq__", ast.NotEq: "__ne__"}


def parse_where(expression: str) -> ds.Expression:
    """A filter such as `score < 0.3 and text_source == "alt"` as a pyarrow expression (never `eval`)."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError as error:
        raise CorpusError(f"cannot read --where {expression!r}: {error.msg}") from None
    return _to_expression(tree, expression)


def _to_expression(node: ast.AST, source: str) -> ds.Expression:
    if isinstance(node, ast.BoolOp):
        parts = [_to_expression(v, source) for v in node.values]
        result = parts[0]
        for part in parts[1:]:
            result = (result & part) if isinstance(node.op, ast.And) else (result | part)
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ~_to_expression(node.operand, source)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        left, right = _operand(node.left, source), _operand(node.comparators[0], source)
        return getattr(left, _COMPARE[type(node.ops[0])])(right) if isinstance(left, ds.Expression) else \
            getattr(right, _COMPARE[_flip(type(node.ops[0]))])(left)
    raise CorpusError(f"cannot read --where {source!r}: use comparisons of columns and values joined by and/or/not")


def _flip(op: type) -> type:
    return {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}.get(op, op)


def _operand(node: ast.AST, source: str):
    if isinstance(node, ast.Name):
        if node.id not in COLUMN_NAMES:
            raise CorpusError(f"unknown column {node.id!r} in --where; columns: {', '.join(COLUMN_NAMES)}")
        return ds.field(node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return -node.operand.value
    raise CorpusError(f"cannot read --where {source!r}: compare a column with a number or a quoted string")


def sample_rows(directory: str, n: int, where: str | None = None, columns: list[str] | None = None) -> list[dict]:
    """The first `n` rows (in shard order) that match `where`."""
    dataset = storage.parquet_dataset(shard_paths(directory))
    condition = parse_where(where) if where else None
    try:
        return dataset.head(n, columns=columns or SAMPLE_COLUMNS, filter=condition).to_pylist()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise CorpusError(f"cannot apply --where {where!r}: {str(error).splitlines()[0]}") from None


def reject_reasons(directory: str) -> dict[str, str]:
    """`{reason: path}` of the reject samples, keyed by reason and by `STAGE.reason`."""
    found = {}
    for path in storage.glob(storage.join(directory, "_rejects", "*.jsonl")):
        stage_reason = path.replace("\\", "/").rsplit("/", 1)[-1][: -len(".jsonl")]
        found[stage_reason] = path
        found.setdefault(stage_reason.split(".", 1)[1], path)
    return found


def read_rejects(directory: str, reason: str, n: int | None = None) -> list[dict]:
    reasons = reject_reasons(directory)
    if reason not in reasons:
        known = sorted(r for r in reasons if "." not in r)
        raise CorpusError(f"no rejects with reason {reason!r}; reasons here: {', '.join(known) or 'none'}")
    entries = _jsonl(reasons[reason])
    return entries[:n] if n else entries


def _jsonl(path: str) -> list[dict]:
    return [json.loads(line) for line in storage.read_bytes(path).decode("utf-8").splitlines() if line.strip()]


def sample_with_images(directory: str, max_rows: int, rows_per_group: int = 8) -> list[dict]:
    """About `max_rows` rows spread over the corpus, with thumbnails; reads only the row groups it samples."""
    shards = {path: storage.parquet_file(path) for path in shard_paths(directory)}
    groups = [(path, i) for path, shard in shards.items() for i in range(shard.num_row_groups)]
    if not groups or max_rows <= 0:
        return []
    n_groups = min(len(groups), max(1, -(-max_rows // rows_per_group)))
    chosen = [groups[round(i * (len(groups) - 1) / max(1, n_groups - 1))] for i in range(n_groups)]
    rows = []
    for path, index in dict.fromkeys(chosen):
        shard = shards[path]
        problem = image_column_problem(path, shard.schema_arrow)
        if problem:
            raise CorpusError(problem)
        table = shard.read_row_group(index, columns=[*SAMPLE_COLUMNS, "image"])
        step = max(1, table.num_rows // rows_per_group)
        for row in table.slice(0).take(list(range(0, table.num_rows, step))[:rows_per_group]).to_pylist():
            row["thumbnail"] = thumbnail_base64(image_bytes(row))
            del row["image"]
            rows.append(row)
    return rows[:max_rows]


def _histogram_svg(title: str, q: dict, values: np.ndarray, bins: int = 20) -> str:
    values = values[~np.isnan(values)]
    if not len(values):
        return ""
    counts, edges = np.histogram(values, bins=bins)
    width, height, bar = 320, 120, 320 / bins
    top = counts.max() or 1
    bars = "".join(
        f'<rect x="{i * bar:.1f}" y="{height - 100 * c / top:.1f}" width="{bar - 1:.1f}" height="{100 * c / top:.1f}">'
        f"<title>{edges[i]:.3g} to {edges[i + 1]:.3g}: {c}</title></rect>" for i, c in enumerate(counts))
    return (f'<figure class="hist"><figcaption>{html.escape(title)} (median {q.get("p50", "-")}, n {q.get("n", 0)})'
            f'</figcaption><svg width="{width}" height="{height + 16}" role="img">{bars}'
            f'<text x="0" y="{height + 14}">{edges[0]:.3g}</text>'
            f'<text x="{width}" y="{height + 14}" text-anchor="end">{edges[-1]:.3g}</text></svg></figure>')


def _card(row: dict, fields: list[str]) -> str:
    image = (f'<img src="data:image/jpeg;base64,{row["thumbnail"]}" alt="">' if row.get("thumbnail")
             else '<div class="noimg">no image</div>')
    facts = "".join(f"<li>{html.escape(k)}: {html.escape(_short(row[k]))}</li>"
                    for k in fields if row.get(k) is not None)
    page = row.get("page_url") or row.get("url")
    link = f'<a href="{html.escape(page)}" rel="noreferrer">{html.escape(url_host(page))}</a>' if page else ""
    return (f'<div class="card">{image}<p class="text">{html.escape(row.get("text") or "")}</p>'
            f"<ul>{facts}</ul>{link}</div>")


def _short(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)[:200]


_STYLE = """body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}
td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}
.hists{display:flex;flex-wrap:wrap;gap:12px}.hist rect{fill:#4a7bb7}.hist text{font-size:10px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:6px;overflow:hidden}.card img{max-width:100%;display:block}
.card ul{margin:4px 0;padding-left:16px;font-size:12px;color:#555}.text{margin:4px 0}
.noimg{height:60px;background:#eee;color:#888;text-align:center;line-height:60px}"""


def write_html_report(directory: str, path: str, max_rows: int = 200, per_reason: int = 12) -> dict:
    """One self-contained HTML file: funnel, histograms, a gallery of kept pairs and one per drop reason."""
    summary = summarize(directory)
    table = storage.parquet_dataset(shard_paths(directory)).to_table(columns=SUMMARY_COLUMNS)
    words = np.array([len((t or "").split()) for t in table.column("text").to_pylist()], dtype=float)
    hists = [_histogram_svg("width", summary["distributions"]["width"], _column(table, "width")),
             _histogram_svg("height", summary["distributions"]["height"], _column(table, "height")),
             _histogram_svg("text length (words)", summary["distributions"]["text_words"], words)]
    hists += [_histogram_svg(name, summary["distributions"][name], _column(table, name)) for name in SCORE_COLUMNS]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>lait corpus report</title>"
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(directory)}</h1><p>{summary['shards']} shards, {summary['rows']} rows, "
             f"{summary['bytes'] / 2**20:.1f} MiB</p>"]
    if summary["funnel"]:
        rows = "".join(
            f"<tr><td>{s['name']}</td><td>{s['in']}</td><td>{s['out']}</td><td>"
            + ", ".join(f"{html.escape(r)} {n}" for r, n in s["dropped"].items()) + "</td></tr>"
            for s in summary["funnel"]["stages"])
        parts.append(f"<h2>Funnel</h2><table><tr><th>stage</th><th>in</th><th>out</th><th>dropped</th></tr>{rows}</table>")
    parts.append(f"<h2>Distributions</h2><div class='hists'>{''.join(hists)}</div>")
    kept = sample_with_images(directory, max_rows)
    parts.append(f"<h2>Kept pairs ({len(kept)} of {summary['rows']})</h2><div class='gallery'>"
                 + "".join(_card(r, ["score", "text_source", "width", "height", "natural_score"]) for r in kept)
                 + "</div>")
    shown = 0
    for reason, reject_path in reject_reasons(directory).items():
        if "." not in reason:
            continue
        entries = _jsonl(reject_path)[:per_reason]
        shown += len(entries)
        parts.append(f"<h2>Dropped: {html.escape(reason)}</h2><div class='gallery'>"
                     + "".join(_card(e, ["image_url", "detail", "score", "width", "height"]) for e in entries)
                     + "</div>")
    parts.append("</body></html>")
    page = "\n".join(parts).encode("utf-8")
    storage.write_bytes(path, page)
    return {"path": path, "kept_shown": len(kept), "rejects_shown": shown, "bytes": len(page)}
