//! What a fresh EKS or AKS cluster holds in `kube-system` before anybody bootstraps it: the
//! CoreDNS ConfigMap(s), Deployment and Service, and the CNI and `kube-proxy` DaemonSets, as the
//! cloud creates them (manager `eks` or `aks`).
//!
//! Only what tests of a bootstrap touch: no ServiceAccounts, RBAC, `aws-auth`, `kube-root-ca.crt`,
//! StorageClasses or EKS add-on metadata beyond labels.

use serde_json::{Value, json};

/// EKS's default CoreDNS configuration.
pub const EKS_COREFILE: &str = ".:53 {
    errors
    health {
        lameduck 5s
      }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
";

fn daemonset(name: &str, labels: Value, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": name}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": {"k8s-app": name}},
                "spec": {
                    "hostNetwork": true,
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": name,
                    "containers": [{"name": name, "image": image}],
                }
            }
        }
    })
}

pub(crate) fn eks_objects() -> Vec<Value> {
    let dns_labels = json!({"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"});
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": dns_labels},
            "data": {"Corefile": EKS_COREFILE},
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "coredns",
                "namespace": "kube-system",
                "labels": {"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"},
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": dns_labels},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": dns_labels},
                    "spec": {
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "coredns",
                        "containers": [{
                            "name": "coredns",
                            "image": "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/coredns:v1.12.1-eksbuild.2",
                            "args": ["-conf", "/etc/coredns/Corefile"],
                            "ports": [
                                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
                            ],
                            "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true}],
                        }],
                        "volumes": [{"name": "config-volume", "configMap": {"name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]}}],
                    }
                }
            }
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kube-dns",
                "namespace": "kube-system",
                "labels": {"eks.amazonaws.com/component": "kube-dns", "k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
                "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
            },
            "spec": {
                "clusterIP": "10.100.0.10",
                "selector": {"k8s-app": "kube-dns"},
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
                ],
            }
        }),
        daemonset(
            "aws-node",
            json!({"app.kubernetes.io/name": "aws-node", "k8s-app": "aws-node"}),
            "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.19.5-eksbuild.1",
        ),
        daemonset(
            "kube-proxy",
            json!({"eks.amazonaws.com/component": "kube-proxy", "k8s-app": "kube-proxy"}),
            "602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/kube-proxy:v1.33.0-minimal-eksbuild.2",
        ),
    ]
}

/// AKS's CoreDNS configuration (it imports the user's `coredns-custom` server blocks and
/// overrides).
pub const AKS_COREFILE: &str = ".:53 {
    errors
    ready
    health {
      lameduck 5s
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
      ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
    import custom/*.override
}
import custom/*.server
";

pub(crate) fn aks_objects() -> Vec<Value> {
    let reconcile = json!({"addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "kube-dns"});
    let dns_labels = json!({"k8s-app": "kube-dns", "version": "v20"});
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": reconcile},
            "data": {"Corefile": AKS_COREFILE},
        }),
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "coredns-custom",
                "namespace": "kube-system",
                "labels": {"addonmanager.kubernetes.io/mode": "EnsureExists", "k8s-app": "kube-dns"},
            },
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": reconcile},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "template": {
                    "metadata": {"labels": dns_labels},
                    "spec": {
                        "priorityClassName": "system-node-critical",
                        "serviceAccountName": "coredns",
                        "containers": [{
                            "name": "coredns",
                            "image": "mcr.microsoft.com/oss/v2/kubernetes/coredns:v1.12.1-1",
                            "args": ["-conf", "/etc/coredns/Corefile"],
                            "ports": [
                                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                            ],
                            "volumeMounts": [
                                {"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true},
                                {"name": "custom-config-volume", "mountPath": "/etc/coredns/custom", "readOnly": true},
                            ],
                        }],
                        "volumes": [
                            {"name": "config-volume", "configMap": {"name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]}},
                            {"name": "custom-config-volume", "configMap": {"name": "coredns-custom", "optional": true}},
                        ],
                    }
                }
            }
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kube-dns",
                "namespace": "kube-system",
                "labels": {"addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"},
            },
            "spec": {
                "clusterIP": "172.16.0.10",
                "selector": {"k8s-app": "kube-dns"},
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            }
        }),
        daemonset(
            "azure-cns",
            json!({"addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "azure-cns"}),
            "mcr.microsoft.com/containernetworking/azure-cns:v1.6.27",
        ),
        daemonset(
            "kube-proxy",
            json!({"addonmanager.kubernetes.io/mode": "Reconcile", "component": "kube-proxy", "tier": "node"}),
            "mcr.microsoft.com/oss/v2/kubernetes/kube-proxy:v1.33.2-1",
        ),
    ]
}

pub(crate) fn gke_objects() -> Vec<Value> {
    let reconcile = json!({"addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "kube-dns"});
    vec![
        // GKE creates it empty and leaves it to the user: stub domains and upstream servers.
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "kube-dns",
                "namespace": "kube-system",
                "labels": {"addonmanager.kubernetes.io/mode": "EnsureExists"},
            },
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": reconcile},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "kube-dns"}},
                    "spec": {
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "kube-dns",
                        "containers": [
                            {"name": "kubedns", "image": "gke.gcr.io/k8s-dns-kube-dns:1.23.0-gke.9"},
                            {"name": "dnsmasq", "image": "gke.gcr.io/k8s-dns-dnsmasq-nanny:1.23.0-gke.9"},
                        ],
                        "volumes": [{"name": "kube-dns-config", "configMap": {"name": "kube-dns", "optional": true}}],
                    }
                }
            }
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kube-dns",
                "namespace": "kube-system",
                "labels": {"addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "KubeDNS"},
            },
            "spec": {
                "clusterIP": "10.20.0.10",
                "selector": {"k8s-app": "kube-dns"},
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            }
        }),
        daemonset(
            "calico-node",
            json!({"addonmanager.kubernetes.io/mode": "Reconcile", "k8s-app": "calico-node"}),
            "gke.gcr.io/calico/node:v3.29.4-gke.1",
        ),
    ]
}
