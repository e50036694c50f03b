"""What the command line asks of a run, as typed values.

``SharedOptions`` are the flags every command shares (output, logging, locking, dry run,
concurrency, the kubeadm timeout), declared once in ``cli/``. ``RunOptions`` is the one object
a command hands to the run and the steps read: the shared knobs plus the command's own (which
nodes, ``--force``, ``--strict``, where the kubeconfig goes). A misspelt option is a type error,
not a value that silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from k8slk_ops.cluster.etcdrestore import SnapshotFile
from k8slk_ops.cluster.pkiarchive import PkiFiles

DEFAULT_CONCURRENCY = 64
DEFAULT_TIMEOUT = 600.0  # seconds one kubeadm run may take on a node
DEFAULT_READY_TIMEOUT = 300.0
DEFAULT_TOKEN_TTL = 1800.0  # 30m: a run's join token
DEFAULT_CERT_DAYS = 30  # certs check warns, certs renew renews, within this many days


@dataclass(frozen=True)
class SharedOptions:
    """The flags every command takes (those a command does not offer keep their default)."""

    json_out: bool = False
    log_file: Path | None = None
    verbose: bool = False
    break_lock: int = 0  # times --break-lock was given
    dry_run: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    metrics_file: Path | None = None  # Prometheus text written at the end of the run


@dataclass(frozen=True)
class RunOptions:
    """Knobs from the command line that the run and its steps read."""

    run_id: str = ""
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT  # seconds for one kubeadm run on one node
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    token_ttl: float = DEFAULT_TOKEN_TTL  # seconds
    strict: bool = False
    dry_run: bool = False
    kubeconfig_out: Path | None = None
    merge_kubeconfig: bool = False
    selected: tuple[str, ...] = ()  # nodes named on the command line; none: all
    # Nodes the run takes out of the cluster when it is not the selection (apply: the nodes
    # the inventory marks remove: true); the host group ``leaving``.
    leaving: tuple[str, ...] = ()
    force: int = 0  # how many times --force was given
    drain_timeout: float | None = None  # seconds; None: the playbook's own
    # certs check: fail when a certificate expires within this many days; certs renew: renew
    # those (None: every certificate).
    cert_days: int | None = DEFAULT_CERT_DAYS
    upgrade_to: str = ""  # upgrade --to; none: the inventory's cluster.kubernetesVersion
    # apply: a node at the target that is cordoned without a run's reboot record was cordoned
    # by someone (maintenance), not left by an unfinished roll: it is not rolled again.
    # upgrade rolls every cordoned node again (it resumes what it left).
    keep_hand_cordons: bool = False
    # apply --prune: the addons taken out of cluster.addons are deleted (else only said).
    prune: bool = False
    # upgrade, certs renew --force: disrupt a control plane while an etcd member is unhealthy
    # (its own field: remove-node's --force means more than that).
    etcd_unhealthy_ok: bool = False
    snapshot_dir: Path | None = None  # etcd snapshot: where files go (None: beside the inventory)
    snapshot_keep: int | None = None  # etcd snapshot: how many of this cluster's to keep
    # etcd restore: the snapshot, checked on this side; etcdctl's --skip-hash-check.
    restore: SnapshotFile | None = None
    skip_hash_check: bool = False
    # etcd restore --pki: the cluster's CAs and service-account keys, for a rebuild onto
    # blank control planes (etcd-rebuild).
    restore_pki: PkiFiles | None = None
    snapshot_pki: bool = False  # etcd snapshot --pki: the cluster's CAs and SA keys beside it
    # etcd snapshot --verify-restore: restore the new snapshot on the node and read it back.
    snapshot_verify_restore: bool = False
    no_snapshot: bool = False  # upgrade, certs renew --no-snapshot: no snapshot before changing

    @classmethod
    def for_command(
        cls,
        shared: SharedOptions,
        *,
        selected: Sequence[str] = (),
        strict: bool = False,
        kubeconfig_out: Path | None = None,
        merge_kubeconfig: bool = False,
        force: int = 0,
        drain_timeout: float | None = None,
        dry_run: bool | None = None,
        cert_days: int | None = DEFAULT_CERT_DAYS,
    ) -> RunOptions:
        """One command's options: the shared flags and its own (the run ID comes later)."""
        return cls(
            concurrency=shared.concurrency,
            timeout=shared.timeout,
            dry_run=shared.dry_run if dry_run is None else dry_run,
            strict=strict,
            kubeconfig_out=kubeconfig_out,
            merge_kubeconfig=merge_kubeconfig,
            selected=tuple(selected),
            force=force,
            drain_timeout=drain_timeout,
            cert_days=cert_days,
        )
