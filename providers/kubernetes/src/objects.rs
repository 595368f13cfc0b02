//! The objects the tool writes itself, as typed k8s-openapi structs (or typed structs of the
//! custom resources' own schemas): namespaces, CoreDNS configuration, the per-tenant ingress
//! controllers, Calico's `Installation`, cert-manager's issuer and certificate.
//!
//! Upstream manifests (tigera-operator, ingress-nginx, cert-manager) are not built here; see
//! [`crate::manifests`] and the add-on table. Nothing here talks to a cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, Namespace,
    ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext,
    Service, ServiceAccount, ServicePort, ServiceSpec,
};
use k8s_openapi::api::networking::v1::{IngressClass, IngressClassSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value as Json;

use crate::layout::TenantLayout;

/// Labels on everything the tool writes itself.
pub fn managed_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_string(), "matih-infra".to_string()),
        ("app.kubernetes.io/part-of".to_string(), "matih".to_string()),
    ])
}

fn meta(name: &str, namespace: Option<&str>, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels),
        ..Default::default()
    }
}

/// A typed object as the JSON the API server receives. k8s-openapi's serializers write
/// `apiVersion` and `kind`.
pub fn to_json<T: Serialize>(obj: &T) -> Json {
    serde_json::to_value(obj).expect("k8s-openapi types serialize")
}

pub fn namespace(name: &str, labels: BTreeMap<String, String>) -> Namespace {
    let mut l = managed_labels();
    l.extend(labels);
    Namespace { metadata: meta(name, None, l), ..Default::default() }
}

// ---- CoreDNS -------------------------------------------------------------------------------

/// Upstream resolvers and per-domain resolvers from the platform spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DnsConfig {
    pub forwarders: Vec<String>,
    pub stub_domains: BTreeMap<String, Vec<String>>,
}

/// EKS: the whole `coredns` Corefile in `kube-system` (EKS's default plus the spec's
/// forwarders and stub domains). `reload` makes CoreDNS pick the change up without a restart.
pub fn eks_corefile(dns: &DnsConfig) -> String {
    let upstream = if dns.forwarders.is_empty() { "/etc/resolv.conf".to_string() } else { dns.forwarders.join(" ") };
    let mut s = format!(
        ".:53 {{\n    errors\n    health {{\n        lameduck 5s\n    }}\n    ready\n    \
         kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        pods insecure\n        \
         fallthrough in-addr.arpa ip6.arpa\n    }}\n    prometheus :9153\n    forward . {upstream}\n    \
         cache 30\n    loop\n    reload\n    loadbalance\n}}\n"
    );
    for (domain, servers) in &dns.stub_domains {
        s.push_str(&format!(
            "{domain}:53 {{\n    errors\n    cache 30\n    forward . {}\n    reload\n}}\n",
            servers.join(" ")
        ));
    }
    s
}

/// EKS: the `coredns` ConfigMap. EKS created it; the tool takes over `data.Corefile` only.
pub fn eks_coredns(dns: &DnsConfig) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("coredns".into()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("Corefile".to_string(), eks_corefile(dns))])),
        ..Default::default()
    }
}

/// AKS: `coredns-custom`, which AKS imports into its own Corefile: `*.server` keys become server
/// blocks (stub domains). The spec's forwarders are not here: AKS's default block already has
/// `forward . /etc/resolv.conf`, and a second `forward` there (an `*.override`) stops CoreDNS
/// ("this plugin can only be used once per Server Block"); the AKS provider sets them as the
/// VNet's DNS servers instead, which the nodes' resolv.conf (and so CoreDNS) follows.
pub fn aks_coredns_custom(dns: &DnsConfig) -> ConfigMap {
    let mut data = BTreeMap::new();
    for (domain, servers) in &dns.stub_domains {
        data.insert(
            format!("{}.server", domain.replace('.', "-")),
            format!("{domain}:53 {{\n    errors\n    cache 30\n    forward . {}\n}}\n", servers.join(" ")),
        );
    }
    ConfigMap {
        metadata: meta("coredns-custom", Some("kube-system"), managed_labels()),
        data: Some(data),
        ..Default::default()
    }
}

