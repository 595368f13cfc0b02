//! What a fresh EKS cluster holds in `kube-system` before anybody bootstraps it: the CoreDNS
//! ConfigMap, Deployment and Service, and the `aws-node` and `kube-proxy` DaemonSets, as EKS
//! creates them (manager `eks`).
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
