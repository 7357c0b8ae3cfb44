"""``python -m lambda_flow.cli``: the same as the ``lambda-flow`` command."""

import sys

from ._main import main

sys.exit(main())
