# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: stack_levels
short_description: The machines nested below one machine, level by level
version_added: 0.1.0
description:
  - Walks the C(pm_containing_machine) chains of an inventory down from one machine, the way the role
    C(ctys.pm.pm_shutdown_stack) and
    C(playbooks/maintenance_exit.yml) find the nested hypervisors below a host.
  - Returns one list per level, the machines the given one contains directly first, then the machines
    those contain, and so on; each level in the order of the input.
  - There is no silent limit. A chain deeper than O(max_depth) levels fails, and so does a loop
    (a machine that contains, through other machines, the one the walk started from), naming the machines.
positional: top
options:
  _input:
    description:
      - Each machine's containing machine, as a dictionary from inventory host name to the value of its
        C(pm_containing_machine) variable. Machines without one may be left out or given an empty value.
    type: dict
    required: true
  top:
    description: The machine to walk down from, usually C(inventory_hostname).
    type: str
    required: true
  max_depth:
    description: The deepest nesting accepted; a deeper chain fails with a message naming it.
    type: int
    default: 32
seealso:
  - module: ctys.pm.pm_stack
author:
  - ctys.pm maintainers (@ctys-pm)
"""

EXAMPLES = r"""
- name: Nested machines below this host, deepest level first (leaves are stopped before their hosts)
  vars:
    hosts_with_parent: "{{ groups['all'] | map('extract', hostvars) | selectattr('pm_containing_machine', 'defined') | list }}"
    parents: "{{ dict(hosts_with_parent | map(attribute='inventory_hostname') | zip(hosts_with_parent | map(attribute='pm_containing_machine'))) }}"
  ansible.builtin.debug:
    msg: "{{ parents | ctys.pm.stack_levels(inventory_hostname) | reverse | list | flatten(levels=1) }}"

- name: The direct guests of lab01 known to the inventory
  ansible.builtin.debug:
    msg: "{{ ({'lab02': 'lab01', 'lab03': 'lab02'} | ctys.pm.stack_levels('lab01')) | first }}"
"""

RETURN = r"""
_value:
  description:
    - A list of levels, each a list of inventory host names; empty when nothing is nested below O(top).
    - "For C({'a': 'top', 'b': 'a', 'c': 'b', 'd': 'top'}) and O(top=top) it is C([['a', 'd'], ['b'], ['c']])."
  type: list
  elements: list
"""

from collections.abc import Mapping
from typing import Any, Dict, List

from ansible.errors import AnsibleFilterError


def _chain(parents: Mapping, start: str, top: str) -> List[str]:
    """``start`` and its containing machines up to ``top`` (bounded: the walk visited each at most once)."""
    chain = [start]
    while chain[-1] != top and len(chain) <= len(parents):  # bounded even if the mapping were inconsistent
        chain.append(str(parents.get(chain[-1]) or ""))
    return chain


def stack_levels(parents: Any, top: Any, max_depth: Any = 32) -> List[List[str]]:
    """The filter ``ctys.pm.stack_levels``: the hosts below ``top``, one list per nesting level."""
    if not isinstance(parents, Mapping):
        raise AnsibleFilterError(
            f"stack_levels: the input is a {type(parents).__name__}, not a dictionary; give a dictionary of host -> pm_containing_machine"
        )
    if not isinstance(top, str) or not top:
        raise AnsibleFilterError(f"stack_levels: top '{top}' is not a host name; give the machine to walk down from, such as inventory_hostname")
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
        raise AnsibleFilterError(f"stack_levels: max_depth '{max_depth}' is not a positive whole number; use a number such as 32")
    containing: Dict[str, str] = {str(name): str(parent) for name, parent in parents.items() if parent}
    levels: List[List[str]] = []
    frontier = {top}
    seen = {top}
    while frontier:
        level = [name for name, parent in containing.items() if parent in frontier]
        looped = [name for name in level if name in seen]
        if looped:  # only top can come back: every machine has one containing machine
            chain = " -> ".join(list(reversed(_chain(containing, containing[looped[0]], top))) + [looped[0]])
            raise AnsibleFilterError(
                f"stack_levels: pm_containing_machine forms a loop ({chain}); fix pm_containing_machine so that no machine contains itself"
            )
        if not level:
            break
        if len(levels) == max_depth:
            chain = " -> ".join(reversed(_chain(containing, level[0], top)))
            raise AnsibleFilterError(
                f"stack_levels: the machines below '{top}' are nested deeper than max_depth {max_depth} ({chain}); "
                "raise max_depth or check pm_containing_machine"
            )
        levels.append(level)
        seen.update(level)
        frontier = set(level)
    return levels


class FilterModule:
    """ctys.pm filters for machine stacks."""

    def filters(self) -> Dict[str, Any]:
        return {"stack_levels": stack_levels}
