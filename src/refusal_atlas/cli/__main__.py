"""``python -m refusal_atlas.cli``."""

import sys

from .app import main

sys.exit(main())
