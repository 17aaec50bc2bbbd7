"""Zero-shot image and text retrieval with the ITM head (the ImageBERT paper's protocol).

Every text is scored against every image with the ITM head's log-odds of "matched"; each image
ranks all texts (text retrieval) and each text ranks all images (image retrieval); R@K is the
share of queries with a correct answer among the top K. On Flickr this is 1,000 images with
their 5 captions each (5,000 x 1,000 pairs).

The model is single-stream, so nothing is cached per modality: the cost is N_images x N_texts
forward passes. Batches hold one image with a block of texts (the image's regions are expanded,
not copied per text), texts are tokenised once and padded once.

>>> scores, owner = score_pairs(model, tokenizer, images, texts, owner)   # doctest: +SKIP
>>> recall_at_k(scores, owner)                                              # doctest: +SKIP
{'image_retrieval': {'R@1': ..., 'R@5': ..., 'R@10': ...}, 'text_retrieval': {...}}
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from lait import storage
from lait.imagebert.data import RegionsBlock, parquet_files, read_regions_meta, read_texts
from lait.imagebert.model import ImageBertConfig, ImageBertForPretraining
from lait.imagebert.train import load_checkpoint, tokenizer_from_vocab
from lait.progress import Bar

KS = (1, 5, 10)


def load_model(checkpoint: str | Path, device: torch.device) -> tuple[ImageBertForPretraining, object, dict]:
    """(model in eval mode on ``device``, its tokenizer, the checkpoint's training config)."""
    state = load_checkpoint(checkpoint)
    model = ImageBertForPretraining(ImageBertConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), tokenizer_from_vocab(state["vocab"]), state["config"]


def retrieval_set(corpus: str | Path, regions: str | Path, n_images: int, max_regions: int = 100,
                  texts_per_image: int = 0) -> tuple[list[dict], list[str], np.ndarray]:
    """The first ``n_images`` images (in regions-shard order) that have texts, and their texts.

    Returns ``(images, texts, owner)``: region rows, the texts (``texts_per_image`` each, 0 = all),
    and ``owner[j]``, the index of text ``j``'s image.
    """
    by_image = read_texts(corpus)
    meta = read_regions_meta(regions)
    widths = {"boxes": 5, "features": meta["feature_dim"], "label_probs": meta["num_labels"]}
    images, texts, owner = [], [], []
    for path in parquet_files(regions):
        parquet = storage.parquet_file(str(path))
        for rg in range(parquet.num_row_groups):
            block = RegionsBlock(parquet.read_row_group(rg, columns=["image_sha1", "boxes", "features", "labels"]),
                                 widths, max_regions)
            for i, sha1 in enumerate(block.sha1):
                if len(images) == n_images:
                    return images, texts, np.array(owner)
                own = by_image.get(sha1, [])[:texts_per_image or None]
                if own:
                    owner += [len(images)] * len(own)
                    texts += own
                    images.append(block.row(i))
    return images, texts, np.array(owner)


@torch.inference_mode()
def score_pairs(model: ImageBertForPretraining, tokenizer, images: list[dict], texts: list[str],
                max_text_len: int = 40, batch_size: int = 256, progress=None) -> np.ndarray:
    """ITM log-odds of every (image, text) pair: ``[n_images, n_texts]`` float32."""
    device = next(model.parameters()).device
    ids = [tokenizer.encode(t, max_length=max_text_len) for t in texts]
    length = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), length), tokenizer.pad_id, dtype=torch.long)
    for j, x in enumerate(ids):
        input_ids[j, :len(x)] = torch.tensor(x)
    text_mask = (input_ids != tokenizer.pad_id).to(device)
    input_ids = input_ids.to(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    scores = np.zeros((len(images), len(texts)), dtype=np.float32)
    for i, image in enumerate(images):
        features = torch.from_numpy(image["features"].astype(np.float32)).to(device)[None]
        boxes = torch.from_numpy(image["boxes"].astype(np.float32)).to(device)[None]
        region_mask = torch.ones(1, len(image["labels"]), dtype=torch.bool, device=device)
        for start in range(0, len(texts), batch_size):
            stop = min(start + batch_size, len(texts))
            b = stop - start
            with autocast:
                logits = model(input_ids[start:stop], text_mask[start:stop], features.expand(b, -1, -1),
                               boxes.expand(b, -1, -1), region_mask.expand(b, -1))["itm_logits"].float()
            scores[i, start:stop] = (logits[:, 1] - logits[:, 0]).cpu().numpy()
        if progress:
            progress(i + 1, len(images))
    return scores


def recall_at_k(scores: np.ndarray, owner: np.ndarray, ks=KS) -> dict[str, dict[str, float]]:
    """R@K of image retrieval (a text ranks the images) and text retrieval (an image ranks the texts)."""
    n_images = scores.shape[0]
    # image retrieval: rank of the true image among all images, per text
    true = scores[owner, np.arange(len(owner))]
    image_rank = (scores > true[None, :]).sum(axis=0)
    # text retrieval: best rank of any of the image's texts, per image
    order = np.argsort(-scores, axis=1, kind="stable")
    hits = owner[order] == np.arange(n_images)[:, None]
    text_rank = hits.argmax(axis=1)
    return {
        "image_retrieval": {f"R@{k}": float((image_rank < k).mean()) for k in ks},
        "text_retrieval": {f"R@{k}": float((text_rank < k).mean()) for k in ks},
    }


def chance_recall(n_images: int, texts_per_image: float, ks=KS) -> dict[str, dict[str, float]]:
    """R@K of random scores, to read the results against."""
    n_texts = n_images * texts_per_image
    # Past n_texts draws nothing is left to miss (and the next term would divide by zero).
    text = {f"R@{k}": 1 - float(np.prod([(n_texts - texts_per_image - i) / (n_texts - i)
                                         for i in range(min(k, int(n_texts)))]))
            for k in ks}
    return {"image_retrieval": {f"R@{k}": min(1.0, k / n_images) for k in ks}, "text_retrieval": text}


def format_table(metrics: dict, chance: dict | None = None) -> str:
    """Rows R@1, R@5, R@10; columns image retrieval and text retrieval (in %), chance beside."""
    header = f"{'':6} {'image retrieval':>16} {'text retrieval':>15}"
    if chance:
        header += f" {'chance (img/txt)':>18}"
    lines = [header]
    for k in metrics["image_retrieval"]:
        line = f"{k:6} {100 * metrics['image_retrieval'][k]:16.1f} {100 * metrics['text_retrieval'][k]:15.1f}"
        if chance:
            line += f" {100 * chance['image_retrieval'][k]:9.1f}/{100 * chance['text_retrieval'][k]:.1f}"
        lines.append(line)
    return "\n".join(lines)


def evaluate_retrieval(checkpoint: str | Path, corpus: str | Path, regions: str | Path, n_images: int = 1000,
                       texts_per_image: int = 0, batch_size: int = 256, device: str = "", log=print) -> dict:
    """Load, score all pairs, and return ``{image_retrieval, text_retrieval, chance, n_images, n_texts, seconds}``."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, tokenizer, config = load_model(checkpoint, device)
    images, texts, owner = retrieval_set(corpus, regions, n_images, config.get("max_regions", 100), texts_per_image)
    if not images:
        raise ValueError(f"no image of {regions} has a text in {corpus}")
    log(f"scoring {len(images)} images x {len(texts)} texts = {len(images) * len(texts)} pairs on {device.type}")
    start = time.perf_counter()
    with Bar(total=len(images) * len(texts), desc="lait eval-retrieval", unit="pairs", leave=False) as bar:
        scores = score_pairs(model, tokenizer, images, texts, config.get("max_text_len", 40), batch_size,
                             progress=lambda done, total: bar.update(len(texts)))
    seconds = time.perf_counter() - start
    metrics = recall_at_k(scores, owner)
    metrics["chance"] = chance_recall(len(images), len(texts) / len(images))
    metrics.update(n_images=len(images), n_texts=len(texts), seconds=round(seconds, 1),
                   pairs_per_s=round(scores.size / seconds, 1))
    return metrics
