"""``mosaik deploy``: roll nodes out with Ansible. Commands parse and validate, then call
``node.deploy``; ansible-core is imported only when a command needs it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from node.deploy.errors import DeployError, PlaybookFailed
from node.deploy.inventory import NODES_GROUP, SEED_GROUP, derive_seeds, load_inventory
from node.deploy.keys import default_keys_dir, write_keys
from node.deploy.playbook import DEFAULT_INTERPRETER, PlaybookRun, default_playbook, run_playbook
from node.deploy.vault import PASSWORD_ENV, VaultPassword, password_file_for_ansible, read_password
from node.deploy.wheelhouse import DEFAULT_PYTHONS, PLATFORMS, build_wheelhouse

_SOURCE_TREE = Path(__file__).resolve().parents[2]


class _RunByDefault(click.Group):
    """``mosaik deploy INVENTORY ...`` is ``mosaik deploy run INVENTORY ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


vault_password_option = click.option(
    "--vault-password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="MOSAIK_VAULT_PASSWORD_FILE",
    help=f"File holding the vault password (run if executable); else ${PASSWORD_ENV}.",
)


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    """Tags given repeated and/or comma-separated, as ansible takes them."""
    return tuple(tag.strip() for value in values for tag in value.split(",") if tag.strip())


@click.group("deploy", cls=_RunByDefault)
def deploy_group() -> None:
    """Roll mosaik nodes out to hosts with Ansible (playbooks/site.yml).

    mosaik deploy INVENTORY runs the rollout; `keys` and `wheelhouse` prepare it.

    Examples:

      mosaik deploy wheelhouse --out build/wheelhouse

      mosaik deploy keys --inventory inventory/hosts.yml --vault-password-file ~/.vault

      mosaik deploy inventory/hosts.yml --wheelhouse build/wheelhouse --check --diff
    """


@deploy_group.command("run")
@click.argument("inventory", type=click.Path(exists=True, path_type=Path))
@click.option("--check", is_flag=True, help="Change nothing; report what would change.")
@click.option("--diff", is_flag=True, help="Show the differences in changed files.")
@click.option("--limit", metavar="PATTERN", help="Only these hosts (an ansible host pattern).")
@click.option(
    "--tags", multiple=True, help="Only tasks with these tags (repeat or comma-separate)."
)
@click.option("--skip-tags", multiple=True, help="Skip tasks with these tags.")
@click.option(
    "--wheelhouse",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="MOSAIK_WHEELHOUSE",
    help="Wheelhouse from `mosaik deploy wheelhouse` (else mosaik_node_wheelhouse).",
)
@vault_password_option
@click.option(
    "--playbook",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Playbook to run (default: playbooks/site.yml of the source tree).",
)
@click.option(
    "-e",
    "--extra-vars",
    multiple=True,
    metavar="VARS",
    help="Extra variables for ansible-playbook (key=value, JSON or @file).",
)
@click.option(
    "--python-interpreter",
    default=DEFAULT_INTERPRETER,
    show_default=True,
    help="Python on hosts whose inventory sets no ansible_python_interpreter.",
)
@click.option("-v", "--verbose", count=True, help="More ansible output (repeatable).")
def run(
    inventory: Path,
    check: bool,
    diff: bool,
    limit: str | None,
    tags: tuple[str, ...],
    skip_tags: tuple[str, ...],
    wheelhouse: Path | None,
    vault_password_file: Path | None,
    playbook: Path | None,
    extra_vars: tuple[str, ...],
    python_interpreter: str,
    verbose: int,
) -> None:
    """Run the rollout on INVENTORY and stream ansible-playbook's output.

    Every node is checked first (settings, keys, seeds, wheelhouse); then nodes roll out one
    batch at a time (-e mosaik_node_serial=N, default 1), each healthy before the next.

    Examples:

      mosaik deploy inventory/hosts.yml --wheelhouse build/wheelhouse

      mosaik deploy inventory/hosts.yml --limit 'matcher' --tags mosaik_node_configure --check
    """
    rollout = PlaybookRun(
        inventory=inventory,
        playbook=playbook or default_playbook(),
        check=check,
        diff=diff,
        limit=limit,
        tags=_split(tags),
        skip_tags=_split(skip_tags),
        wheelhouse=wheelhouse,
        extra_vars=extra_vars,
        interpreter=python_interpreter,
        verbosity=verbose,
    )
    try:
        password = _optional_password(vault_password_file)
        if password is None:
            run_playbook(rollout, click.echo)
            return
        with password_file_for_ansible(password) as password_file:
            run_playbook(replace(rollout, vault_password_file=password_file), click.echo)
    except PlaybookFailed as exc:
        # ansible-playbook's exit code tells CI what kind of failure it was: keep it.
        click.echo(f"Error: {exc}", err=True)
        click.get_current_context().exit(exc.returncode)
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None


