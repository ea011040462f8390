import sys

from chalicepack.cli import main

sys.exit(main())
