"""Re-records tests/data/cassettes/react_toy.jsonl: a scripted ReAct session through the `record`
backend (real prompts and tool results; the replies are scripted). Run: python tests/llm/make_react_cassette.py"""
import sys
import tempfile
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from cambrian import Campaign, LLMBackend, LLMResponse, hookimpl
from cambrian.core.plugins import get_plugin_manager

T = "\n```json\n{}\n```"
REPLIES = [
    "Start from what is known." + T.format('{"tool": "leaderboard", "args": {}}'),
    "Nothing yet. Small values suit a sphere; check a draft." + T.format('{"tool": "check", "args": {"candidate": [0.5, 0.5, 0.5]}}'),
    "Valid, norm 0.87. Submit it." + T.format('{"tool": "submit", "args": {"candidate": [0.5, 0.5, 0.5]}}'),
    "Look at the board." + T.format('{"tool": "leaderboard"'),
    "Sorry, I will submit [1, 1, 1] now.",
    "Read the best node first." + T.format('{"tool": "node", "args": {"rank": 1}}'),
    "Loss 0.75 at 0.5 each. Any insights?" + T.format('{"tool": "insights", "args": {}}'),
    "None. Halve the first coordinate." + T.format('{"tool": "submit", "args": {"candidate": [0.25, 0.5, 0.5]}}'),
]

class Scripted(LLMBackend):
    name = "scripted-react"
    model = "scripted-react"
    n = 0
    def complete(self, messages, **kw):
        text = REPLIES[Scripted.n]; Scripted.n += 1
        return LLMResponse(text=text, prompt_tokens=sum(len(m["content"]) for m in messages) // 4,
                           completion_tokens=len(text) // 4, cost_usd=0.0, model="scripted-react")

mod = types.ModuleType("scripted"); mod.cambrian_llm_backends = hookimpl(lambda: [Scripted])
pm = get_plugin_manager(); pm.register(mod, "scripted")
out = Path(__file__).resolve().parents[1] / "data" / "cassettes" / "react_toy.jsonl"
out.unlink(missing_ok=True)
cfg = {"name": "react", "seed": 0, "domain": {"name": "toy", "options": {"dim": 3, "function": "sphere", "noise": 0.0}},
       "executor": {"name": "local", "options": {"workers": 1, "isolation": "thread"}}, "budget": {"max_nodes": 2},
       "agents": [{"name": "thinker", "scaffold": {"name": "random", "options": {"p_draft": 1.0}},
                   "operators": ["react-draft"], "llm": {"name": "record", "options": {"cassette": str(out), "inner": "scripted-react"}}}]}
r = Campaign.from_config(cfg, tempfile.mkdtemp(), pm=pm).run()
print(r.reason, r.counts, Scripted.n)
