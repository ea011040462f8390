"""Dependencies for the target: resolution (uv where exact, else pip), source builds, fetching
and installing wheels."""