/// GKE: `kube-dns` stub domains and upstream nameservers (kube-dns reads JSON values).
pub fn gke_kube_dns(dns: &DnsConfig) -> ConfigMap {
    let mut data = BTreeMap::new();
    if !dns.stub_domains.is_empty() {
        data.insert("stubDomains".into(), serde_json::to_string(&dns.stub_domains).expect("string map"));
    }
    if !dns.forwarders.is_empty() {
        data.insert("upstreamNameservers".into(), serde_json::to_string(&dns.forwarders).expect("string list"));
    }
    ConfigMap {
        metadata: meta("kube-dns", Some("kube-system"), managed_labels()),
        data: Some(data),
        ..Default::default()
    }
}

// ---- Calico (EKS: policy only on the Amazon VPC CNI) -----------------------------------------

/// `operator.tigera.io/v1` `Installation`, as far as the tool sets it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Installation {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: InstallationSpec,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallationSpec {
    pub kubernetes_provider: &'static str,
    pub cni: InstallationCni,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallationCni {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// Calico for network policy only: the Amazon VPC CNI (`aws-node`) keeps pod networking.
pub fn eks_calico_installation() -> Installation {
    Installation {
        api_version: "operator.tigera.io/v1",
        kind: "Installation",
        metadata: meta("default", None, managed_labels()),
        spec: InstallationSpec { kubernetes_provider: "EKS", cni: InstallationCni { kind: "AmazonVPC" } },
    }
}

// ---- cert-manager issuer and certificate ------------------------------------------------------

/// The ClusterIssuer's name (the platform document's).
pub const CLUSTER_ISSUER: &str = "letsencrypt-prod-dns01";
/// Let's Encrypt's production directory.
pub const ACME_SERVER: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// The wildcard certificate's secret in `matih-ingress`.
pub const WILDCARD_SECRET: &str = "matih-wildcard-tls";
/// With per-tenant certificates: the platform's own (`<zone>`, `api.<zone>`) in `matih-ingress`.
pub const PLATFORM_SECRET: &str = "matih-platform-tls";
/// With per-tenant certificates: each tenant's, in its namespace.
pub const TENANT_SECRET: &str = "tenant-tls";

/// The DNS01 solver of the cloud that hosts the zone, as the cloud binds it (resolved).
pub type Dns01Solver = matih_provider_kit::Dns01Solver<String>;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterIssuer {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: IssuerSpec,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssuerSpec {
    pub acme: Acme,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Acme {
    pub server: String,
    pub email: String,
    pub private_key_secret_ref: SecretRef,
    pub solvers: Vec<Solver>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecretRef {
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Solver {
    pub dns01: Json,
}

/// `letsencrypt-prod-dns01` with the zone's DNS01 solver.
pub fn cluster_issuer(email: &str, solver: &Dns01Solver) -> ClusterIssuer {
    let dns01 = match solver {
        Dns01Solver::Route53 { region, hosted_zone_id } => {
            serde_json::json!({"route53": {"region": region, "hostedZoneID": hosted_zone_id}})
        }
        Dns01Solver::AzureDns { subscription_id, resource_group, hosted_zone_name, client_id } => serde_json::json!({
            "azureDNS": {
                "subscriptionID": subscription_id,
                "resourceGroupName": resource_group,
                "hostedZoneName": hosted_zone_name,
                "environment": "AzurePublicCloud",
                "managedIdentity": {"clientID": client_id},
            }
        }),
        Dns01Solver::CloudDns { project, hosted_zone_name } => {
            serde_json::json!({"cloudDNS": {"project": project, "hostedZoneName": hosted_zone_name}})
        }
    };
    ClusterIssuer {
        api_version: "cert-manager.io/v1",
        kind: "ClusterIssuer",
        metadata: meta(CLUSTER_ISSUER, None, managed_labels()),
        spec: IssuerSpec {
            acme: Acme {
                server: ACME_SERVER.into(),
                email: email.into(),
                private_key_secret_ref: SecretRef { name: format!("{CLUSTER_ISSUER}-account-key") },
                solvers: vec![Solver { dns01 }],
            },
        },
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: ObjectMeta,
    pub spec: CertificateSpec,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSpec {
    pub secret_name: String,
    pub dns_names: Vec<String>,
    pub issuer_ref: IssuerRef,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssuerRef {
    pub name: String,
    pub kind: String,
    pub group: String,
}

/// A certificate for `names` in `namespace`, issued by the platform's ClusterIssuer.
pub fn certificate(name: &str, namespace: &str, secret: &str, names: Vec<String>) -> Certificate {
    Certificate {
        api_version: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: meta(name, Some(namespace), managed_labels()),
        spec: CertificateSpec {
            secret_name: secret.into(),
            dns_names: names,
            issuer_ref: IssuerRef {
                name: CLUSTER_ISSUER.into(),
                kind: "ClusterIssuer".into(),
                group: "cert-manager.io".into(),
            },
        },
    }
}

// ---- ingress-nginx: a tenant's dedicated controller -------------------------------------------

/// How a controller's Service of type LoadBalancer gets the addresses the cloud reserved, as the
/// cloud binds it (resolved).
pub type LoadBalancer = matih_provider_kit::LoadBalancer<String>;

/// What a load balancer binding means for the controller's Service.
pub trait ServiceBinding {
    /// Annotations for the Service (on top of upstream's, for the platform controller).
    fn annotations(&self) -> BTreeMap<String, String>;
    /// `spec.loadBalancerIP`, where the cloud binds a reserved address that way.
    fn load_balancer_ip(&self) -> Option<String>;
}

impl ServiceBinding for LoadBalancer {
    fn annotations(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        match self {
            LoadBalancer::AwsNlb { eip_allocations } => {
                a.insert("service.beta.kubernetes.io/aws-load-balancer-type".into(), "nlb".into());
                a.insert("service.beta.kubernetes.io/aws-load-balancer-scheme".into(), "internet-facing".into());
                a.insert(
                    "service.beta.kubernetes.io/aws-load-balancer-eip-allocations".into(),
                    eip_allocations.join(","),
                );
            }
            LoadBalancer::AzurePublicIp { resource_group, name, .. } => {
                a.insert(
                    "service.beta.kubernetes.io/azure-load-balancer-resource-group".into(),
                    resource_group.clone(),
                );
                // The cloud provider binds the Service to this very public IP (by name; the
                // address in `loadBalancerIP` alone is deprecated).
                a.insert("service.beta.kubernetes.io/azure-pip-name".into(), name.clone());
            }
            LoadBalancer::GcpStaticIp { .. } => {}
        }
        a
    }

    fn load_balancer_ip(&self) -> Option<String> {
        match self {
            LoadBalancer::AwsNlb { .. } => None,
            LoadBalancer::AzurePublicIp { ip, .. } | LoadBalancer::GcpStaticIp { ip } => Some(ip.clone()),
        }
    }
}

/// The pinned controller image (ingress-nginx's final release, by digest as upstream pins it).
pub const INGRESS_NGINX_IMAGE: &str = "registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1";

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Everything a tenant's dedicated controller needs, in its namespace: ingress class
/// `nginx-tenant-<slug>` with controller value `k8s.io/ingress-nginx-tenant-<slug>` and election id
/// `ingress-nginx-tenant-<slug>-leader` (so controllers never fight over each other's Ingresses),
/// watching only the tenant's namespace, behind its own load balancer. No admission webhook: the
/// platform controller's webhook stays the only one.
pub fn tenant_controller(tenant: &TenantLayout, lb: &LoadBalancer) -> Vec<Json> {
    let ns = tenant.namespace.as_str();
    let instance = format!("ingress-nginx-tenant-{}", tenant.slug);
    let class = tenant.ingress_class();
    let controller_value = format!("k8s.io/ingress-nginx-tenant-{}", tenant.slug);
    let name = format!("{instance}-controller");
    let selector = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "ingress-nginx".to_string()),
        ("app.kubernetes.io/instance".to_string(), instance.clone()),
        ("app.kubernetes.io/component".to_string(), "controller".to_string()),
    ]);
    let mut labels = managed_labels();
    labels.extend(selector.clone());

    let sa = ServiceAccount { metadata: meta(&instance, Some(ns), labels.clone()), ..Default::default() };
    let config = ConfigMap {
        metadata: meta(&name, Some(ns), labels.clone()),
        data: Some(BTreeMap::from([("allow-snippet-annotations".to_string(), "false".to_string())])),
        ..Default::default()
    };
    let role = Role {
        metadata: meta(&instance, Some(ns), labels.clone()),
        rules: Some(vec![
            rule(&[""], &["namespaces"], &["get"]),
            rule(&[""], &["configmaps", "pods", "secrets", "endpoints"], &["get", "list", "watch"]),
            rule(&[""], &["services"], &["get", "list", "watch"]),
            rule(&["networking.k8s.io"], &["ingresses"], &["get", "list", "watch"]),
            rule(&["networking.k8s.io"], &["ingresses/status"], &["update"]),
            rule(&["coordination.k8s.io"], &["leases"], &["get", "create", "update"]),
            rule(&[""], &["events"], &["create", "patch"]),
            rule(&["discovery.k8s.io"], &["endpointslices"], &["list", "watch", "get"]),
        ]),
    };
    let sa_subject = Subject {
        kind: "ServiceAccount".into(),
        name: instance.clone(),
        namespace: Some(ns.to_string()),
        ..Default::default()
    };
    let binding = RoleBinding {
        metadata: meta(&instance, Some(ns), labels.clone()),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: instance.clone(),
        },
        subjects: Some(vec![sa_subject.clone()]),
    };
    // Cluster-wide reads the controller makes even when it watches one namespace.
    let cluster_role = ClusterRole {
        metadata: meta(&instance, None, labels.clone()),
        rules: Some(vec![
            rule(&[""], &["nodes"], &["get", "list", "watch"]),
            rule(&["networking.k8s.io"], &["ingressclasses"], &["get", "list", "watch"]),
        ]),
        ..Default::default()
    };
    let cluster_binding = ClusterRoleBinding {
        metadata: meta(&instance, None, labels.clone()),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: instance.clone(),
        },
        subjects: Some(vec![sa_subject]),
    };
    let mut svc_meta = meta(&name, Some(ns), labels.clone());
    svc_meta.annotations = Some(lb.annotations());
    let service = Service {
        metadata: svc_meta,
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            external_traffic_policy: Some("Local".into()),
            load_balancer_ip: lb.load_balancer_ip(),
            selector: Some(selector.clone()),
            ports: Some(vec![
                ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    protocol: Some("TCP".into()),
                    target_port: Some(IntOrString::String("http".into())),
                    app_protocol: Some("http".into()),
                    ..Default::default()
                },
                ServicePort {
                    name: Some("https".into()),
                    port: 443,
                    protocol: Some("TCP".into()),
                    target_port: Some(IntOrString::String("https".into())),
                    app_protocol: Some("https".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let env_from = |field: &str| EnvVarSource {
        field_ref: Some(ObjectFieldSelector { field_path: field.into(), ..Default::default() }),
        ..Default::default()
    };
    let probe = || Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/healthz".into()),
            port: IntOrString::Int(10254),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(10),
        period_seconds: Some(10),
        timeout_seconds: Some(1),
        failure_threshold: Some(3),
        success_threshold: Some(1),
        ..Default::default()
    };
    let container = Container {
        name: "controller".into(),
        image: Some(INGRESS_NGINX_IMAGE.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        args: Some(vec![
            "/nginx-ingress-controller".into(),
            format!("--publish-service=$(POD_NAMESPACE)/{name}"),
            format!("--election-id={instance}-leader"),
            format!("--controller-class={controller_value}"),
            format!("--ingress-class={class}"),
            format!("--configmap=$(POD_NAMESPACE)/{name}"),
            "--watch-namespace=$(POD_NAMESPACE)".into(),
            "--watch-ingress-without-class=false".into(),
        ]),
        env: Some(vec![
            EnvVar { name: "POD_NAME".into(), value_from: Some(env_from("metadata.name")), ..Default::default() },
            EnvVar {
                name: "POD_NAMESPACE".into(),
                value_from: Some(env_from("metadata.namespace")),
                ..Default::default()
            },
            EnvVar {
                name: "LD_PRELOAD".into(),
                value: Some("/usr/local/lib/libmimalloc.so".into()),
                ..Default::default()
            },
        ]),
        ports: Some(vec![
            ContainerPort {
                name: Some("http".into()),
                container_port: 80,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            ContainerPort {
                name: Some("https".into()),
                container_port: 443,
                protocol: Some("TCP".into()),
                ..Default::default()
            },
        ]),
        liveness_probe: Some(Probe { failure_threshold: Some(5), ..probe() }),
        readiness_probe: Some(probe()),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("100m".into())),
                ("memory".to_string(), Quantity("90Mi".into())),
            ])),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_BIND_SERVICE".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            run_as_non_root: Some(true),
            run_as_user: Some(101),
            run_as_group: Some(82),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut pod_labels = labels.clone();
    pod_labels.extend(selector.clone());
    let deployment = Deployment {
        metadata: meta(&name, Some(ns), labels.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(2),
            selector: LabelSelector { match_labels: Some(selector), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), ..Default::default() }),
                spec: Some(PodSpec {
                    service_account_name: Some(instance.clone()),
                    containers: vec![container],
                    node_selector: Some(BTreeMap::from([("kubernetes.io/os".to_string(), "linux".to_string())])),
                    termination_grace_period_seconds: Some(300),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let ingress_class = IngressClass {
        metadata: meta(&class, None, labels),
        spec: Some(IngressClassSpec { controller: Some(controller_value), ..Default::default() }),
    };
    vec![
        to_json(&sa),
        to_json(&config),
        to_json(&role),
        to_json(&binding),
        to_json(&cluster_role),
        to_json(&cluster_binding),
        to_json(&service),
        to_json(&deployment),
        to_json(&ingress_class),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corefile_carries_forwarders_and_stub_domains() {
        let dns = DnsConfig {
            forwarders: vec!["1.1.1.1".into(), "8.8.8.8".into()],
            stub_domains: BTreeMap::from([("corp.example".to_string(), vec!["10.0.0.2".to_string()])]),
        };
        let c = eks_corefile(&dns);
        assert!(c.contains("forward . 1.1.1.1 8.8.8.8\n"), "{c}");
        assert!(c.contains("corp.example:53 {\n    errors\n    cache 30\n    forward . 10.0.0.2\n"), "{c}");
        assert!(eks_corefile(&DnsConfig::default()).contains("forward . /etc/resolv.conf"));
    }

    #[test]
    fn tenant_controller_has_its_own_class_election_id_and_addresses() {
        let t = TenantLayout { slug: "acme".into(), namespace: "matih-tenant-acme".into(), dedicated_ingress: true };
        let lb = LoadBalancer::AwsNlb { eip_allocations: vec!["eipalloc-1".into(), "eipalloc-2".into()] };
        let objs = tenant_controller(&t, &lb);
        let by_kind = |k: &str| objs.iter().find(|o| o["kind"] == k).unwrap_or_else(|| panic!("no {k}"));
        let args = by_kind("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].clone();
        let args: Vec<String> = serde_json::from_value(args).unwrap();
        assert!(args.contains(&"--ingress-class=nginx-tenant-acme".to_string()));
        assert!(args.contains(&"--controller-class=k8s.io/ingress-nginx-tenant-acme".to_string()));
        assert!(args.contains(&"--election-id=ingress-nginx-tenant-acme-leader".to_string()));
        assert_eq!(by_kind("IngressClass")["metadata"]["name"], "nginx-tenant-acme");
        assert_eq!(by_kind("IngressClass")["spec"]["controller"], "k8s.io/ingress-nginx-tenant-acme");
        let svc = by_kind("Service");
        assert_eq!(svc["spec"]["type"], "LoadBalancer");
        assert_eq!(
            svc["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-eip-allocations"],
            "eipalloc-1,eipalloc-2"
        );
        for o in &objs {
            let ns = o["metadata"]["namespace"].as_str();
            let cluster_scoped =
                matches!(o["kind"].as_str(), Some("ClusterRole" | "ClusterRoleBinding" | "IngressClass"));
            assert_eq!(ns.is_none(), cluster_scoped, "{}", o["kind"]);
            if !cluster_scoped {
                assert_eq!(ns, Some("matih-tenant-acme"));
            }
        }
    }

    #[test]
    fn azure_tenant_service_names_the_resource_group_and_ip() {
        let t = TenantLayout { slug: "acme".into(), namespace: "matih-tenant-acme".into(), dedicated_ingress: true };
        let lb = LoadBalancer::AzurePublicIp {
            ip: "20.1.2.3".into(),
            name: "matih-prod-ingress-acme".into(),
            resource_group: "matih-prod-rg".into(),
        };
        let svc = tenant_controller(&t, &lb).into_iter().find(|o| o["kind"] == "Service").unwrap();
        assert_eq!(
            svc["metadata"]["annotations"]["service.beta.kubernetes.io/azure-load-balancer-resource-group"],
            "matih-prod-rg"
        );
        assert_eq!(
            svc["metadata"]["annotations"]["service.beta.kubernetes.io/azure-pip-name"],
            "matih-prod-ingress-acme"
        );
        assert_eq!(svc["spec"]["loadBalancerIP"], "20.1.2.3");
    }
}
