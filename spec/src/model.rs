//! The platform spec as typed values, after decoding and validation.
//!
//! A `PlatformSpec` handed out by [`crate::load`] has passed every check in this crate, so its
//! users can rely on the invariants documented on each field (e.g. an EKS VPC CIDR that can be
//! carved into the subnets it needs). Defaults are already applied.
//!
//! These types hold no source locations and know nothing of YAML; they carry no cloud
//! resource model either (the providers derive resources from them).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// The three managed Kubernetes services the platform can stand up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudKind {
    /// Amazon EKS.
    Eks,
    /// Google GKE.
    Gke,
    /// Azure AKS.
    Aks,
}

impl CloudKind {
    /// Every cloud, in spec order.
    pub const ALL: [CloudKind; 3] = [CloudKind::Eks, CloudKind::Gke, CloudKind::Aks];

    /// The lower-case name used in the spec, addresses and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudKind::Eks => "eks",
            CloudKind::Gke => "gke",
            CloudKind::Aks => "aks",
        }
    }
}

impl fmt::Display for CloudKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no cloud.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cloud `{0}`: expected one of eks, gke, aks")]
pub struct UnknownCloud(pub String);

impl FromStr for CloudKind {
    type Err = UnknownCloud;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CloudKind::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownCloud(s.to_string()))
    }
}

/// The whole platform spec: `matih.yaml` plus one file per tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub platform: Platform,
    /// At least one cloud is configured.
    pub clouds: Clouds,
    pub addons: Addons,
    /// Where state is kept (a local file unless the spec says otherwise).
    pub state: StateSpec,
    /// Sorted by slug; slugs are unique.
    pub tenants: Vec<TenantSpec>,
}

impl PlatformSpec {
    /// The DNS zone this environment serves: the platform domain for `prod` (`matih.ai`),
    /// `<environment>.<domain>` otherwise (`staging.matih.ai`).
    pub fn zone_name(&self) -> String {
        if self.platform.is_prod() {
            self.platform.domain.clone()
        } else {
            format!("{}.{}", self.platform.environment, self.platform.domain)
        }
    }

    /// The zone that delegates to [`PlatformSpec::zone_name`]: the platform domain for a
    /// non-prod environment, `None` for prod (its zone is the domain itself).
    pub fn parent_zone(&self) -> Option<String> {
        (!self.platform.is_prod()).then(|| self.platform.domain.clone())
    }

    /// The view of `cloud`'s cluster that every cloud shares, `None` if the spec has no section
    /// for that cloud.
    pub fn cluster(&self, cloud: CloudKind) -> Option<ClusterView<'_>> {
        match cloud {
            CloudKind::Eks => self
                .clouds
                .eks
                .as_ref()
                .map(|c| ClusterView::new(cloud, &c.region, &c.kubernetes_version, &c.node_pools)),
            CloudKind::Gke => self
                .clouds
                .gke
                .as_ref()
                .map(|c| ClusterView::new(cloud, &c.region, &c.kubernetes_version, &c.node_pools)),
            CloudKind::Aks => self
                .clouds
                .aks
                .as_ref()
                .map(|c| ClusterView::new(cloud, &c.location, &c.kubernetes_version, &c.node_pools)),
        }
    }

    /// The address ranges of `cloud`'s cluster: nodes, pods and services (EKS: the VPC, which
    /// nodes and pods share under the VPC CNI, and the service range; GKE: the subnet and its pod
    /// and service ranges; AKS: the VNet, which holds the node and pod subnets under Azure CNI,
    /// and the service range). Empty when the spec has no section for `cloud`.
    pub fn cluster_ranges(&self, cloud: CloudKind) -> Vec<Ipv4Net> {
        match cloud {
            CloudKind::Eks => {
                self.clouds.eks.iter().flat_map(|c| [c.network.vpc_cidr, c.network.service_cidr]).collect()
            }
            CloudKind::Gke => self
                .clouds
                .gke
                .iter()
                .flat_map(|c| [c.network.subnet_cidr, c.network.pods_cidr, c.network.services_cidr])
                .collect(),
            CloudKind::Aks => {
                self.clouds.aks.iter().flat_map(|c| [c.network.vnet_cidr, c.network.service_cidr]).collect()
            }
        }
    }
}

