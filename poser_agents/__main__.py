"""``python -m poser_agents`` is the ``poser`` command."""

from poser_agents.cli import main

raise SystemExit(main())
