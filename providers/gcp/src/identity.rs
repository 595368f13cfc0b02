//! cert-manager's DNS01 identity on GKE: a Google service account, allowed to change the
//! platform's zone only (`roles/dns.admin` in the zone's IAM policy, not the project's), and
//! bound to cert-manager's Kubernetes service account through workload identity
//! (`roles/iam.workloadIdentityUser` for `serviceAccount:<project>.svc.id.goog[cert-manager/
//! cert-manager]` in the service account's own policy). No key is ever made.
//!
//! A policy binding is one member in one role of one resource's policy: written
//! read-modify-write with the policy's etag (a concurrent change makes the write fail with 409
//! ABORTED; the policy is read again, up to three times), so other members and roles survive.
//!
//! Not here: project-level grants, conditional bindings, custom roles.

use async_trait::async_trait;
use matih_plans::*;
use matih_provider_kit::{Found, Kind, Listing, gone_ok, not_found_none, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::kind::*;

const SVC: &str = "iam";

pub fn kinds() -> Vec<Box<dyn Kind<Ctx>>> {
    vec![Box::new(ServiceAccount), Box::new(Binding)]
}

/// The resource name of a service account by email.
fn sa_name(ctx: &Ctx, email: &str) -> String {
    format!("projects/{}/serviceAccounts/{email}", ctx.project)
}

// ---------------------------------------------------------------------------------------------

/// A Google service account (`name` is its account id; its email follows from it).
pub struct ServiceAccount;

impl ServiceAccount {
    fn email(ctx: &Ctx, account_id: &str) -> String {
        format!("{account_id}@{}.iam.gserviceaccount.com", ctx.project)
    }

    fn attrs(j: &Json) -> Attrs {
        attrs([
            ("email", j["email"].clone()),
            ("unique_id", j["uniqueId"].clone()),
            ("display_name", j["displayName"].clone()),
        ])
    }

    fn found(j: &Json) -> Found {
        let (tags, address) = owner_of_description(j["description"].as_str().unwrap_or_default());
        let account = j["email"].as_str().unwrap_or_default().split('@').next().unwrap_or_default().to_string();
        let mut f = Found::new(account, Self::attrs(j), tags);
        f.address = address;
        f
    }

    async fn get(ctx: &Ctx, account_id: &str) -> Result<Option<Json>, ProviderError> {
        let name = sa_name(ctx, &Self::email(ctx, account_id));
        let r = ctx
            .read(SVC, "serviceAccounts.get", || ctx.c.iam.get_service_account().set_name(name.clone()).send())
            .await;
        Ok(not_found_none(r)?.map(|s| to_json(&s)))
    }
}

#[async_trait]
impl Kind<Ctx> for ServiceAccount {
    fn schema(&self) -> TypeSchema {
        schema("gke", "service_account").force_new(&["display_name"]).computed(&["email", "unique_id"]).build()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        let accounts = all_pages("accounts", |p| async move {
            let list = || {
                let b =
                    ctx.c.iam.list_service_accounts().set_name(format!("projects/{}", ctx.project)).set_page_size(100);
                match p.clone() {
                    Some(p) => b.set_page_token(p),
                    None => b,
                }
                .send()
            };
            ctx.read(SVC, "serviceAccounts.list", list).await.map(|r| to_json(&r))
        })
        .await?;
        Ok(Listing::Owned(accounts.iter().map(Self::found).collect()))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let account: google_cloud_iam_admin_v1::model::ServiceAccount = from_json(
            "service account",
            json!({"displayName": Cfg::of(req).str("display_name")?, "description": short_owner_description(req)}),
        )?;
        let project = format!("projects/{}", ctx.project);
        let s = ctx
            .create(SVC, "serviceAccounts.create", || {
                ctx.c
                    .iam
                    .create_service_account()
                    .set_name(project.clone())
                    .set_account_id(req.identity.name.clone())
                    .set_service_account(account.clone())
                    .send()
            })
            .await?;
        Ok(ApplyResponse::new(req.identity.name.clone(), Self::attrs(&to_json(&s))))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        _req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let s = Self::get(ctx, &prior.id)
            .await?
            .ok_or_else(|| ProviderError::other(format!("service account {} is gone", prior.id)))?;
        Ok(ApplyResponse::new(prior.id.clone(), Self::attrs(&s)))
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        let name = sa_name(ctx, &Self::email(ctx, &req.id));
        gone_ok(
            ctx.write(SVC, "serviceAccounts.delete", || {
                ctx.c.iam.delete_service_account().set_name(name.clone()).send()
            })
            .await,
        )
    }

    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Ok(Self::get(ctx, &req.name).await?.iter().map(Self::found).collect())
    }
}

// ---------------------------------------------------------------------------------------------

/// One member in one role of a resource's IAM policy: `resource_kind` `dns-zone` (a managed
/// zone's name) or `service-account` (an email).
pub struct Binding;

enum Target {
    Zone(String),
    Account(String),
}

