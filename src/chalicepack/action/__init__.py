"""The GitHub Action: its inputs, the run, and what it tells the workflow (outputs, annotations,
summary)."""
