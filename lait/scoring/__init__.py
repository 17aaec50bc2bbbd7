"""Pure, Beam-free models that score records: dominant image ranker, relevance, encoders."""
