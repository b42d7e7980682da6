"""``python -m segcore`` runs the CLI."""

import sys

from segcore.cli import main

sys.exit(main())
