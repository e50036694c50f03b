"""What a run says of certificates that already expired (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from k8slk_ops import kubeadm

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
TABLE = """\
CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED
admin.conf                 Dec 07, 2026 02:59 UTC   <invalid>       ca                      no
apiserver                  Dec 07, 2026 02:59 UTC   <invalid>       ca                      no
front-proxy-client         Dec 06, 2027 03:00 UTC   364d            front-proxy-ca          no

CERTIFICATE AUTHORITY   EXPIRES                  RESIDUAL TIME   EXTERNALLY MANAGED
ca                      Dec 04, 2036 03:00 UTC   9y              no
"""


def test_openssl_enddate_is_read_in_both_day_paddings() -> None:
    assert kubeadm.parse_openssl_enddate("notAfter=Dec  7 03:00:27 2027 GMT\n") == datetime(
        2027, 12, 7, 3, 0, 27, tzinfo=UTC)
    assert kubeadm.parse_openssl_enddate("notAfter=Jan 17 03:00:27 2027 GMT") == datetime(
        2027, 1, 17, 3, 0, 27, tzinfo=UTC)
    assert kubeadm.parse_openssl_enddate("unable to load certificate") is None
    assert kubeadm.parse_openssl_enddate("notAfter=soon") is None


def test_expired_control_plane_certificates_are_named_with_certs_renew() -> None:
    certs = {"cp-1": kubeadm.NodeCerts.parse(TABLE)}
    said = kubeadm.expired_advice(certs, {}, "inv.yml", NOW, api_silent=True)
    assert said == [
        "certificates expired on cp-1: admin.conf, apiserver (the API refuses clients until they "
        "are renewed); renew them with `k8slk-ops certs renew inv.yml --within-days 30 --yes`, "
        "then fetch a new kubeconfig with `k8slk-ops kubeconfig inv.yml`"
    ]
    # The CA's expiry and certificates still valid say nothing.
    assert kubeadm.expired_advice(certs, {}, "inv.yml", NOW - timedelta(hours=1),
                                  api_silent=False) == []


def test_a_lapsed_kubelet_certificate_is_named_with_the_rejoin() -> None:
    said = kubeadm.expired_advice({}, {"w-1": NOW - timedelta(days=2), "w-2": NOW + timedelta(
        days=300)}, "inv.yml", NOW, api_silent=False)
    assert len(said) == 1 and said[0].startswith(
        "the kubelet client certificate of w-1 expired on 2026-12-05 03:00 UTC")
    assert "`k8slk-ops remove-node inv.yml w-1 --yes`" in said[0]
