"""Does more image detail help the hard negatives? Image-text scores alone on Flickr8k dev. Writes JSON.

    python bench/bench_relevance_image_detail.py [--cache /tmp/lait_relevance_detail] [--json ...]

The relevance model's weak spot is the hard negative: a caption of another dev photo with the same
EfficientNet-Lite0 top-1 class (bench/bench_relevance_grouped.py: 0.827 grouped when this bench was
written; 0.850 since the detail, look-alike and word-grounding features). Its best single
feature is the learned projection's cosine of the pooled 224 px EfficientNet embedding and the
MiniLM caption embedding. This bench scores dev pairs (the pairs of `lait train-relevance
--evaluate_only`: own captions against a random and a hard other caption) with that cosine alone,
fitted on the 1,500 Flickr8k train photos only, for other image inputs:

- ``pooled_224``: the shipped input (the baseline);
- ``pooled_224_flip``: the mean of the embedding and that of the mirrored photo (test-time
  augmentation, the same at training);
- ``pooled_320``: the photo upsampled to 320 px (the shared photos are 224 px), a 10x10 map pooled;
- ``pooled_224_320``: the mean of the 224 and 320 px embeddings (multi-scale);
- ``pooled_224_320_flip``: the mean of 224, mirrored 224 and 320 px;
- ``grid_sentence``: the 7x7 feature map's cells and the pooled embedding as 50 regions, the
  caption attending over them (softmax of the cosines, temperature 1/10);
- ``grid_words``: SCAN text-to-image (Lee et al., 2018): each MiniLM token state attends over
  the 50 regions, the pair's score is the mean over tokens of the attended cosine;
- ``pooled_224+grid_words``: z-scored sum of the two (are they complementary?).

The projections are :class:`lait.scoring.relevance.ImageTextProjection` as shipped (rank 1024,
6 epochs); the attention models are trained the same way (symmetric InfoNCE, one caption per
photo and batch) at rank 512 / 256. Encodings are cached under --cache (about 0.5 GB).

Seen (bench/results/relevance_image_detail.json, hard / random AUC): the shipped input 0.800 /
0.961; upsampling to 320 px helps most (0.812 / 0.964), more than the mirrored mean (0.804) or
mixing scales (0.810); attention over the 7x7 cells does worse (sentence 0.774, words 0.781) and
adds nothing to the pooled cosine (0.798 together): with 1,500 train photos the cells do not learn
to align with words. Trained with same-class captions as extra in-batch negatives, or on random
crops of the 7x7 map, the pooled projection did not gain either (exploration, not in this bench).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_relevance_grouped import log, print_and_save  # noqa: E402
from lait.scoring import relevance_training as rt  # noqa: E402
from lait.scoring.relevance import ImageTextProjection  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results" / "relevance_image_detail.json"
CAPTIONS_PER_PHOTO = 5


def image_encodings(corpus: rt.Corpus, cache: Path) -> dict[str, np.ndarray]:
    """Per photo (corpus order): 7x7x1280 map at 224 px, pooled mirrored 224 px, pooled 320 px, class probs."""
    path = cache / "images.npz"
    if path.exists():
        with np.load(path) as d:
            return {k: d[k] for k in d.files}
    import torch
    from PIL import Image

    from lait.encoders.efficientnet import EfficientNetLite0

    model = EfficientNetLite0("cpu")
    parts: dict[str, list] = {"grid": [], "flip": [], "pooled_320": [], "probs": []}
    started = time.time()
    for start in range(0, len(corpus.images), 16):
        photos = [Image.open(corpus.image_dir / n).convert("RGB") for n in corpus.images[start : start + 16]]
        batch = model.preprocess(photos)
        grid = model.feature_map(batch)
        parts["grid"].append(grid.permute(0, 2, 3, 1).reshape(len(photos), -1, grid.shape[1]).half().numpy())
        parts["probs"].append(torch.softmax(model.classify_pooled(grid.mean(dim=(2, 3))), 1).numpy())
        parts["flip"].append(model.feature_map(torch.flip(batch, dims=[3])).mean(dim=(2, 3)).numpy())
        parts["pooled_320"].append(model.feature_map(model.preprocess(photos, size=320)).mean(dim=(2, 3)).numpy())
        log(f"  images {start + len(photos)}/{len(corpus.images)} ({time.time() - started:.0f} s)")
    out = {k: np.concatenate(v) for k, v in parts.items()}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def caption_encodings(captions: list[str], cache: Path) -> dict[str, np.ndarray]:
    """MiniLM sentence embeddings [N, 384] and token states (CLS and SEP dropped), flat with offsets."""
    path = cache / "captions.npz"
    if path.exists():
        with np.load(path) as d:
            return {k: d[k] for k in d.files}
    import torch

    from lait.encoders.minilm import MiniLMEncoder

    encoder = MiniLMEncoder("cpu")
    sentences, tokens = [], []
    with torch.inference_mode():
        for start in range(0, len(captions), 64):
            ids, mask = encoder._batch_tensors(captions[start : start + 64])
            hidden = encoder.model(ids, mask)
            weights = mask.unsqueeze(-1).float()
            sentences.append(torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=1).numpy())
            tokens += [hidden[r, 1 : int(mask[r].sum()) - 1].half().numpy() for r in range(len(ids))]
    out = {"sentence": np.concatenate(sentences), "tokens": np.concatenate(tokens),
           "offsets": np.concatenate([[0], np.cumsum([len(t) for t in tokens])])}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def padded_tokens(enc: dict[str, np.ndarray]):
    """Token states as a zero-padded tensor [N, L, 384] and its mask [N, L]."""
    import torch

    offsets = enc["offsets"]
    length = int(np.diff(offsets).max())
    states = torch.zeros(len(offsets) - 1, length, enc["tokens"].shape[1])
    mask = torch.zeros(len(offsets) - 1, length, dtype=torch.bool)
    for c in range(len(offsets) - 1):
        n = offsets[c + 1] - offsets[c]
        states[c, :n] = torch.from_numpy(enc["tokens"][offsets[c] : offsets[c + 1]].astype(np.float32))
        mask[c, :n] = True
    return states, mask


class GridAlignment:
    """Queries (the caption's sentence embedding, or its token states) attending over image regions.

    score = mean over queries q of sum_r softmax_r(lam * cos(q, r)) * cos(q, r), regions and queries
    mapped linearly into a shared space of size `rank`.
    """

    def __init__(self, rank: int, batch_size: int, epochs: int = 6, lam: float = 10.0, temperature: float = 0.05,
                 seed: int = 0):
        self.rank, self.batch_size, self.epochs = rank, batch_size, epochs
        self.lam, self.temperature, self.seed = lam, temperature, seed

    def scores(self, regions, queries, mask):
        """[I, C] scores of I images' regions [I, R, D] against C captions' queries [C, L, 384] (mask [C, L])."""
        import torch
        import torch.nn.functional as F

        zr = F.normalize(self.image_map(regions), dim=-1)
        zq = F.normalize(self.text_map(queries), dim=-1)
        sims = torch.einsum("ird,cld->iclr", zr, zq)  # [I, C, L, R]
        per_query = ((self.lam * sims).softmax(-1) * sims).sum(-1)
        weights = mask.float()[None]
        return (per_query * weights).sum(-1) / weights.sum(-1)

    def fit(self, regions, queries, mask, photo_captions: np.ndarray) -> GridAlignment:
        """regions [P, R, D] of P photos; photo_captions [P, 5] rows of `queries` / `mask`."""
        import torch
        import torch.nn.functional as F

        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.image_map = torch.nn.Linear(regions.shape[-1], self.rank, bias=False)
        self.text_map = torch.nn.Linear(queries.shape[-1], self.rank, bias=False)
        for layer in (self.image_map, self.text_map):
            torch.nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
        params = list(self.image_map.parameters()) + list(self.text_map.parameters())
        optimiser = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.05)
        for _ in range(self.epochs):
            order = rng.permutation(len(regions))
            for start in range(0, len(order), self.batch_size):
                photos = order[start : start + self.batch_size]
                captions = photo_captions[photos, rng.integers(CAPTIONS_PER_PHOTO, size=len(photos))]
                logits = self.scores(regions[photos], queries[captions], mask[captions]) / self.temperature
                target = torch.arange(len(photos))
                loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        return self

    def pair_scores(self, regions, queries, mask, image_index: np.ndarray, text_index: np.ndarray) -> np.ndarray:
        """Score of each pair (image_index[k], text_index[k]), one pair at a time in batches (no full matrix)."""
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(image_index), 512):
                ii, ti = image_index[start : start + 512], text_index[start : start + 512]
                out += [self.scores(regions[[i]], queries[[t]], mask[[t]])[0, 0].item() for i, t in zip(ii, ti)]
        return np.array(out, dtype=np.float32)


def projection_scores(train_emb: np.ndarray, train_captions: list[np.ndarray], image_emb: np.ndarray,
                      text_emb: np.ndarray, seed: int) -> np.ndarray:
    """The shipped projection's cosine of each pair (row k: image_emb[k] with text_emb[k])."""
    projection = ImageTextProjection(seed=seed).fit(train_emb, train_captions)
    return (projection.project_images(image_emb) * projection.project_texts(text_emb)).sum(1)


def aucs(dev: rt.PairSet, scores: np.ndarray) -> dict:
    kinds = np.array(dev.kinds)
    return {f"auc_{kind}": rt.roc_auc(dev.labels[sel], scores[sel])
            for kind in ("random", "hard") for sel in [(kinds == "positive") | (kinds == kind)]}


def zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/lait_relevance_detail"))
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.time()
    import torch

    from lait.encoders.efficientnet import IMAGENET_CLASSES
    from lait.scoring.relevance_features import load_imagenet_groups

    torch.set_num_threads(2)
    corpus = rt.load_corpus(SHARED / "captions", None)
    captions = [c for n in corpus.images for c in corpus.captions[n]]
    images, texts = image_encodings(corpus, args.cache), caption_encodings(captions, args.cache)
    image_rows = {n: i for i, n in enumerate(corpus.images)}
    text_rows = {c: k for k, c in enumerate(captions)}  # a caption repeated elsewhere: its last row, same text
    groups = load_imagenet_groups(list(IMAGENET_CLASSES))
    membership = np.zeros((len(IMAGENET_CLASSES), len(groups)), dtype=np.float32)
    for g, group in enumerate(groups):
        membership[list(group.members), g] = 1.0
    dev = rt.build_pairs(corpus, "dev", image_rows, text_rows, images["probs"], membership, [], args.seed + 1,
                         context=False)
    train = np.array([image_rows[n] for n in corpus.images if corpus.split[n] == "train"])
    train_captions = [texts["sentence"][[text_rows[c] for c in corpus.captions[corpus.images[i]]]] for i in train]
    pooled = images["grid"].astype(np.float32).mean(1)
    inputs = {"pooled_224": pooled, "pooled_224_flip": (pooled + images["flip"]) / 2,
              "pooled_320": images["pooled_320"], "pooled_224_320": (pooled + images["pooled_320"]) / 2,
              "pooled_224_320_flip": (pooled + images["flip"] + images["pooled_320"]) / 3}
    scores, results = {}, {}
    for name, emb in inputs.items():
        scores[name] = projection_scores(emb[train], train_captions, emb[dev.image_index],
                                         texts["sentence"][dev.text_index], args.seed)
        results[name] = aucs(dev, scores[name])
        log(f"  {name}: {results[name]} ({time.time() - started:.0f} s)")
    scale = pooled[train].std(0) + 1e-6
    regions = torch.from_numpy(((np.concatenate([pooled[:, None], images["grid"].astype(np.float32)], 1)
                                 - pooled[train].mean(0)) / scale).astype(np.float32))
    tokens, mask = padded_tokens(texts)
    sentence = torch.from_numpy(texts["sentence"])[:, None]
    sentence_mask = torch.ones(len(sentence), 1, dtype=torch.bool)
    photo_captions = np.array([[text_rows[c] for c in corpus.captions[corpus.images[i]]] for i in train])
    for name, queries, query_mask, rank, batch in (("grid_sentence", sentence, sentence_mask, 512, 128),
                                                   ("grid_words", tokens, mask, 256, 64)):
        model = GridAlignment(rank, batch, seed=args.seed)
        model.fit(regions[train], queries, query_mask, photo_captions)
        scores[name] = model.pair_scores(regions, queries, query_mask, dev.image_index, dev.text_index)
        results[name] = aucs(dev, scores[name])
        log(f"  {name}: {results[name]} ({time.time() - started:.0f} s)")
    results["pooled_224+grid_words"] = aucs(dev, zscore(scores["pooled_224"]) + zscore(scores["grid_words"]))
    result = {"bench": "relevance_image_detail", "seed": args.seed, "dev_pairs": len(dev.labels),
              "score": "one image-text score alone, no classifier", "variants": results,
              "seconds": round(time.time() - started, 1)}
    print_and_save(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
