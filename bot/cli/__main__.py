"""`python -m bot.cli`: the same as the `advisor` command."""

import sys

from bot.cli.entry import main

sys.exit(main())
