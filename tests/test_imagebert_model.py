"""ImageBERT model, tasks and data: HF loading, conditional mask, regions format, stream sharding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lait.encoders.bert import BertConfig, BertModel, load_hf_checkpoint
from lait.encoders.minilm import minilm_model_dir
from lait.encoders.wordpiece import WordPieceTokenizer
from lait.imagebert import tasks
from lait.imagebert.data import IGNORE_INDEX, PairStream, RegionsBlock, regions_table, write_regions_shard
from lait.imagebert.model import ImageBertForPretraining, load_text_weights, preset_config
from tests.conftest import shared_path
from tests.imagebert_fixtures import flickr_captions, write_pairs, write_small_vocab


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    captions = flickr_captions(shared_path("captions", "captions.tsv"), images=24)
    corpus, regions = write_pairs(root, captions, with_label_probs=True)
    vocab = write_small_vocab(root / "vocab.txt", [t for texts in captions.values() for t in texts])
    return corpus, regions, WordPieceTokenizer.from_vocab_file(vocab)


def test_minilm_weights_load_with_no_missing_encoder_keys():
    model = ImageBertForPretraining(preset_config("minilm", feature_dim=32, num_labels=10))
    report = load_text_weights(model, minilm_model_dir())
    assert report["missing"] == []
    assert any(k.startswith("bert.encoder.layer.5.") for k in report["loaded"])
    assert report["unused"] == []
    # the text side computes exactly what the plain BERT computes with the same weights
    config, state = load_hf_checkpoint(minilm_model_dir())
    bert = BertModel(BertConfig.from_hf_config(config), add_pooler=True)
    bert.load_hf_state_dict(state)
    ids = torch.tensor([[101, 1037, 3899, 3216, 2006, 1996, 5568, 102]])
    mask = torch.ones_like(ids, dtype=torch.bool)
    model.eval(), bert.eval()
    with torch.no_grad():
        ours = model.bert.encoder(model.bert.embeddings(ids), mask)
        assert torch.allclose(ours, bert(ids, mask), atol=1e-5)


def test_image_tokens_share_one_position_and_segment_one():
    torch.manual_seed(0)
    model = ImageBertForPretraining(preset_config("tiny", feature_dim=8, num_labels=5)).eval()
    features, boxes = torch.randn(1, 3, 8), torch.rand(1, 3, 5)
    embed = model.bert.image_embeddings
    segment = model.bert.embeddings.token_type_embeddings.weight[1]
    # a region's embedding depends only on its own feature and box: reordering regions permutes outputs
    out = embed(features, boxes, segment)
    perm = torch.tensor([2, 0, 1])
    assert torch.allclose(embed(features[:, perm], boxes[:, perm], segment), out[:, perm], atol=1e-6)


def _batch(tokenizer, b=6, r=5, d=8, same_image=()):
    texts = ["a black dog runs across the green grass", "two children play in the water at the beach",
             "a man rides a bike down the street", "a girl in a red shirt is jumping",
             "people walk in the snow", "a brown dog catches a ball in a field"][:b]
    ids = [tokenizer.encode(t, max_length=16) for t in texts]
    t = max(map(len, ids))
    input_ids = torch.full((b, t), tokenizer.pad_id)
    for i, x in enumerate(ids):
        input_ids[i, :len(x)] = torch.tensor(x)
    keys = torch.arange(b)
    for i, j in same_image:
        keys[j] = keys[i]
    return {"input_ids": input_ids, "text_mask": input_ids != tokenizer.pad_id, "features": torch.randn(b, r, d),
            "boxes": torch.rand(b, r, 5), "region_mask": torch.ones(b, r, dtype=torch.bool),
            "labels": torch.randint(0, 4, (b, r)), "image_key": keys}


def test_conditional_mask_gives_negative_pairs_no_masked_loss(pairs):
    _, _, tokenizer = pairs
    torch.manual_seed(0)
    config = tasks.TaskConfig(mlm_prob=0.5, moc_prob=0.5, itm_neg_ratio=1.0)
    batch = _batch(tokenizer)
    prepared = tasks.prepare(batch, config, tasks.SpecialIds.of(tokenizer), torch.Generator().manual_seed(1))
    b, t, r = 6, prepared["input_ids"].shape[1], prepared["features"].shape[1]
    matched = prepared["itm_labels"].bool()
    assert matched[:b].all() and not matched[b:].any() and len(matched) == 2 * b
    # negative rows are masked like the others, but carry no target
    assert (prepared["input_ids"][b:] == tokenizer.mask_id).any()
    assert (prepared["mlm_index"] // t < b).all() and (prepared["region_index"] // r < b).all()
    model = ImageBertForPretraining(preset_config("tiny", feature_dim=8, num_labels=4,
                                                  vocab_size=tokenizer.vocab_size)).eval()
    features = prepared["features"].clone().requires_grad_(True)
    outputs = model(**{**tasks.model_inputs(prepared), "features": features})
    losses = tasks.pretraining_losses(outputs, prepared, config)
    (losses["mlm"] + losses["moc"] + losses["mrfr"]).backward()
    assert features.grad[:b].abs().sum() > 0
    assert features.grad[b:].abs().sum() == 0  # rows attend only within themselves: negatives contribute nothing


def test_all_negative_batch_has_zero_masked_losses(pairs):
    _, _, tokenizer = pairs
    config = tasks.TaskConfig(mlm_prob=0.5, moc_prob=0.5)
    prepared = tasks.prepare(_batch(tokenizer), config, tasks.SpecialIds.of(tokenizer), torch.Generator().manual_seed(2))
    keep = ~prepared["itm_labels"].bool()  # drop the positives: what is left are negatives only
    b, t, r = len(keep), prepared["input_ids"].shape[1], prepared["features"].shape[1]
    rows = keep.nonzero().squeeze(1)
    only_negative = {k: prepared[k][rows] for k in ("input_ids", "text_mask", "features", "boxes", "region_mask",
                                                    "itm_labels")}
    empty = torch.zeros(0, dtype=torch.long)
    only_negative.update(mlm_index=empty, region_index=empty, mlm_targets=empty, moc_labels=empty,
                         mrfr_targets=torch.zeros(0, 8))
    assert b == 12 and t > 0 and r == 5
    model = ImageBertForPretraining(preset_config("tiny", feature_dim=8, num_labels=4,
                                                  vocab_size=tokenizer.vocab_size))
    losses = tasks.pretraining_losses(model(**tasks.model_inputs(only_negative)), only_negative, config)
    assert losses["mlm"] == 0 and losses["moc"] == 0 and losses["mrfr"] == 0
    assert losses["itm"] > 0 and torch.isfinite(losses["loss"])


def test_itm_negative_sharing_the_image_counts_as_match(pairs):
    _, _, tokenizer = pairs
    batch = _batch(tokenizer, b=2, same_image=[(0, 1)])  # two captions of one image
    image, text, matched = tasks.itm_pairs(batch["image_key"], 1.0, torch.Generator().manual_seed(0))
    assert (image[2:] != text[2:]).all() and matched.all()


def test_mlm_masking_follows_80_10_10(pairs):
    _, _, tokenizer = pairs
    ids = torch.randint(5, tokenizer.vocab_size, (200, 50))
    masked, targets = tasks.mask_text(ids, torch.ones_like(ids, dtype=torch.bool), tasks.SpecialIds.of(tokenizer),
                                      0.15, torch.Generator().manual_seed(0))
    chosen = targets != IGNORE_INDEX
    assert 0.13 < chosen.float().mean() < 0.17
    as_mask = (masked[chosen] == tokenizer.mask_id).float().mean()
    unchanged = (masked[chosen] == ids[chosen]).float().mean()
    assert 0.76 < as_mask < 0.84 and 0.07 < unchanged < 0.14
    assert (masked[~chosen] == ids[~chosen]).all()


def test_regions_shard_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    records = [{"image_sha1": f"{i:040x}", "boxes": rng.uniform(size=(n, 5)), "features": rng.normal(size=(n, 6)),
                "labels": rng.integers(0, 9, n), "label_probs": rng.dirichlet(np.ones(9), n)}
               for i, n in enumerate([3, 0, 7])]
    write_regions_shard(tmp_path / "r.parquet", records)
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "r.parquet")
    assert table.column("num_regions").to_pylist() == [3, 0, 7]
    assert table.schema.field("features").type.value_type == "halffloat"
    block = RegionsBlock(table, {"boxes": 5, "features": 6, "label_probs": 9}, max_regions=5)
    row = block.row(2)
    assert row["features"].shape == (5, 6) and row["label_probs"].shape == (5, 9)  # truncated to max_regions
    np.testing.assert_allclose(row["features"], records[2]["features"][:5], atol=2e-3)
    np.testing.assert_allclose(row["boxes"], records[2]["boxes"][:5], rtol=1e-6)
    assert block.row(1)["features"].shape == (0, 6)
    assert regions_table(records[:1]).num_rows == 1


def test_stream_deals_disjoint_equal_shares_to_ranks_and_workers(pairs):
    corpus, regions, tokenizer = pairs
    streams = [PairStream(corpus, regions, tokenizer, batch_size=4, max_text_len=16, max_regions=16, rank=rank,
                          world_size=2, num_workers=2, unit_rows=2, shuffle_buffer=8) for rank in range(2)]
    plans = [streams[0].plan(epoch=0, worker=g) for g in range(4)]
    assert len({len(p) for p in plans}) == 1 and len(plans[0]) > 0  # equal batches per worker
    seen = [tuple(s) for p in plans for s in p]
    assert len(seen) == len(set(seen))  # no sample twice
    assert streams[1].plan(0, 3).tolist() == plans[3].tolist()  # the plan does not depend on who computes it
    assert plans[0].tolist() != streams[0].plan(epoch=1, worker=0).tolist()  # another order each epoch
    batch = next(iter(streams[1]))
    assert batch["input_ids"].shape[0] == 4 and batch["input_ids"][:, 0].eq(tokenizer.cls_id).all()
    assert batch["features"].shape[2] == 32 and "label_probs" in batch


def test_every_epoch_gives_every_worker_its_full_share(pairs, tmp_path):
    # Images with 1 to 5 captions: a later epoch's draw of units can give a worker fewer samples
    # than epoch 0 did (which fixes the epoch's length); its stream must still fill every batch.
    _, _, tokenizer = pairs
    captions = flickr_captions(shared_path("captions", "captions.tsv"), images=24)
    uneven = {image: texts[: 1 + i % 5] for i, (image, texts) in enumerate(sorted(captions.items()))}
    corpus, regions = write_pairs(tmp_path, uneven)
    stream = PairStream(corpus, regions, tokenizer, batch_size=1, max_text_len=16, max_regions=16, rank=0,
                        world_size=1, num_workers=2, unit_rows=1, shuffle_buffer=4)
    share = stream.batches_per_epoch * stream.batch_size
    assert all(len(stream.plan(epoch, g)) == share for epoch in range(10) for g in range(2))
    batches = iter(stream)
    for _ in range(3 * stream.batches_per_epoch):  # three epochs of worker 0 (the second was short)
        assert next(batches)["input_ids"].shape[0] == 1


def test_moc_kl_uses_the_label_distribution(pairs):
    _, _, tokenizer = pairs
    batch = _batch(tokenizer)
    probs = torch.softmax(torch.randn(*batch["labels"].shape, 4), -1)
    batch["label_probs"] = probs
    model = ImageBertForPretraining(preset_config("tiny", feature_dim=8, num_labels=4,
                                                  vocab_size=tokenizer.vocab_size)).eval()
    ids = tasks.SpecialIds.of(tokenizer)
    losses = {}
    for kl in (False, True):
        config = tasks.TaskConfig(moc_prob=0.5, moc_kl=kl)
        prepared = tasks.prepare(batch, config, ids, torch.Generator().manual_seed(3))
        assert ("moc_probs" in prepared) == kl
        with torch.no_grad():
            losses[kl] = tasks.pretraining_losses(model(**tasks.model_inputs(prepared)), prepared, config)["moc"]
    # KL to a distribution is cross-entropy minus its entropy: smaller than CE to a hard label, and >= 0
    assert 0 <= losses[True] < losses[False]
