//! cert-manager's DNS01 identity and the cluster's permissions: a user-assigned managed identity
//! with a federated credential for cert-manager's service account (workload identity, no
//! secret anywhere), and role assignments — DNS Zone Contributor on the platform's zone only
//! for that identity, Network Contributor on the resource group for the cluster's identity (its
//! load balancer takes the reserved public IPs from there).
//!
//! Role assignments are named by a GUID derived from their address, so a PUT sent twice can
//! only make the same one. A principal made moments ago may not be known to Entra ID yet
//! (`PrincipalNotFound` while it replicates): that is waited for, with a deadline.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use matih_plans::*;
use matih_provider_kit::schema;
use matih_state::Attrs;
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};

use crate::arm::Cond;
use crate::kind::*;
use crate::models::{self, parse};

const MSI_API: &str = "2023-01-31";
const MSI: &str = "Microsoft.ManagedIdentity";
const AUTHZ_API: &str = "2022-04-01";
const AUTHZ: &str = "Microsoft.Authorization";

/// The built-in roles the platform grants, by name (their definitions have the same GUIDs in
/// every tenant).
pub const ROLES: [(&str, &str); 3] = [
    ("DNS Zone Contributor", "befefa01-2a29-4197-83a8-272ff33ce314"),
    ("Network Contributor", "4d97b98b-1d4f-4787-a291-c67834d212e7"),
    ("Azure Kubernetes Service RBAC Cluster Admin", "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"),
];

/// A role definition's id from its name, in `subscription`.
fn role_definition_id(subscription: &str, role: &str) -> Option<String> {
    ROLES
        .iter()
        .find(|(n, _)| *n == role)
        .map(|(_, g)| format!("/subscriptions/{subscription}/providers/{AUTHZ}/roleDefinitions/{g}"))
}

/// A role's name from its definition id (the id itself for a role the platform does not grant).
fn role_name(definition_id: &str) -> String {
    let guid = definition_id.rsplit('/').next().unwrap_or_default();
    ROLES.iter().find(|(_, g)| g.eq_ignore_ascii_case(guid)).map_or(definition_id.to_string(), |(n, _)| n.to_string())
}

/// How long a new principal may take to reach Entra ID's replicas.
const PRINCIPAL_LAG: Duration = Duration::from_secs(5 * 60);

pub fn kinds() -> Vec<Box<dyn matih_provider_kit::Kind<Ctx>>> {
    vec![Box::new(ArmKind(UserIdentity)), Box::new(ArmKind(FederatedCredential)), Box::new(ArmKind(RoleAssignment))]
}

/// A GUID from `seed` (SHA-256, shaped as a version-8 UUID): stable for an address.
pub fn guid(seed: &str) -> String {
    let d = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

// ---------------------------------------------------------------------------------------------

pub struct UserIdentity;

#[async_trait]
impl ArmType for UserIdentity {
    fn schema(&self) -> TypeSchema {
        schema("aks", "identity").computed(&["id", "client_id", "principal_id", "tenant_id"]).build()
    }
    fn api(&self) -> &'static str {
        MSI_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (MSI, "UserAssignedIdentities")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        ctx.id(&[MSI, "userAssignedIdentities"], name)
    }
    fn body(&self, _ctx: &Ctx, _cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(json!({}))
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let p: models::UserAssignedIdentityProperties = parse(&j["properties"])?;
        Ok(attrs([
            ("id", at(j, "/id")),
            ("client_id", json!(p.client_id)),
            ("principal_id", json!(p.principal_id)),
            ("tenant_id", json!(p.tenant_id)),
        ]))
    }
}

// ---------------------------------------------------------------------------------------------

/// A federated identity credential (`<identity>/<credential>`).
pub struct FederatedCredential;

#[async_trait]
impl ArmType for FederatedCredential {
    fn schema(&self) -> TypeSchema {
        schema("aks", "federated_credential")
            .force_new(&["identity_id"])
            .updatable(&["issuer", "subject", "audiences"])
            .computed(&["id"])
            .build()
    }
    fn api(&self) -> &'static str {
        MSI_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (MSI, "FederatedIdentityCredentials")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        ctx.id(&[MSI, "userAssignedIdentities", "federatedIdentityCredentials"], name)
    }
    fn tracked(&self) -> bool {
        false
    }
    fn body(&self, _ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        Ok(models::body(&models::FederatedIdentityCredential {
            properties: models::FederatedIdentityCredentialProperties {
                issuer: cfg.str("issuer")?.to_string(),
                subject: cfg.str("subject")?.to_string(),
                audiences: cfg.strs("audiences")?,
            },
        }))
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let id = j["id"].as_str().unwrap_or_default();
        let f: models::FederatedIdentityCredential = parse(j)?;
        Ok(attrs([
            ("id", json!(id)),
            ("identity_id", json!(collection_of(collection_of(id)))),
            ("issuer", json!(f.properties.issuer)),
            ("subject", json!(f.properties.subject)),
            ("audiences", json!(f.properties.audiences)),
        ]))
    }
}

// ---------------------------------------------------------------------------------------------

