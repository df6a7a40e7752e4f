import sys
from pathlib import Path

# The archive builders live with the image tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "image"))
