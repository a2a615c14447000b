"""``python -m kis_async.cli``: the ``kis-async`` command."""

import sys

from kis_async.cli import main

sys.exit(main())
