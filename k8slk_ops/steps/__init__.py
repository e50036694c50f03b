"""The closed vocabulary of steps a playbook may use, one small module per kind."""

from __future__ import annotations

from typing import Any

from k8slk_ops.engine.step import Action, Step, StepPlan
from k8slk_ops.steps.addonprune import PruneAddons, UnlistedAddons
from k8slk_ops.steps.addons import ApplyAddons
from k8slk_ops.steps.certs import CertsCheck, CertsRenew, CertsRestart
from k8slk_ops.steps.command import RunCommand
from k8slk_ops.steps.credentials import MintCredentials, RevokeCredentials
from k8slk_ops.steps.drift import DriftCompare, DriftRead
from k8slk_ops.steps.etcd import EtcdSnapshot, EtcdStatus
from k8slk_ops.steps.etcdgate import EtcdHealthy, UpgradeEtcdHealthy
from k8slk_ops.steps.etcdmember import EtcdMemberCheck, RemoveEtcdMember
from k8slk_ops.steps.etcdrebuild import (
    EtcdRebuildCheck,
    EtcdRebuildCredentials,
    EtcdRebuildInit,
    EtcdRebuildJoin,
    EtcdRebuildPrepare,
)
from k8slk_ops.steps.etcdrestore import (
    EtcdRestoreCheck,
    EtcdRestoreData,
    EtcdRestorePrepare,
    EtcdRestoreStart,
    EtcdRestoreStop,
)
from k8slk_ops.steps.etcdverify import EtcdVerifyRestore
from k8slk_ops.steps.init import Init
from k8slk_ops.steps.join import Join
from k8slk_ops.steps.kubeconfig import FetchKubeconfig
from k8slk_ops.steps.leftovers import RemoveKubeadmConfig
from k8slk_ops.steps.nodemeta import NodeMetadata
from k8slk_ops.steps.preflight import Preflight
from k8slk_ops.steps.ready import WaitReady
from k8slk_ops.steps.reboot import Reboot, WaitSSH
from k8slk_ops.steps.remove import DeleteNode, Drain, KubeadmReset, RemovalGuard, Uncordon
from k8slk_ops.steps.status import Status
from k8slk_ops.steps.unlisted import UnlistedMembers
from k8slk_ops.steps.upgrade import (
    Cordon,
    HealthGate,
    KubeadmUpgrade,
    PersistentDisk,
    UncordonUpgraded,
    UpgradeCheck,
    UpgradeDrain,
)

STEPS: dict[str, Step[Any]] = {
    step.name: step
    for step in (
        Preflight(),
        Init(),
        ApplyAddons(),
        UnlistedAddons(),
        PruneAddons(),
        MintCredentials(),
        Join(),
        WaitReady(),
        FetchKubeconfig(),
        RevokeCredentials(),
        Status(),
        RemovalGuard(),
        Drain(),
        Uncordon(),
        DeleteNode(),
        KubeadmReset(),
        RunCommand(),
        CertsCheck(),
        CertsRenew(),
        CertsRestart(),
        RemoveKubeadmConfig(),
        UpgradeCheck(),
        PersistentDisk(),
        Cordon(),
        Reboot(),
        WaitSSH(),
        KubeadmUpgrade(),
        HealthGate(),
        UncordonUpgraded(),
        UpgradeDrain(),
        EtcdSnapshot(),
        EtcdVerifyRestore(),
        EtcdRestorePrepare(),
        EtcdRestoreStop(),
        EtcdRestoreData(),
        EtcdRestoreStart(),
        EtcdRestoreCheck(),
        EtcdRebuildPrepare(),
        EtcdRebuildInit(),
        EtcdRebuildCredentials(),
        EtcdRebuildJoin(),
        EtcdRebuildCheck(),
        EtcdStatus(),
        RemoveEtcdMember(),
        EtcdMemberCheck(),
        EtcdHealthy(),
        UpgradeEtcdHealthy(),
        NodeMetadata(),
        UnlistedMembers(),
        DriftRead(),
        DriftCompare(),
    )
}

__all__ = ["STEPS", "Action", "Step", "StepPlan"]
