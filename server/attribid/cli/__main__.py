"""``python -m attribid.cli`` is the ``attribid`` command."""
from attribid.cli.main import main

raise SystemExit(main())
