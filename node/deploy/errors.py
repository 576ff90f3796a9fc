"""Errors of ``mosaik deploy``; each names the file, host or setting at fault.

DeployError
 ├── AnsibleMissing     ansible-core (the ``deploy`` extra) is not installed
 ├── InventoryError     the inventory cannot be read or lacks what a rollout needs
 ├── VaultError         vault password missing or wrong, vault file malformed
 ├── WheelhouseError    building or reading a wheelhouse failed
 └── PlaybookFailed     ansible-playbook ended with a non-zero exit code
"""

from __future__ import annotations


class DeployError(Exception):
    """Base of every error ``node.deploy`` raises."""


class AnsibleMissing(DeployError):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} needs ansible-core: pip install 'mosaik-py[deploy]' "
            "(or pip install 'ansible-core>=2.16')"
        )


class InventoryError(DeployError):
    pass


class VaultError(DeployError):
    pass


class WheelhouseError(DeployError):
    pass


class PlaybookFailed(DeployError):
    def __init__(self, returncode: int) -> None:
        self.returncode = returncode
        reasons = {
            1: "an error before or outside the hosts",
            2: "a host failed (the rollout stopped at it; see the failed task above)",
            3: "hosts were unreachable",
            4: "a parser error in the inventory or the playbook",
            5: "bad or incomplete options",
            99: "interrupted",
            250: "an unexpected error",
        }
        super().__init__(
            f"ansible-playbook exited with {returncode}: {reasons.get(returncode, 'it failed')}"
        )
