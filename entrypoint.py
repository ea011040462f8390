"""The GitHub Action's entry point: the image runs it with chalicepack's own virtualenv."""

import sys

from chalicepack.action.run import main

if __name__ == "__main__":
    sys.exit(main())
