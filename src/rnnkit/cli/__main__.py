"""`python -m rnnkit.cli ...` runs the command line."""

import sys

from rnnkit.cli import main

sys.exit(main())