def _optional_password(file: Path | None) -> VaultPassword | None:
    """The vault password when one is given; ansible asks for none if the inventory has no vault."""
    try:
        return read_password(file)
    except DeployError:
        if file is not None:
            raise
        return None


@deploy_group.command("keys")
@click.option(
    "-i",
    "--inventory",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="Ansible inventory (file or directory).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the vault and peers files (default: group_vars/all by the inventory).",
)
@click.option("--group", default=NODES_GROUP, show_default=True, help="Group of the node hosts.")
@click.option("--seed-group", default=SEED_GROUP, show_default=True, help="Group of the seeds.")
@click.option(
    "--seed-count",
    type=click.IntRange(min=0),
    default=0,
    help="Without a seed group: the first N node hosts are seeds.",
)
@vault_password_option
def keys(
    inventory: Path,
    out: Path | None,
    group: str,
    seed_group: str,
    seed_count: int,
    vault_password_file: Path | None,
) -> None:
    """Give every node host of INVENTORY an ed25519 key, kept in an Ansible Vault file.

    Existing keys are kept; new hosts get new ones. Peer ids and the seed list (hosts in the
    seed group, else the first --seed-count) go to a plain vars file beside the vault. Secret
    keys are never printed.

    Examples:

      mosaik deploy keys --inventory inventory/hosts.yml --vault-password-file ~/.vault

      MOSAIK_VAULT_PASSWORD=... mosaik deploy keys -i inventory/ --seed-count 3
    """
    try:
        password = read_password(vault_password_file)
        hosts = load_inventory(inventory, group)
        seeds = derive_seeds(hosts, seed_group, seed_count)
        report = write_keys(hosts, seeds, out or default_keys_dir(inventory), password)
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None
    width = max(len(host) for host in hosts.hosts)
    for host in hosts.hosts:
        state = "new" if host in report.added else "kept"
        role = "seed" if host in report.seeds else "    "
        click.echo(f"{host:<{width}}  {report.peers[host]}  {role}  {state}")
    click.echo(
        f"{len(report.added)} new, {len(report.kept)} kept; {len(report.seeds)} seed(s)\n"
        f"secret keys: {report.vault_file} (Ansible Vault)\n"
        f"peer ids and seeds: {report.peers_file}"
    )


@deploy_group.command("wheelhouse")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory."
)
@click.option(
    "--python",
    "pythons",
    multiple=True,
    default=DEFAULT_PYTHONS,
    show_default=True,
    help="Target CPython version(s) of the hosts (repeatable).",
)
@click.option("--arch", type=click.Choice(sorted(PLATFORMS)), default="x86_64", show_default=True)
@click.option(
    "--source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=_SOURCE_TREE,
    show_default="this installation's source tree",
    help="Project tree the node runtime is built from.",
)
def wheelhouse(out: Path, pythons: tuple[str, ...], arch: str, source: Path) -> None:
    """Build the wheelhouse hosts install from without a package index.

    The project's wheel and binary wheels of its dependencies (and pip) for each target
    Python, one deterministic archive per Python. Needs a package index here, not on hosts.

    Examples:

      mosaik deploy wheelhouse --out build/wheelhouse

      mosaik deploy wheelhouse --out build/wheelhouse --python 3.13 --arch aarch64
    """
    try:
        index = build_wheelhouse(source, out, pythons, arch, click.echo)
    except DeployError as exc:
        raise click.ClickException(str(exc)) from None
    for python, wheels in sorted(index.pythons.items()):
        click.echo(f"CPython {python}: {wheels.archive} ({len(wheels.wheels)} wheels)")
    click.echo(f"wheelhouse of mosaik-py {index.version} in {out}")
