import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "support"))

# the suite's rules: e2e skipped with a reason when not root, reruns only for timing_sensitive tests,
# --require-areas
pytest_plugins = ["suite_rules"]
