"""ImageBERT: model, data, pre-training and evaluation on lait corpus shards."""
