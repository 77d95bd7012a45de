#!/usr/bin/env python
"""Inventory script: the lab's machines once prepare.yml has started the lab, else none.

molecule needs an inventory source that exists before the lab does; this one reads
the inventory ``pmlab up`` writes (PMLAB_DIR/inventory.yml, JSON) at every run.
"""

import json
import os
import sys

path = os.path.join(os.environ.get("PMLAB_DIR", "/tmp/ctys-pm-molecule-shutdown"), "inventory.yml")
listing = {"_meta": {"hostvars": {}}}
if os.path.exists(path):
    with open(path, encoding="utf-8") as handle:
        text = "".join(line for line in handle if not line.startswith("#"))
    for group, body in json.loads(text)["all"]["children"].items():
        listing[group] = {"hosts": sorted(body["hosts"])}
        listing["_meta"]["hostvars"].update(body["hosts"])
if len(sys.argv) > 1 and sys.argv[1] == "--host":
    print(json.dumps(listing["_meta"]["hostvars"].get(sys.argv[2], {})))
else:
    print(json.dumps(listing))
