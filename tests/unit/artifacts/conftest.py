import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # memory_registry, the in-memory registry double
