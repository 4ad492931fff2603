"""The unit tier: its shared helpers (``readme_sections``) import from every package folder."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
