"""Where the shared sample apps live: ``../shared/examples`` beside the project root."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT_ROOT.parent / "shared" / "examples"
