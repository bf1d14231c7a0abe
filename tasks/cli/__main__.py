"""`python -m tasks.cli` is the `audiobook` console script."""

import sys

from tasks.cli import main

sys.exit(main())
