"""A deterministic sample crawl: about 50 realistic web pages and their images in one WARC.

>>> from lait.sample_crawl import write_sample_crawl, EXPECTED
>>> summary = write_sample_crawl("out/sample.warc.gz")   # doctest: +SKIP
>>> summary["pages"], EXPECTED[0]["outcome"]              # doctest: +SKIP
(47, 'kept')

Every page is a test case for a later stage of ``lait run``. :data:`EXPECTED` holds one entry
per HTML page, saying which image/text pair the pipeline should keep from it, or why it should
keep none:

========================  ==========================================================================
outcome                   the page ...
========================  ==========================================================================
``kept``                  has a dominant photo with a good English description: one output row
``duplicate``             uses a photo (same URL, or a resized re-encoded copy) that a better page
                          also uses: Aggregate keeps only ``duplicate_of``'s pair
``shared_text``           is one of 12 gallery pages whose different photos share one caption:
                          Aggregate drops all of them (more than 10 images per text)
``language``              is German, French or Spanish: dropped by ParsePages
``no_image``              has only a logo, icons, ad banners, a tracking pixel, thumbnails: no pair
``not_in_crawl``          has a photo the WARC does not hold: with ``--no-fetch`` AcquireImages drops it
``too_small``             has a photo under 300 px: FilterImages drops it
``not_natural``           has a drawn chart or diagram as its figure: the naturalness filter drops it
========================  ==========================================================================

Each entry also names its ``case`` (what markup the page exercises: lazy ``data-src``, ``srcset``,
``<picture>``, ``<base href>``, JSON-LD, windows-1252, broken markup...). Pages also carry the
clutter a real page has: a nav logo, 728x90 and 300x250 ad banners, 32x32 social icons, a 1x1
tracking GIF, a byline avatar and "related articles" thumbnails.

Photos are variants (crops, flips, turns, colour shifts, re-encodings) of the two photos that
ship inside scikit-learn (``china.jpg``: the Tower of Buddhist Incense above Kunming Lake at
Beijing's Summer Palace; ``flower.jpg``: an orange pompon dahlia); graphics are drawn with Pillow.
The output is byte-identical on every run with the same Pillow and zlib: fixed WARC-Date values,
record IDs derived from the URL, one gzip member per record with mtime 0, no randomness.
"""

from lait.sample_crawl.crawl import EXPECTED, expected_text_matches, not_in_crawl_images, write_sample_crawl
from lait.sample_crawl.images import COPIES, PHOTOS
from lait.sample_crawl.pages import OUTCOMES, SHARED_CAPTION

__all__ = ["COPIES", "EXPECTED", "OUTCOMES", "PHOTOS", "SHARED_CAPTION", "expected_text_matches", "not_in_crawl_images",
           "write_sample_crawl"]
