"""``record`` and ``replay``: LLM sessions on a JSONL cassette.

``record`` wraps another backend and appends one line per exchange:
``{"hash", "messages", "response": {text, prompt_tokens, completion_tokens,
cost_usd, model}}``. ``replay`` answers from such a file without any model,
deterministically, with the recorded token counts and cost.

record options:  cassette (path, required), inner (backend name, or {name, options})
replay options:  cassette (path, required), mode ("hash": match the request's
                 messages hash; a hash recorded several times answers with its
                 recordings in order, then repeats the last | "sequential": answer
                 with the recordings in file order, whatever the request)
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from cambrian import LLMBackend, LLMResponse, Options, hookimpl
from cambrian.core.plugins import get_plugin_manager
from cambrian.plugins.llm.base import LLMError, request_hash


def _response_dict(r: LLMResponse) -> dict[str, Any]:
    return {"text": r.text, "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens,
            "cost_usd": r.cost_usd, "model": r.model}


class RecordBackend(LLMBackend):
    name = "record"

    class Options(Options):
        cassette: str = Field(description="JSONL file the exchanges are appended to")
        inner: str | dict[str, Any] = Field(description="backend recorded: a name, or {name, options}")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)

        cassette, inner = self.options.cassette, self.options.inner
        ref = {"name": inner} if isinstance(inner, str) else dict(inner)
        if ref.get("name") in (None, "record", "replay"):
            raise LLMError(f"llm 'record': inner must name a real backend, got {ref.get('name')!r}")
        self.inner = get_plugin_manager().get("llm", ref["name"])(**ref.get("options", {}))
        self.model = getattr(self.inner, "model", ref["name"])
        self.path = Path(cassette)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> LLMResponse:
        r = self.inner.complete(messages, **kwargs)
        line = json.dumps({"hash": request_hash(messages), "messages": messages,
                           "response": _response_dict(r)}, ensure_ascii=False)
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        return r


class ReplayBackend(LLMBackend):
    name = "replay"

    class Options(Options):
        cassette: str = Field(description="JSONL recording to answer from")
        mode: Literal["hash", "sequential"] = Field(
            "hash", description="hash: match the request's messages; sequential: file order")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.path, self.mode = Path(self.options.cassette), self.options.mode
        if not self.path.is_file():
            raise LLMError(f"llm 'replay': cassette {self.path} not found")
        self.entries: list[dict[str, Any]] = []
        for i, raw in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
                entry["response"]["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise LLMError(f"llm 'replay': cassette {self.path} line {i} is not a recording: {exc}")
            self.entries.append(entry)
        self.model = f"replay:{self.path.name}"
        self.by_hash: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in self.entries:
            self.by_hash[e.get("hash") or request_hash(e["messages"])].append(e)
        self.used: dict[str, int] = defaultdict(int)
        self.position = 0

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> LLMResponse:
        if self.mode == "sequential":
            if self.position >= len(self.entries):
                raise LLMError(f"llm 'replay': cassette {self.path} has no recording left "
                               f"(all {len(self.entries)} were replayed)")
            entry = self.entries[self.position]
            self.position += 1
        else:
            h = request_hash(messages)
            recorded = self.by_hash.get(h)
            if not recorded:
                last = (messages[-1].get("content") or "")[:120] if messages else ""
                raise LLMError(f"llm 'replay': cassette {self.path} has no recording for request "
                               f"{h} (last message starts {last!r}); record it again or use "
                               "mode: sequential")
            entry = recorded[min(self.used[h], len(recorded) - 1)]
            self.used[h] += 1
        r = entry["response"]
        return LLMResponse(text=r["text"], prompt_tokens=int(r.get("prompt_tokens", 0)),
                           completion_tokens=int(r.get("completion_tokens", 0)),
                           cost_usd=float(r.get("cost_usd", 0.0)), model=r.get("model") or self.model)


@hookimpl
def cambrian_llm_backends():
    return [RecordBackend, ReplayBackend]