/// Who the platform is and where it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// A DNS label (at most 32 characters); prefixes cloud resource names.
    pub name: String,
    /// The platform's DNS domain (`matih.ai`): lower case, at least two labels.
    pub domain: String,
    /// `prod`, or another DNS label (`staging`) whose zone `<environment>.<domain>` is delegated
    /// from the domain.
    pub environment: String,
    /// Contact address given to the ACME (Let's Encrypt) account of cert-manager.
    pub acme_email: String,
}

impl Platform {
    /// The environment name that serves the platform domain itself.
    pub const PROD: &'static str = "prod";

    /// Whether this is the production environment.
    pub fn is_prod(&self) -> bool {
        self.environment == Self::PROD
    }
}

/// One optional section per cloud.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Clouds {
    pub eks: Option<EksSpec>,
    pub gke: Option<GkeSpec>,
    pub aks: Option<AksSpec>,
}

impl Clouds {
    /// The clouds that have a section, in spec order.
    pub fn configured(&self) -> Vec<CloudKind> {
        let present = [self.eks.is_some(), self.gke.is_some(), self.aks.is_some()];
        CloudKind::ALL.into_iter().zip(present).filter(|(_, p)| *p).map(|(c, _)| c).collect()
    }
}

/// What every cloud's cluster has in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterView<'a> {
    pub cloud: CloudKind,
    /// The AWS or GCP region, or the Azure location.
    pub region: &'a str,
    /// `1.NN`.
    pub kubernetes_version: &'a str,
    /// At least one pool.
    pub node_pools: &'a [NodePool],
}

impl<'a> ClusterView<'a> {
    fn new(cloud: CloudKind, region: &'a str, kubernetes_version: &'a str, node_pools: &'a [NodePool]) -> Self {
        Self { cloud, region, kubernetes_version, node_pools }
    }
}

/// A group of identical worker nodes, the same shape on every cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePool {
    /// A DNS label, unique within its cluster (on AKS also: at most 12 lower-case letters and
    /// digits, starting with a letter).
    pub name: String,
    /// The cloud's instance type / machine type / VM size, e.g. `m6i.large`.
    pub machine_type: String,
    /// `min <= max`, `max >= 1`.
    pub min: u32,
    pub max: u32,
    /// Within `[min, max]` when set; the cloud's autoscaler decides otherwise.
    pub desired: Option<u32>,
}

/// Amazon EKS: a VPC of its own, nodes and pods on VPC IPs (Amazon VPC CNI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksSpec {
    pub region: String,
    pub kubernetes_version: String,
    pub network: EksNetwork,
    pub endpoint: EksEndpoint,
    pub node_pools: Vec<NodePool>,
}

/// The EKS VPC and Kubernetes service range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksNetwork {
    /// Between /16 and /24, and large enough for [`EksNetwork::subnets`] to give every subnet
    /// at least a /24.
    pub vpc_cidr: Ipv4Net,
    /// 2 to 6; one public and one private subnet in each.
    pub availability_zones: u8,
    pub nat_gateways: NatGateways,
    /// Inside 10/8, 172.16/12 or 192.168/16, /12 to /24, not overlapping the VPC.
    pub service_cidr: Ipv4Net,
    /// The cluster DNS (CoreDNS) service IP; when unset, the tenth address of the service
    /// range. See [`EksNetwork::dns_ip`].
    pub cluster_dns_ip: Option<Ipv4Addr>,
}

impl EksNetwork {
    /// The cluster DNS service IP: the configured one, or the tenth address of the service
    /// range (what EKS picks by default).
    pub fn dns_ip(&self) -> Ipv4Addr {
        self.cluster_dns_ip.unwrap_or_else(|| tenth_address(self.service_cidr))
    }

    /// The prefix length of each subnet: the VPC split into the smallest power of two of equal
    /// slices that holds `2 × availability_zones` subnets.
    pub fn subnet_prefix_len(&self) -> u8 {
        self.vpc_cidr.prefix_len() + subnet_bits(self.availability_zones)
    }

