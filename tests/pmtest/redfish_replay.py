"""Replay recorded Redfish answers (tests/unit/fixtures/redfish, see INDEX.md) at the outermost seam.

``Connection._exchange`` is the one place ``_redfish.client`` talks to the
socket; :class:`ReplayBmc` stands in for it, answering each (method, path)
with recorded answers in order (the last one repeats), and keeps every
request it was sent (method, path, JSON body, headers) for the tests to check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._redfish import client

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "redfish"


def recorded(name: str) -> Dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def reply_of(name: str, **changes: Any) -> client.Reply:
    entry = recorded(name)
    body = entry["body"]
    if "json" in changes:
        body = json.dumps(changes.pop("json"))
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    headers.update({k.lower(): v for k, v in changes.pop("headers", {}).items()})
    return client.Reply(changes.pop("status", entry["status"]), headers, body.encode())


class ReplayBmc:
    def __init__(self) -> None:
        self.routes: Dict[Tuple[str, str], List[Any]] = {}
        self.sent: List[Dict[str, Any]] = []

    def serve(self, *names: str, method: Optional[str] = None, path: Optional[str] = None) -> "ReplayBmc":
        """Answer the recorded request of ``names[0]`` (or method/path) with these recordings in turn."""
        first = recorded(names[0])
        key = (method or first["method"], path or first["path"])
        self.routes.setdefault(key, []).extend(reply_of(name) for name in names)
        return self

    def answer(self, method: str, path: str, *replies: Any) -> "ReplayBmc":
        """Answer with given replies (client.Reply) or exceptions (raised as the socket layer would)."""
        self.routes.setdefault((method, path), []).extend(replies)
        return self

    def requests(self, method: Optional[str] = None) -> List[Dict[str, Any]]:
        return [r for r in self.sent if method is None or r["method"] == method]

    def exchange(self, conn: client.Connection, method: str, path: str, body: Optional[bytes], headers: Dict[str, str], deadline: Any) -> client.Reply:
        self.sent.append({"method": method, "path": path, "json": json.loads(body) if body else None, "headers": dict(headers)})
        queue = self.routes.get((method, path))
        if not queue:
            return client.Reply(404, {"content-type": "application/json"},
                                json.dumps({"error": {"code": "Base.1.15.ResourceMissingAtURI", "message": f"no recording for {method} {path}"}}).encode())
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, BaseException):
            raise item
        return item

    def install(self, monkeypatch: Any) -> "ReplayBmc":
        bmc = self

        def fake(conn: client.Connection, method: str, path: str, body: Optional[bytes], headers: Dict[str, str], deadline: Any) -> client.Reply:
            return bmc.exchange(conn, method, path, body, headers, deadline)

        monkeypatch.setattr(client.Connection, "_exchange", fake)
        return self
