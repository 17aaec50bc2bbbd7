"""lait's Beam pipeline: WARC/ARC crawls in, Parquet image-text shards out.

    $ lait sample-crawl sample.warc.gz
    $ lait run --input sample.warc.gz --output out/
    $ lait inspect out/

Stages, in order of data flow (one PTransform each, named after the LAIT recipe):
ReadCrawl -> ParsePages -> DetectDominantImage -> CleanText -> AcquireImages ->
FilterImages -> ScoreRelevance -> Aggregate -> WriteShards.
This package holds only Beam wiring and I/O; the logic is in `filters` and `scoring`.
"""
