"""Where the core tests find the repository's files (a module of its own: `conftest` is ambiguous
when several distributions' tests share one pytest process)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "transactions"