    /// The subnet layout: slice `i` of the VPC is the public subnet of zone `i`, slice
    /// `availability_zones + i` its private subnet; spare slices stay unused.
    pub fn subnets(&self) -> EksSubnets {
        let az = usize::from(self.availability_zones);
        // Validation guarantees the new prefix is <= 24, so this cannot fail.
        let slices: Vec<Ipv4Net> =
            self.vpc_cidr.subnets(self.subnet_prefix_len()).map(Iterator::collect).unwrap_or_default();
        EksSubnets {
            public: slices.iter().take(az).copied().collect(),
            private: slices.iter().skip(az).take(az).copied().collect(),
        }
    }
}

/// Extra prefix bits needed to cut `availability_zones × 2` equal subnets.
pub(crate) fn subnet_bits(availability_zones: u8) -> u8 {
    let needed = u32::from(availability_zones) * 2;
    needed.next_power_of_two().trailing_zeros() as u8
}

pub(crate) fn tenth_address(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()).saturating_add(10))
}

/// The EKS subnets, one per availability zone in zone order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksSubnets {
    pub public: Vec<Ipv4Net>,
    pub private: Vec<Ipv4Net>,
}

/// How many NAT gateways the EKS VPC gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatGateways {
    /// One, shared by all zones: cheaper, but a zone outage can cut egress.
    Single,
    /// One per availability zone.
    PerAz,
}

impl NatGateways {
    /// The spelling used in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            NatGateways::Single => "single",
            NatGateways::PerAz => "per-az",
        }
    }
}

impl fmt::Display for NatGateways {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who can reach the EKS API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksEndpoint {
    /// At least one of `public_access` and `private_access` is true.
    pub public_access: bool,
    pub private_access: bool,
    /// Sources allowed on the public endpoint; `[0.0.0.0/0]` by default.
    pub public_access_cidrs: Vec<Ipv4Net>,
}

impl Default for EksEndpoint {
    fn default() -> Self {
        Self { public_access: true, private_access: true, public_access_cidrs: vec![Ipv4Net::default()] }
    }
}

/// Google GKE: a VPC-native cluster; pods and services use alias-IP secondary ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GkeSpec {
    pub project: String,
    pub region: String,
    pub kubernetes_version: String,
    pub network: GkeNetwork,
    pub node_pools: Vec<NodePool>,
    /// What enforces NetworkPolicy.
    pub dataplane: GkeDataplane,
}

/// What enforces NetworkPolicy on a GKE cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GkeDataplane {
    /// Calico, through GKE's network policy enforcement add-on (what the platform document asks).
    #[default]
    Calico,
    /// GKE Dataplane V2 (eBPF, Cilium-based): enforces NetworkPolicy itself; Calico is not used.
    DataplaneV2,
}

/// The GKE subnet and its secondary ranges, and the control plane's range; the four do not
/// overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GkeNetwork {
    /// Primary range of the subnet: node IPs.
    pub subnet_cidr: Ipv4Net,
    /// Secondary range for pod IPs.
    pub pods_cidr: Ipv4Net,
    /// Secondary range for service IPs.
    pub services_cidr: Ipv4Net,
    /// The /28 of the control plane's private endpoint (private nodes reach it there).
    pub master_cidr: Ipv4Net,
}

impl GkeNetwork {
    /// The control plane's /28 when the spec names none.
    pub const DEFAULT_MASTER_CIDR: &str = "172.16.0.0/28";
}

/// Azure AKS: Azure CNI, so nodes (and pods) take VNet IPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AksSpec {
    /// A GUID.
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
    pub kubernetes_version: String,
    pub network: AksNetwork,
    pub node_pools: Vec<NodePool>,
    /// Entra ID for the cluster; `None` keeps Kubernetes RBAC with local accounts.
    pub entra_id: Option<AksEntraId>,
}

/// AKS-managed Entra ID integration: users sign in with Entra ID, Azure RBAC authorizes them in
/// the cluster, local accounts are off. At least one admin (a group or a principal) is named, or
/// nobody — this tool's bootstrap included — could reach the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AksEntraId {
    /// Object IDs of Entra ID groups whose members are cluster admins.
    pub admin_group_ids: Vec<String>,
    /// Object IDs of users, groups or service principals given "Azure Kubernetes Service RBAC
    /// Cluster Admin" on the cluster (the principal that runs this tool, when it is not in an
    /// admin group).
    pub cluster_admins: Vec<String>,
}