impl Target {
    fn parse(kind: &str, resource: &str) -> Result<Target, ProviderError> {
        match kind {
            "dns-zone" => Ok(Target::Zone(resource.to_string())),
            "service-account" => Ok(Target::Account(resource.to_string())),
            _ => Err(ProviderError::other(format!(
                "an IAM binding's resource kind `{kind}` is neither dns-zone nor service-account"
            ))),
        }
    }

    /// The policy as JSON (`bindings`, `etag`, `version`); `None` when the resource is gone.
    async fn policy(&self, ctx: &Ctx) -> Result<Option<Json>, ProviderError> {
        let r = match self {
            Target::Zone(z) => {
                let resource = format!("projects/{}/managedZones/{z}", ctx.project);
                let body: google_cloud_dns_v1::model::GoogleIamV1GetIamPolicyRequest =
                    from_json("policy request", json!({"options": {"requestedPolicyVersion": 3}}))?;
                ctx.read("dns", "managedZones.getIamPolicy", || {
                    ctx.c.zones.get_iam_policy().set_resource(resource.clone()).set_body(body.clone()).send()
                })
                .await
                .map(|p| to_json(&p))
            }
            Target::Account(e) => {
                let resource = sa_name(ctx, e);
                ctx.read(SVC, "serviceAccounts.getIamPolicy", || {
                    ctx.c
                        .iam
                        .get_iam_policy()
                        .set_resource(resource.clone())
                        // Version 3, as it is written back: conditional bindings survive.
                        .set_options(
                            google_cloud_iam_v1::model::GetPolicyOptions::new().set_requested_policy_version(3),
                        )
                        .send()
                })
                .await
                .map(|p| to_json(&p))
            }
        };
        not_found_none(r)
    }

    async fn set(&self, ctx: &Ctx, policy: Json) -> Result<(), ProviderError> {
        match self {
            Target::Zone(z) => {
                let resource = format!("projects/{}/managedZones/{z}", ctx.project);
                let body: google_cloud_dns_v1::model::GoogleIamV1SetIamPolicyRequest =
                    from_json("policy", json!({"policy": policy}))?;
                ctx.write("dns", "managedZones.setIamPolicy", || {
                    ctx.c.zones.set_iam_policy().set_resource(resource.clone()).set_body(body.clone()).send()
                })
                .await
                .map(|_| ())
            }
            Target::Account(e) => {
                let resource = sa_name(ctx, e);
                let policy: google_cloud_iam_v1::model::Policy = from_json("policy", policy)?;
                ctx.write(SVC, "serviceAccounts.setIamPolicy", || {
                    ctx.c.iam.set_iam_policy().set_resource(resource.clone()).set_policy(policy.clone()).send()
                })
                .await
                .map(|_| ())
            }
        }
    }
}

/// How long a new service account may take to reach IAM policies (Google documents up to
/// 60 seconds, and longer at times).
const ACCOUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Whether `member` is a service account that exists: a policy that refuses it then refuses it
/// only because IAM has not replicated it yet.
async fn young_account(ctx: &Ctx, member: &str) -> Result<bool, ProviderError> {
    let Some(email) = member.strip_prefix("serviceAccount:").filter(|e| e.ends_with(".iam.gserviceaccount.com")) else {
        return Ok(false);
    };
    let name = sa_name(ctx, email);
    let r =
        ctx.read(SVC, "serviceAccounts.get", || ctx.c.iam.get_service_account().set_name(name.clone()).send()).await;
    Ok(not_found_none(r)?.is_some())
}

fn has_member(policy: &Json, role: &str, member: &str) -> bool {
    policy["bindings"].as_array().into_iter().flatten().any(|b| {
        b["role"] == role
            && b.get("condition").is_none_or(Json::is_null)
            && b["members"].as_array().into_iter().flatten().any(|m| m == member)
    })
}

/// `policy` with `member` added to (or, `add` false, taken out of) the unconditional `role`.
fn with_member(mut policy: Json, role: &str, member: &str, add: bool) -> Json {
    let mut bindings: Vec<Json> = policy["bindings"].as_array().cloned().unwrap_or_default();
    let at = bindings.iter().position(|b| b["role"] == role && b.get("condition").is_none_or(Json::is_null));
    match (at, add) {
        (Some(i), true) => {
            let members = bindings[i]["members"].as_array_mut();
            if let Some(m) = members
                && !m.iter().any(|x| x == member)
            {
                m.push(json!(member));
            }
        }
        (None, true) => bindings.push(json!({"role": role, "members": [member]})),
        (Some(i), false) => {
            if let Some(m) = bindings[i]["members"].as_array_mut() {
                m.retain(|x| x != member);
            }
            if bindings[i]["members"].as_array().is_none_or(Vec::is_empty) {
                bindings.remove(i);
            }
        }
        (None, false) => {}
    }
    policy["bindings"] = json!(bindings);
    policy
}

