"""The pure kubeadm layer: render configs per API version, parse outputs, compute the CA pin.

No I/O here: strings and bytes in, typed values out. Everything above (steps, node) hands this
package what a node printed and writes what it renders.
"""

from k8slk_ops.kubeadm.capin import ca_cert_hash, is_ca_cert_hash
from k8slk_ops.kubeadm.certs import (
    CertExpiry,
    NodeCerts,
    apiserver_address,
    certs_command,
    days_left,
    expired_advice,
    parse_cert_expiration,
    parse_kubeadm_date,
    parse_openssl_enddate,
)
from k8slk_ops.kubeadm.durations import format_duration, parse_duration, parse_timeout
from k8slk_ops.kubeadm.errors import KubeadmError, ParseError, RenderError, VersionError
from k8slk_ops.kubeadm.failures import (
    FailureKind,
    KubeadmFailure,
    PreflightIssue,
    Severity,
    classify_kubeadm_error,
    diagnose_kubeadm_error,
    looks_like_error,
    parse_preflight_errors,
)
from k8slk_ops.kubeadm.formats import WITHHELD, is_certificate_key, is_token, token_id
from k8slk_ops.kubeadm.joincmd import JoinCommand, parse_join_commands, parse_print_join_command
from k8slk_ops.kubeadm.kubectl import NodeEvent, NodeStatus, parse_node_event, parse_nodes_json
from k8slk_ops.kubeadm.logs import (
    ATTEMPT_LINES,
    COMPLETED_LINE,
    CONFIGURED_LINE,
    FOUND_FLAG,
    LOG_PREFIX,
    MARKER_LINES,
    SETTLING_LINE,
    UNKNOWN_FLAG,
    WAITING_LINE,
    LogLine,
    format_time,
    log_message,
    parse_log_line,
)
from k8slk_ops.kubeadm.render import init_documents, join_documents, render_init, render_join
from k8slk_ops.kubeadm.secrets import find_secrets, may_hold_secret, redact, secret_patterns
from k8slk_ops.kubeadm.spec import CRI_SOCKET, BootstrapTokenSpec, InitSpec, JoinSpec
from k8slk_ops.kubeadm.summary import SUMMARY_CHARS, TAIL_LINES, failure_summary, failure_tail
from k8slk_ops.kubeadm.taskstate import KubeadmLogState, KubeadmState
from k8slk_ops.kubeadm.tokens import (
    CERTS_PROXY_DESCRIPTION,
    TokenInfo,
    join_tokens,
    parse_certificate_key,
    parse_token,
    parse_token_list,
    pick_join_token,
)
from k8slk_ops.kubeadm.upgrade import (
    is_upgrade_apply_success,
    is_upgrade_node_success,
    upgraded_to,
)
from k8slk_ops.kubeadm.versions import (
    ConfigApi,
    KubeVersion,
    config_api_version,
    parse_kubeadm_version,
    upgrade_step_allowed,
)

__all__ = [
    "ATTEMPT_LINES",
    "CERTS_PROXY_DESCRIPTION",
    "COMPLETED_LINE",
    "CONFIGURED_LINE",
    "CRI_SOCKET",
    "FOUND_FLAG",
    "LOG_PREFIX",
    "MARKER_LINES",
    "SETTLING_LINE",
    "SUMMARY_CHARS",
    "TAIL_LINES",
    "UNKNOWN_FLAG",
    "WAITING_LINE",
    "WITHHELD",
    "BootstrapTokenSpec",
    "CertExpiry",
    "ConfigApi",
    "FailureKind",
    "InitSpec",
    "JoinCommand",
    "JoinSpec",
    "KubeVersion",
    "KubeadmError",
    "KubeadmFailure",
    "KubeadmLogState",
    "KubeadmState",
    "LogLine",
    "NodeCerts",
    "NodeEvent",
    "NodeStatus",
    "ParseError",
    "PreflightIssue",
    "RenderError",
    "Severity",
    "TokenInfo",
    "VersionError",
    "apiserver_address",
    "ca_cert_hash",
    "certs_command",
    "classify_kubeadm_error",
    "config_api_version",
    "days_left",
    "diagnose_kubeadm_error",
    "expired_advice",
    "failure_summary",
    "failure_tail",
    "find_secrets",
    "format_duration",
    "format_time",
    "init_documents",
    "is_ca_cert_hash",
    "is_certificate_key",
    "is_token",
    "is_upgrade_apply_success",
    "is_upgrade_node_success",
    "join_documents",
    "join_tokens",
    "log_message",
    "looks_like_error",
    "may_hold_secret",
    "parse_cert_expiration",
    "parse_certificate_key",
    "parse_duration",
    "parse_join_commands",
    "parse_kubeadm_date",
    "parse_kubeadm_version",
    "parse_log_line",
    "parse_node_event",
    "parse_nodes_json",
    "parse_openssl_enddate",
    "parse_preflight_errors",
    "parse_print_join_command",
    "parse_timeout",
    "parse_token",
    "parse_token_list",
    "pick_join_token",
    "redact",
    "render_init",
    "render_join",
    "secret_patterns",
    "token_id",
    "upgrade_step_allowed",
    "upgraded_to",
]
