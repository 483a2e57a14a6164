"""`python -m dcmwatch` is the `dcmwatch` command."""

import sys

from dcmwatch.cli import main

sys.exit(main())