impl Binding {
    fn id(kind: &str, resource: &str, role: &str, member: &str) -> String {
        format!("{kind}:{resource}|{role}|{member}")
    }

    fn attrs(kind: &str, resource: &str, role: &str, member: &str) -> Attrs {
        attrs([
            ("resource_kind", json!(kind)),
            ("resource", json!(resource)),
            ("role", json!(role)),
            ("member", json!(member)),
        ])
    }

    /// Adds or removes the member, read-modify-write with the policy's etag.
    async fn write(
        ctx: &Ctx,
        kind: &str,
        resource: &str,
        role: &str,
        member: &str,
        add: bool,
    ) -> Result<(), ProviderError> {
        let target = Target::parse(kind, resource)?;
        for attempt in 1..=3 {
            let Some(policy) = target.policy(ctx).await? else {
                return if add {
                    Err(ProviderError::other(format!("{resource} does not exist, so its IAM policy cannot be changed")))
                } else {
                    Ok(())
                };
            };
            if has_member(&policy, role, member) == add {
                return Ok(());
            }
            let mut next = with_member(policy, role, member, add);
            next["version"] = json!(3);
            match target.set(ctx, next.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Conflict && attempt < 3 => continue,
                Err(e) if add && e.kind() == ErrorKind::Invalid && young_account(ctx, member).await? => {
                    return Self::when_known(ctx, &target, member, next).await;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Sends `policy` again while IAM does not know the new service account `member` yet
    /// (it exists — IAM says so — but policies refuse it until it has replicated), up to
    /// [`ACCOUNT_WAIT`], reading the policy again if it changed meanwhile.
    async fn when_known(ctx: &Ctx, target: &Target, member: &str, mut policy: Json) -> Result<(), ProviderError> {
        let start = std::time::Instant::now();
        let mut delay = std::time::Duration::from_millis(500);
        loop {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(10));
            match target.set(ctx, policy.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    let now = target.policy(ctx).await?.unwrap_or_default();
                    let role = policy["bindings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|b| b["members"].as_array().into_iter().flatten().any(|m| m == member));
                    let role = role.and_then(|b| b["role"].as_str()).unwrap_or_default().to_string();
                    policy = with_member(now, &role, member, true);
                    policy["version"] = json!(3);
                }
                Err(e) if e.kind() == ErrorKind::Invalid && start.elapsed() < ACCOUNT_WAIT => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[async_trait]
impl Kind<Ctx> for Binding {
    fn schema(&self) -> TypeSchema {
        schema("gke", "iam_binding").force_new(&["resource_kind", "resource", "role", "member"]).build()
    }

    async fn read(&self, ctx: &Ctx, items: &[ReadItem]) -> Result<Listing, ProviderError> {
        let mut found = std::collections::BTreeMap::new();
        for i in items {
            let get = |k: &str| i.attrs.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
            let (kind, resource, role, member) = (get("resource_kind"), get("resource"), get("role"), get("member"));
            let Some(policy) = Target::parse(&kind, &resource)?.policy(ctx).await? else { continue };
            if has_member(&policy, &role, &member) {
                found.insert(
                    i.addr.clone(),
                    ReadResource { id: i.id.clone(), attrs: Self::attrs(&kind, &resource, &role, &member) },
                );
            }
        }
        Ok(Listing::ById(found))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let (kind, resource, role, member) =
            (cfg.str("resource_kind")?, cfg.str("resource")?, cfg.str("role")?, cfg.str("member")?);
        Self::write(ctx, kind, resource, role, member, true).await?;
        Ok(ApplyResponse::new(Self::id(kind, resource, role, member), Self::attrs(kind, resource, role, member)))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        self.create(ctx, req).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        let get = |k: &str| req.attrs.get(k).and_then(Json::as_str).unwrap_or_default().to_string();
        Self::write(ctx, &get("resource_kind"), &get("resource"), &get("role"), &get("member"), false).await
    }

    async fn find(&self, _ctx: &Ctx, _req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        // Membership is a set: writing it twice cannot make a second one.
        Ok(vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_join_and_leave_their_role_and_others_stay() {
        let p = json!({"bindings": [{"role": "roles/dns.reader", "members": ["user:a@x"]}], "etag": "BwX="});
        let p = with_member(p, "roles/dns.admin", "serviceAccount:s@p", true);
        assert!(has_member(&p, "roles/dns.admin", "serviceAccount:s@p"));
        assert!(has_member(&p, "roles/dns.reader", "user:a@x"));
        let p = with_member(p, "roles/dns.admin", "serviceAccount:s@p", true);
        assert_eq!(p["bindings"][1]["members"].as_array().unwrap().len(), 1);
        let p = with_member(p, "roles/dns.admin", "serviceAccount:s@p", false);
        assert!(!has_member(&p, "roles/dns.admin", "serviceAccount:s@p"));
        assert_eq!(p["bindings"].as_array().unwrap().len(), 1);
        assert_eq!(p["etag"], "BwX=");
    }
}
