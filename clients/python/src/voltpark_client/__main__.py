"""`python -m voltpark_client` is the `voltpark` command."""

import sys

from voltpark_client.cli import main

sys.exit(main())
