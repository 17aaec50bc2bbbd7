"""Score how well a text describes an image with lait's relevance model.

Examples:
  lait score --image dog.jpg --text "A brown dog runs across the grass"
  lait score --batch pairs.jsonl > scores.jsonl
  lait score --image dog.jpg --text "..." --page_title "Our dogs" --model my_relevance.npz

One pair prints {"score": S, "top_features": [...]}: S in [0, 1] is the calibrated
probability that the text describes the image; top_features are the features that move
this score most when set to their training median (with the change they cause).
--batch reads JSON lines {"image": PATH, "text": ...} (optional keys: page_title,
image_url, text_source, alt, title) and prints one object per line, in input order; an
image path is taken as given, else relative to the batch file's folder. A line that
cannot be scored prints {"line": N, "error": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lait import progress
from lait.errors import UsageError
from lait.pipeline.checks import Number, model_file, readable_file
from lait.pipeline.commands._lines import json_lines

NAME = "score"
HELP = "score image-text relevance of one pair or a JSON-lines batch"
ORDER = 50

BATCH_SIZE = 64
PASSED_KEYS = ("page_title", "image_url", "text_source", "alt", "title", "figcaption", "context",
               "dominant_score", "natural_score", "nsfw_score")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", type=Path, help="image file (JPEG, PNG, WebP, GIF...)")
    parser.add_argument("--text", help="the text to score against --image")
    parser.add_argument("--page_title", default=None, help="title of the page the pair came from (optional)")
    parser.add_argument("--batch", type=Path, metavar="FILE.jsonl",
                        help='JSON lines {"image": PATH, "text": ...}; prints one result per line')
    parser.add_argument("--model", type=Path, default=None,
                        help="relevance model file (default: the model shipped with lait)")
    parser.add_argument("--top", type=Number(int, 0), default=5, help="how many top features to print (default 5)")


def _load(model_path: Path | None):
    from lait.scoring.relevance import RelevanceModel

    if model_path is None:
        model = RelevanceModel.load(None)
    else:
        model = model_file(model_path, "--model", RelevanceModel.load)
    return model, model.feature_extractor()


def _result(model, x, score: float, top: int) -> dict:
    out = {"score": round(float(score), 4)}
    if top > 0:
        out["top_features"] = model.top_features(x, k=top)
    return out


def _score_one(args: argparse.Namespace) -> int:
    if not args.image or args.text is None:
        raise UsageError("give --image FILE and --text TEXT, or --batch FILE.jsonl")
    readable_file(args.image, "--image")
    model, extractor = _load(args.model)
    pair = {"text": args.text, "image_bytes": args.image.read_bytes(), "image_url": args.image.name,
            "page_title": args.page_title}
    X = model.feature_matrix(extractor, [pair])
    if not extractor_decoded(X, model):
        print(f"lait score: warning: {args.image} could not be decoded as an image; "
              "the score uses the text alone", file=sys.stderr)
    print(json.dumps(_result(model, X[0], model.predict_proba(X)[0], args.top)))
    return 0


def extractor_decoded(X, model) -> bool:
    return bool(X[0, model.feature_names.index("image.decoded")] == 1.0)


def _read_batch(path: Path):
    for number, line in json_lines(str(path)):
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or "text" not in row or "image" not in row:
                raise ValueError('each line needs "image" and "text"')
            image = Path(row["image"])
            if not image.is_file() and (path.parent / image).is_file():
                image = path.parent / image
            pair = {"text": str(row["text"]), "image_bytes": image.read_bytes(),
                    "image_url": row.get("image_url") or image.name}
            pair.update({k: row[k] for k in PASSED_KEYS if k in row and k != "image_url"})
            yield number, pair, None
        except (ValueError, OSError) as error:
            yield number, None, str(error)


def _score_batch(args: argparse.Namespace) -> int:
    readable_file(args.batch, "--batch")
    model, extractor = _load(args.model)
    pending: list[tuple[int, dict]] = []

    def flush() -> None:
        X = model.feature_matrix(extractor, [p for _, p in pending])
        for (number, _), x, score in zip(pending, X, model.predict_proba(X)):
            bar.write(json.dumps({"line": number, **_result(model, x, score, args.top)}))
        bar.update(len(pending))
        pending.clear()

    with progress.Bar(desc="lait score", unit="pairs", leave=False) as bar:
        for number, pair, error in _read_batch(args.batch):
            if error is not None:
                flush() if pending else None
                bar.write(json.dumps({"line": number, "error": error}))
                continue
            pending.append((number, pair))
            if len(pending) >= BATCH_SIZE:
                flush()
        if pending:
            flush()
    return 0


def main(args: argparse.Namespace, extra: list[str]) -> int:
    if args.batch:
        if args.image or args.text is not None:
            raise UsageError("use either --batch or --image/--text, not both")
        return _score_batch(args)
    return _score_one(args)
