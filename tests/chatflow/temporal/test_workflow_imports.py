"""The conversation workflow loads no web framework, Redis, metrics or provider code.

The workflow runs in Temporal's sandbox, which re-imports what it needs for every run; the less
it loads, the cheaper each run and the shorter the list of modules passed through.
"""

import subprocess
import sys

HEAVY = ("starlette", "uvicorn", "redis", "prometheus_client", "providers", "httpx", "twilio")


def test_importing_the_workflow_loads_none_of_the_heavy_modules() -> None:
    probe = (
        "import sys, chatflow.temporal.workflow\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
