"""The import check: the packaged app imported as Lambda would, in a child process."""
