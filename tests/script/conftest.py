import sysconfig
from pathlib import Path

CASSETTES = Path(__file__).parents[1] / "data" / "cassettes"
EMAIL = str(Path(sysconfig.get_paths()["stdlib"]) / "email")

# autoresearch-cpu, with a smaller corpus and budget: the same pipeline, seconds per run.
SMALL = {"data": {"corpus": {"source": "text", "paths": [EMAIL]}, "train_tokens": 300000,
                  "val_tokens": 16384, "hidden_tokens": 8192, "eval_tokens": 8192},
         "budgets": {"time_s": 2, "repeats": 2, "timeout_s": 120}}
