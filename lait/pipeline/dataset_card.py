"""The dataset card: `README.md` beside the shards, the file the Hugging Face Hub shows and reads.

Its YAML front matter is the Hub's dataset card metadata: the licence note (`license: other`:
the images and texts belong to their owners), languages, size category, `configs` (so that
`load_dataset("CORPUS_DIR")` reads the shards and nothing else of the folder) and
`dataset_info` with the features (`image: image`, the rest as in :mod:`lait.pipeline.schema`)
and the row count. The body says how to load the corpus, what the licence note means, how
the corpus was built (lait version, the command with its options) and the funnel.

The card holds nothing that changes between runs of the same inputs and options (no run id,
no time), so the same input gives the same card, as it gives the same shards.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex

import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from lait.pipeline.options import LaitOptions
from lait.pipeline.schema import COLUMNS, IMAGE_TYPE, columns_markdown

CARD = "README.md"
SHARDS = "shard-*.parquet"
# Options that change how a run goes, not what it writes: left out of the card's command.
NOT_ON_CARD = ("input", "output", "overwrite", "resume", "progress", "files_per_part")
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
LICENCE_NOTE = (
    "The images and texts in this corpus were collected from public web pages and belong to their "
    "owners: they keep their owners' copyright and licences, and lait grants no licence to them "
    "(hence `license: other`). Each row names where it came from (`image_url`, `page_url`): check "
    "that your use is allowed where you use it, and remove a pair when its owner asks."
)


def size_category(rows: int) -> str:
    return next((name for bound, name in SIZE_CATEGORIES if rows < bound), "n>1B")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _yaml(value) -> str:
    """A YAML scalar: JSON's string and number syntax is valid YAML."""
    return json.dumps(value, ensure_ascii=False)


def _feature_dtype(dtype) -> str:
    if dtype == IMAGE_TYPE:
        return "image"
    return {"float": "float32"}.get(str(dtype), str(dtype))


def front_matter(rows: int, languages: list[str], sizes: dict | None = None) -> str:
    """The card's YAML metadata (between `---` lines)."""
    lines = ["---", f"pretty_name: {_yaml('lait image-text corpus')}", "license: other",
             f"license_name: {_yaml('owners-of-the-images-and-texts')}"]
    if languages:
        lines += ["language:"] + [f"- {_yaml(code)}" for code in languages]
    lines += ["task_categories:", "- image-to-text", "- text-to-image",
              "size_categories:", f"- {_yaml(size_category(rows))}",
              "tags:", "- lait", "- image-text-pairs", "- web-crawl",
              "configs:", "- config_name: default", "  data_files:", "  - split: train", f"    path: {_yaml(SHARDS)}",
              "dataset_info:", "  features:"]
    for name, dtype, _ in COLUMNS:
        lines += [f"  - name: {name}", f"    dtype: {_feature_dtype(dtype)}"]
    sizes = sizes or {"num_bytes": 0, "download_size": 0}
    lines += ["  splits:", "  - name: train", f"    num_bytes: {sizes['num_bytes']}", f"    num_examples: {rows}",
              f"  download_size: {sizes['download_size']}", f"  dataset_size: {sizes['num_bytes']}", "---"]
    return "\n".join(lines)


def corpus_name(config: dict) -> str:
    """The output folder by its name only: the card travels with the corpus, wherever it is copied."""
    return os.path.basename(str(config.get("output") or "").rstrip("/\\")) or "corpus"


def command_line(config: dict, command: str) -> str:
    """`lait COMMAND --input ... --output ...` with every option whose value is not the default."""
    parser = argparse.ArgumentParser(add_help=False)
    LaitOptions._add_argparse_args(parser)
    words = ["lait", command, "--input", *(config.get("input") or []), "--output", corpus_name(config)]
    done = set(NOT_ON_CARD)
    for action in parser._actions:
        if action.dest in done or action.dest not in config or config[action.dest] == action.default:
            continue
        value = config[action.dest]
        if action.nargs == 0:  # a flag (--no-fetch): the one whose constant is the value
            if action.const != value:
                continue
            words.append(action.option_strings[0])
        else:
            words += [action.option_strings[0], " ".join(value) if isinstance(value, list) else str(value)]
        done.add(action.dest)
    return shlex.join(words)


def funnel_markdown(funnel: dict) -> str:
    lines = ["| stage | in | out | dropped (reasons) |", "| --- | ---: | ---: | --- |"]
    for stage in funnel.get("stages", []):
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(stage["dropped"].items(), key=lambda kv: -kv[1]))
        lines.append(f"| {stage['name']} | {stage['in']} | {stage['out']} | {reasons} |")
    return "\n".join(lines)


def shard_sizes(directory: str) -> dict:
    """`num_bytes` (uncompressed, from the Parquet footers) and `download_size` (file bytes) of the shards."""
    num_bytes = download_size = 0
    for metadata in FileSystems.match([FileSystems.join(directory, SHARDS)])[0].metadata_list:
        download_size += metadata.size_in_bytes
        with FileSystems.open(metadata.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            footer = pq.ParquetFile(f).metadata
            num_bytes += sum(footer.row_group(i).total_byte_size for i in range(footer.num_row_groups))
    return {"num_bytes": num_bytes, "download_size": download_size}


def card_text(funnel: dict, config: dict, command: str = "run", sizes: dict | None = None) -> str:
    """The card for a corpus with `funnel` (its `_funnel.json`) built with `config` (its `_run_config.json`).

    `sizes`: :func:`shard_sizes` of its shards, for the Hub's `dataset_info` (zeros when not given).
    """
    stages = funnel.get("stages") or []
    rows = stages[-1]["out"] if stages else 0
    languages = [c.strip() for c in (config.get("languages") or "").split(",") if c.strip()] if command == "run" else []
    name = corpus_name(config)
    body = f"""
# {name}: a lait image-text corpus

{rows} image-text pairs in `{SHARDS}` (Parquet), made by lait {config.get("lait", "unknown")} with
`lait {command}` ({"from web crawls" if command == "run" else "from published lists of image-text pairs"}).

## Loading

```python
from datasets import load_dataset
corpus = load_dataset("parquet", data_files="{name}/{SHARDS}", split="train")
corpus[0]["image"]   # a PIL image (the `image` column is an Image() feature)
```

`load_dataset("{name}", split="train")` reads the same files (this card's `configs`); pyarrow,
pandas and DuckDB read the shards as plain Parquet (`image` is a struct of `bytes` and `path`).

## Licence

{LICENCE_NOTE}

## How it was built

```
{command_line(config, command)}
```

{_count(len(config.get("input_files") or []), "input file")} (listed in `_run_config.json`, with every option of the
run). `_funnel.json` has the counts below and `_rejects/` a sample of the dropped records of each reason.

## Funnel

{funnel_markdown(funnel)}

## Columns

{columns_markdown()}
"""
    return front_matter(rows, languages, sizes) + "\n" + body


def write_card(directory: str, funnel: dict, config: dict, command: str = "run") -> str:
    """Write `DIRECTORY/README.md`; returns its path."""
    path = FileSystems.join(directory, CARD)
    with FileSystems.create(path, mime_type="text/markdown", compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(card_text(funnel, config, command, shard_sizes(directory)).encode("utf-8"))
    return path
