"""``python -m edgeres.cli``."""

import sys

from edgeres.cli import main

sys.exit(main())
