"""chalicepack side by side with `chalice package` and a uv + zip lower bound (`make bench`).

The pipeline: ``apps`` (sample Chalice projects, written into a temporary directory) ->
``tools`` (how each packager is run, and the zips it leaves) -> ``measure`` (one command under a
wrapper process: wall time and peak RSS, with caches and pip configuration isolated) -> ``run``
(variants, medians, the command line) -> ``report`` (``BENCHMARKS.md``).
"""
