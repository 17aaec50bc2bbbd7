"""The networks both filters and imagebert run, in one place: EfficientNet-Lite0 (image classes and
features), the MiniLM sentence encoder with its BERT layers and WordPiece tokenizer, and the
region extractors (ImageBERT's image tokens). Pure torch/numpy: no Beam, nothing of lait above."""
