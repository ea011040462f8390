"""From inputs to zips: the pipeline, deterministic zips, exclusions, the up-to-date check, the
cache and digests."""
