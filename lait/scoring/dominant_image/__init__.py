"""The dominant image of a web page: candidates from every place a page names an image, DOM features, a ranker.

>>> from lait.filters.page import PageParser
>>> page = PageParser(languages=None).parse(html_bytes, "https://example.com/story")   # doctest: +SKIP
>>> detector = DominantImageDetector()                                                 # doctest: +SKIP
>>> detector.detect(page)["image_url"]                                                 # doctest: +SKIP
'https://example.com/media/story-hero.jpg'

LAIT "parse[s] each page to collect image URLs and detect[s] the dominant images through HTML
tags and DOM tree features". Here:

1. :func:`extract_candidates` collects every image a page names: `<img>` (`src`, the largest
   `srcset` candidate, lazy-load `data-*` attributes), `<picture><source>`, `<input type=image>`,
   `og:image` (and `:secure_url`, `:width`, `:height`, `:alt`), `twitter:image`,
   `<link rel=image_src>`, `itemprop=image` and JSON-LD `image` / `thumbnailUrl`; resolves them
   against `<base href>`, normalises them and merges the places that name one image.
2. Each candidate gets the :data:`FEATURE_NAMES` features: size (declared, from `srcset` and
   from the URL), shape, document position, DOM depth and ancestors, class/id/URL tokens, link
   wrapping, alt/title/figcaption, text around it, repeats, JSON-LD / `itemprop` membership.
3. :class:`DominantImageRanker` (gradient-boosted trees, fitted with scikit-learn and stored
   as JSON, so loading a model runs no code) scores candidates. It is trained with weak labels
   (:func:`weak_labels`): the body image that is the page's `og:image`/`twitter:image`, with
   those meta tags hidden from the features, so it learns to find the main image from the DOM.
4. :func:`choose_dominant` takes the meta image when one exists and passes sanity checks
   (not a logo, icon, placeholder or pixel by its URL and size; where the page names several,
   the one the body shows as its lead), else the ranker's best candidate when it scores at
   least `min_score`, else a `<video poster>`, else nothing.

The modules, one job each: :mod:`.urls` (image keys, renditions, site-wide images),
:mod:`.candidates` (step 1 and the page record), :mod:`.features` (step 2), :mod:`.ranker`
(step 3), :mod:`.training` (its weak labels) and :mod:`.detector` (step 4).
"""

from lait.scoring.dominant_image.candidates import (
    PAGE_TEXT_KEYS,
    Candidate,
    PageCandidates,
    candidates_from_record,
    excluded_body_rows,
    extract_candidates,
    page_record_candidates,
    unusable_body_rows,
)
from lait.scoring.dominant_image.detector import DominantImageDetector, choose_dominant, dominant_record, page_scores
from lait.scoring.dominant_image.features import FEATURE_NAMES, TOKEN_GROUPS, token_groups
from lait.scoring.dominant_image.ranker import DEFAULT_MODEL_PATH, DominantImageRanker
from lait.scoring.dominant_image.training import training_rows, weak_labels
from lait.scoring.dominant_image.urls import (
    absolute_image_url,
    image_key,
    parse_srcset,
    rendition_key,
    rendition_path,
    resolve_image_url,
    site_image_url,
)

__all__ = ["DEFAULT_MODEL_PATH", "FEATURE_NAMES", "PAGE_TEXT_KEYS", "TOKEN_GROUPS", "Candidate", "DominantImageDetector",
           "DominantImageRanker", "PageCandidates", "absolute_image_url", "candidates_from_record", "choose_dominant",
           "dominant_record", "excluded_body_rows", "extract_candidates", "image_key", "page_record_candidates",
           "page_scores", "parse_srcset", "rendition_key", "rendition_path", "resolve_image_url", "site_image_url",
           "token_groups", "training_rows", "unusable_body_rows", "weak_labels"]
