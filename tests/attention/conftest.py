import sysconfig
from pathlib import Path

CASSETTES = Path(__file__).parents[1] / "data" / "cassettes"

# A CPU-second-sized budget: the same pipeline as the defaults, with tiny models and data.
TINY = {
    "model": {"d_model": 32, "n_heads": 2, "n_layers": 1},
    "tasks": {
        "mqar": {"steps": 30, "batch_size": 16, "n_train": 512, "n_eval": 64},
        "listops": {"steps": 30, "batch_size": 16, "n_train": 512, "n_eval": 64},
        "lm": {"steps": 30, "seq_len": 32, "batch_size": 4, "train_tokens": 20000, "eval_tokens": 1024},
    },
    "corpus": {"source": "text", "paths": [str(Path(sysconfig.get_paths()["stdlib"]) / "email")]},
    "cost": {"batch": 2, "seq": 32},
    "seeds": ["softmax"],
}