/// The AKS VNet, its subnets and the Kubernetes service range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AksNetwork {
    pub vnet_cidr: Ipv4Net,
    /// Inside the VNet. Without a pod subnet, pods take IPs from here too.
    pub node_subnet_cidr: Ipv4Net,
    /// Inside the VNet, not overlapping the node subnet; enables dynamic pod IP allocation.
    pub pod_subnet_cidr: Option<Ipv4Net>,
    /// Overlaps neither the VNet nor the ranges AKS reserves.
    pub service_cidr: Ipv4Net,
    /// Inside the service range, neither its network address nor its first host; when unset,
    /// the tenth address. See [`AksNetwork::dns_ip`].
    pub dns_service_ip: Option<Ipv4Addr>,
}

impl AksNetwork {
    /// Pods per node: Azure CNI's default when pods take node-subnet addresses, and the dynamic
    /// allocation's default with a pod subnet.
    pub fn max_pods(&self) -> u32 {
        if self.pod_subnet_cidr.is_some() { 110 } else { 30 }
    }

    /// Addresses Azure keeps in every subnet (network, broadcast and three of its own).
    pub const SUBNET_RESERVED: u64 = 5;

    /// The cluster DNS service IP: the configured one, or the tenth address of the service
    /// range.
    pub fn dns_ip(&self) -> Ipv4Addr {
        self.dns_service_ip.unwrap_or_else(|| tenth_address(self.service_cidr))
    }
}

/// Where the state of each cloud of this environment is kept: `state:` in the platform spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateSpec {
    pub backend: StateBackend,
    /// Key prefix inside the bucket or container, without slashes at either end (default: the
    /// platform name). Unused by the local backend.
    pub prefix: Option<String>,
}

/// A place for state. Names are checked against each service's naming rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StateBackend {
    /// `.matih/state/<environment>-<cloud>.json` beside the platform spec.
    #[default]
    Local,
    /// An S3 bucket; `region` defaults to the AWS configuration chain's, then `clouds.eks.region`.
    S3 { bucket: String, region: Option<String> },
    /// A Cloud Storage bucket.
    Gcs { bucket: String },
    /// A blob container in an Azure storage account.
    AzBlob { account: String, container: String },
}

impl StateBackend {
    /// The name `backend:` takes.
    pub fn name(&self) -> &'static str {
        match self {
            StateBackend::Local => "local",
            StateBackend::S3 { .. } => "s3",
            StateBackend::Gcs { .. } => "gcs",
            StateBackend::AzBlob { .. } => "azblob",
        }
    }
}

impl PlatformSpec {
    /// The object key of `cloud`'s state in a remote backend: one per environment and cloud,
    /// `<prefix>/<environment>-<cloud>.json`.
    pub fn state_key(&self, cloud: &str) -> String {
        let prefix = self.state.prefix.as_deref().unwrap_or(&self.platform.name);
        format!("{prefix}/{}-{cloud}.json", self.platform.environment)
    }
}

/// Cluster add-ons whose settings the spec controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addons {
    pub calico: Addon,
    pub ingress_nginx: Addon,
    pub cert_manager: Addon,
    /// `cert_manager.certificates`: what the platform's ClusterIssuer is asked for.
    pub certificates: Certificates,
    pub coredns: CoreDns,
    /// `network_policies`: where Kafka runs and who may reach the internet.
    pub network_policies: NetworkPolicies,
}

/// What the platform's NetworkPolicies allow beyond the platform document's port table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkPolicies {
    /// The platform service namespace where Kafka runs: the only namespace any pod may reach on
    /// Kafka's TLS port (9093).
    pub kafka_namespace: String,
    /// Platform namespaces whose pods may reach addresses outside the cluster (LLM APIs, object
    /// storage): every address but the cluster's node, pod and service ranges and the cloud's
    /// instance metadata address. Unique; empty means none.
    pub internet_egress: Vec<String>,
}

impl Default for NetworkPolicies {
    /// Kafka in the data plane; the control plane (identity providers, webhooks out) and the data
    /// plane (LLM APIs, object storage) reach the internet, the front end and the ingress
    /// controller do not.
    fn default() -> Self {
        use crate::naming::{CONTROL_PLANE, DATA_PLANE};
        Self {
            kafka_namespace: DATA_PLANE.to_string(),
            internet_egress: vec![CONTROL_PLANE.to_string(), DATA_PLANE.to_string()],
        }
    }
}

