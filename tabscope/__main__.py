"""``python -m tabscope``: the same as the ``tabscope`` command."""

from tabscope.cli import main

raise SystemExit(main())
