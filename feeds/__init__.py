"""Market data: sources (Yahoo, replay, synthetic), normalizer, price cache, feed service."""