/// The platform's TLS certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Certificates {
    /// One wildcard certificate `*.<zone>` (and `<zone>`): one issuance however many tenants
    /// (Let's Encrypt allows 50 certificates per registered domain per week).
    #[default]
    Wildcard,
    /// `<zone>` and `api.<zone>` for the platform, plus one certificate per tenant in its namespace.
    PerTenant,
}

impl Addons {
    /// Calico release installed when the spec names none.
    pub const DEFAULT_CALICO: &'static str = "v3.32.1";
    /// ingress-nginx release (its tag, as the project spells it) installed by default.
    pub const DEFAULT_INGRESS_NGINX: &'static str = "controller-v1.15.1";
    /// cert-manager release installed by default.
    pub const DEFAULT_CERT_MANAGER: &'static str = "v1.21.1";
}

impl Default for Addons {
    fn default() -> Self {
        Self {
            calico: Addon { version: Self::DEFAULT_CALICO.to_string() },
            ingress_nginx: Addon { version: Self::DEFAULT_INGRESS_NGINX.to_string() },
            cert_manager: Addon { version: Self::DEFAULT_CERT_MANAGER.to_string() },
            certificates: Certificates::default(),
            coredns: CoreDns::default(),
            network_policies: NetworkPolicies::default(),
        }
    }
}

/// A pinned add-on release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addon {
    /// The release tag: non-empty, no whitespace.
    pub version: String,
}

/// CoreDNS upstreams.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoreDns {
    /// Upstream resolvers for names outside the cluster (at most 15, CoreDNS's limit); empty
    /// means the node's resolver.
    pub forwarders: Vec<IpAddr>,
    /// Per-domain resolvers, e.g. `corp.example → [10.0.0.2]`; each list is non-empty.
    pub stub_domains: BTreeMap<String, Vec<IpAddr>>,
}

/// One tenant, from `tenants/<slug>.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSpec {
    /// A DNS label of at most 32 characters, equal to the file stem, not a reserved name.
    pub slug: String,
    /// Non-empty.
    pub display_name: String,
    /// Whether the tenant gets its own NGINX ingress controller (ingress class
    /// `nginx-tenant-<slug>`, its own load balancer).
    pub dedicated_ingress: bool,
    /// The file the tenant was read from.
    pub file: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_kind_round_trips_through_text_and_serde() {
        for c in CloudKind::ALL {
            assert_eq!(c.to_string().parse::<CloudKind>().unwrap(), c);
        }
        assert_eq!("EKS".parse::<CloudKind>(), Err(UnknownCloud("EKS".into())));
        // serde spelling is the same lower-case word (checked through the Deserialize impl
        // without pulling in a format crate).
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, StrDeserializer};
        let de: StrDeserializer<'_, Error> = "gke".into_deserializer();
        assert_eq!(CloudKind::deserialize(de).unwrap(), CloudKind::Gke);
    }

    #[test]
    fn eks_subnets_are_equal_slices_public_first() {
        let net = EksNetwork {
            vpc_cidr: "10.0.0.0/16".parse().unwrap(),
            availability_zones: 3,
            nat_gateways: NatGateways::Single,
            service_cidr: "172.20.0.0/16".parse().unwrap(),
            cluster_dns_ip: None,
        };
        assert_eq!(net.subnet_prefix_len(), 19);
        let s = net.subnets();
        assert_eq!(s.public[0].to_string(), "10.0.0.0/19");
        assert_eq!(s.public[2].to_string(), "10.0.64.0/19");
        assert_eq!(s.private[0].to_string(), "10.0.96.0/19");
        assert_eq!(s.private.len(), 3);
        assert_eq!(net.dns_ip().to_string(), "172.20.0.10");
    }

    #[test]
    fn subnet_bits_round_up_to_a_power_of_two() {
        assert_eq!(subnet_bits(2), 2); // 4 subnets
        assert_eq!(subnet_bits(3), 3); // 6 → 8
        assert_eq!(subnet_bits(4), 3); // 8
        assert_eq!(subnet_bits(6), 4); // 12 → 16
    }
}