/// A role assignment. Its name is `<scope relative to the resource group>/<guid>` (empty scope:
/// the group itself).
pub struct RoleAssignment;

#[async_trait]
impl ArmType for RoleAssignment {
    fn schema(&self) -> TypeSchema {
        schema("aks", "role_assignment").force_new(&["scope", "role", "principal_id"]).computed(&["id"]).build()
    }
    fn api(&self) -> &'static str {
        AUTHZ_API
    }
    fn ops(&self) -> (&'static str, &'static str) {
        (AUTHZ, "RoleAssignments")
    }
    fn id(&self, ctx: &Ctx, name: &str) -> String {
        let (scope, guid) = name.rsplit_once('/').unwrap_or(("", name));
        let scope = if scope.is_empty() { ctx.group_id() } else { format!("{}/{scope}", ctx.group_id()) };
        format!("{scope}/providers/{AUTHZ}/roleAssignments/{guid}")
    }
    fn tracked(&self) -> bool {
        false
    }
    fn create_id(&self, _ctx: &Ctx, req: &ApplyRequest) -> Result<String, ProviderError> {
        let guid = req.identity.name.rsplit('/').next().unwrap_or_default();
        Ok(format!("{}/providers/{AUTHZ}/roleAssignments/{guid}", Cfg::of(req).str("scope")?))
    }
    fn body(&self, ctx: &Ctx, cfg: &Cfg<'_>) -> Result<Json, ProviderError> {
        let role = cfg.str("role")?;
        let definition = role_definition_id(&ctx.subscription, role).ok_or_else(|| ProviderError::Config {
            addr: cfg.addr.clone(),
            message: format!("no built-in role `{role}` is known to the tool"),
        })?;
        Ok(models::body(&models::RoleAssignment {
            properties: models::RoleAssignmentProperties {
                role_definition_id: definition,
                principal_id: cfg.str("principal_id")?.to_string(),
                principal_type: cfg.opt_str("principal_type").map(str::to_string),
            },
        }))
    }
    fn attrs(&self, j: &Json) -> Result<Attrs, ProviderError> {
        let id = j["id"].as_str().unwrap_or_default();
        let scope = id.split(&format!("/providers/{AUTHZ}/")).next().unwrap_or_default();
        let r: models::RoleAssignment = parse(j)?;
        Ok(attrs([
            ("id", json!(id)),
            ("scope", json!(scope)),
            ("role", json!(role_name(&r.properties.role_definition_id))),
            ("principal_id", json!(r.properties.principal_id)),
            // Compared only where the graph sets it: ARM fills it in when it is left out.
            ("principal_type", json!(r.properties.principal_type)),
        ]))
    }
    /// A role assignment cannot be changed: an update is the same PUT (ARM answers it as the
    /// one that exists).
    async fn put(
        &self,
        ctx: &Ctx,
        id: &str,
        body: &Json,
        _cond: Cond<'_>,
        req: &ApplyRequest,
        _update: bool,
    ) -> Result<Json, ProviderError> {
        let start = Instant::now();
        // Only the fields ARM takes (no tags, no location).
        let body = models::body(&parse::<models::RoleAssignment>(body)?);
        loop {
            let r = ctx
                .arm
                .put(
                    id,
                    AUTHZ_API,
                    &body,
                    Cond::None,
                    op(AUTHZ, "RoleAssignments", "Create"),
                    op(AUTHZ, "RoleAssignments", "Get"),
                    &req.status,
                    Duration::from_secs(60),
                )
                .await;
            match r {
                Err(e) if e.code() == Some("PrincipalNotFound") && start.elapsed() < PRINCIPAL_LAG => {
                    req.status.say(&format!(
                        "waiting for Entra ID to know principal {} ({:.0?} so far)",
                        body["properties"]["principalId"].as_str().unwrap_or_default(),
                        start.elapsed()
                    ));
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                // The same role for the same principal at the same scope under another name (a
                // grant made by hand): not this tool's to adopt or delete.
                Err(e) if e.code() == Some("RoleAssignmentExists") => {
                    return Err(ProviderError::other(format!(
                        "{}: {e}; the principal already has this role at this scope through an assignment the tool did not make: delete that assignment (the tool then makes and owns its own) or leave the role out of the platform",
                        req.addr
                    )));
                }
                r => return r,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_named_by_their_definitions() {
        let id = role_definition_id("s", "DNS Zone Contributor").unwrap();
        assert_eq!(
            id,
            "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/befefa01-2a29-4197-83a8-272ff33ce314"
        );
        assert_eq!(role_name(&id), "DNS Zone Contributor");
        assert_eq!(role_name("/x/roleDefinitions/other"), "/x/roleDefinitions/other");
        assert!(role_definition_id("s", "Owner").is_none());
    }

    #[test]
    fn guids_are_stable_per_seed_and_well_formed() {
        let a = guid("aks.role_assignment.dns01");
        assert_eq!(a, guid("aks.role_assignment.dns01"));
        assert_ne!(a, guid("aks.role_assignment.network"));
        let u = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 8);
    }
}
