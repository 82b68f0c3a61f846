"""`python -m ai_worker` is the same as the `ai-worker` command."""

from ai_worker.cli import main

raise SystemExit(main())
