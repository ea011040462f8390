"""chalicepack: correct, byte-reproducible AWS Lambda packages for Chalice apps."""

__version__ = "0.1.0"
