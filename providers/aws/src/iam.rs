//! IAM: the cluster and node roles with their managed policies, the cluster's OIDC provider (for
//! IAM roles for service accounts), and cert-manager's DNS01 role limited to the platform's zone.
//!
//! Roles live under the path `/matih/`; one paginated `GetAccountAuthorizationDetails` reads all
//! of them with their policies. Trust and inline policies are rendered here from structured
//! configuration and parsed back the same way, so what apply writes is what refresh compares.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_iam::types::{EntityType, Tag};
use matih_plans::*;
use matih_provider_kit::{Found, Kind, Listing, gone_ok, not_found_none, schema};
use matih_state::Attrs;
use serde_json::{Value as Json, json};

use crate::error::missing;
use crate::graph::IAM_PATH;
use crate::kind::*;

pub fn kinds() -> Vec<Box<dyn Kind<Ctx>>> {
    vec![Box::new(Role), Box::new(OidcProvider)]
}

/// The inline policy that lets cert-manager answer DNS01 challenges in the platform's zone.
const DNS01_POLICY: &str = "matih-dns01";

fn iam_tags(tags: &BTreeMap<String, String>, name: &str) -> Vec<Tag> {
    tags.iter()
        .chain(std::iter::once((&"Name".to_string(), &name.to_string())))
        .map(|(k, v)| Tag::builder().key(k).value(v).build().expect("key and value are set"))
        .collect()
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tag_map(tags.iter().map(|t| (t.key(), t.value())))
}

/// IAM returns policy documents URL-encoded (moto sometimes does not).
fn decode_policy(doc: &str) -> Option<Json> {
    let text = if doc.trim_start().starts_with('{') {
        doc.to_string()
    } else {
        percent_encoding::percent_decode_str(doc).decode_utf8().ok()?.into_owned()
    };
    serde_json::from_str(&text).ok()
}

/// `{"service": "eks.amazonaws.com"}` or
/// `{"web_identity": {"provider_arn", "issuer_host", "subject"}}` as an assume-role policy.
fn render_trust(addr: &ResourceAddr, trust: &Json) -> Result<String, ProviderError> {
    let statement = if let Some(service) = trust.get("service").and_then(Json::as_str) {
        json!({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})
    } else if let Some(w) = trust.get("web_identity") {
        let field = |k: &str| {
            w.get(k).and_then(Json::as_str).ok_or_else(|| ProviderError::Config {
                addr: addr.clone(),
                message: format!("trust.web_identity.{k} must be a string"),
            })
        };
        let host = field("issuer_host")?;
        json!({
            "Effect": "Allow",
            "Principal": {"Federated": field("provider_arn")?},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {format!("{host}:sub"): field("subject")?, format!("{host}:aud"): "sts.amazonaws.com"}},
        })
    } else {
        return Err(ProviderError::Config {
            addr: addr.clone(),
            message: "trust needs `service` or `web_identity`".into(),
        });
    };
    Ok(json!({"Version": "2012-10-17", "Statement": [statement]}).to_string())
}

/// The inverse of [`render_trust`]; anything else is reported as it is (and shows as drift).
fn parse_trust(doc: &Json) -> Json {
    let Some(st) = doc.get("Statement").and_then(Json::as_array).and_then(|s| s.first()) else { return doc.clone() };
    let principal = st.get("Principal");
    if let Some(service) = principal.and_then(|p| p.get("Service")).and_then(Json::as_str) {
        return json!({"service": service});
    }
    if let Some(arn) = principal.and_then(|p| p.get("Federated")).and_then(Json::as_str) {
        let cond = st.get("Condition").and_then(|c| c.get("StringEquals")).and_then(Json::as_object);
        if let Some((key, subject)) = cond.and_then(|c| c.iter().find(|(k, _)| k.ends_with(":sub"))) {
            let host = key.trim_end_matches(":sub");
            return json!({"web_identity": {"provider_arn": arn, "issuer_host": host, "subject": subject}});
        }
    }
    doc.clone()
}

/// Zone ids as a policy allowing DNS01 changes in those zones only.
fn render_dns01(zone_ids: &[String]) -> String {
    let zones: Vec<String> = zone_ids.iter().map(|z| format!("arn:aws:route53:::hostedzone/{z}")).collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "route53:GetChange", "Resource": "arn:aws:route53:::change/*"},
            {"Effect": "Allow", "Action": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"], "Resource": zones},
            {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
        ],
    })
    .to_string()
}

fn parse_dns01(doc: &Json) -> Vec<String> {
    let mut zones: Vec<String> = doc
        .get("Statement")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .flat_map(|s| match s.get("Resource") {
            Some(Json::Array(v)) => v.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            Some(Json::String(r)) => vec![r.clone()],
            _ => vec![],
        })
        .filter_map(|r| r.strip_prefix("arn:aws:route53:::hostedzone/").map(str::to_string))
        .collect();
    zones.sort();
    zones.dedup();
    zones
}

// ---------------------------------------------------------------------------------------------
// Role

struct Role;

impl Role {
    /// A role's attributes from its details: trust, managed and inline DNS01 policies.
    fn found(
        name: &str,
        path: Option<&str>,
        arn: Option<&str>,
        trust_doc: Option<&str>,
        mut managed: Vec<String>,
        dns01_doc: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> Found {
        let trust = trust_doc.and_then(decode_policy).map(|d| parse_trust(&d)).unwrap_or(Json::Null);
        managed.sort();
        let zones = dns01_doc.and_then(decode_policy).map(|d| parse_dns01(&d)).unwrap_or_default();
        Found::new(
            name,
            attrs([
                ("id", json!(name)),
                ("name", json!(name)),
                ("path", json!(path)),
                ("arn", json!(arn)),
                ("trust", trust),
                ("managed_policies", json!(managed)),
                ("route53_zone_ids", json!(zones)),
            ]),
            tags,
        )
    }

    /// Every role under the tool's path with its policies, in one paginated call.
    async fn all(ctx: &Ctx) -> Result<Vec<Found>, ProviderError> {
        let pages = ctx
            .read("iam", "GetAccountAuthorizationDetails", || {
                ctx.c
                    .iam
                    .get_account_authorization_details()
                    .filter(EntityType::Role)
                    .into_paginator()
                    .send()
                    .try_collect()
            })
            .await?;
        let mut out = Vec::new();
        for page in pages {
            for r in page.role_detail_list() {
                if r.path() != Some(IAM_PATH) {
                    continue;
                }
                let managed =
                    r.attached_managed_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect();
                let dns01 = r
                    .role_policy_list()
                    .iter()
                    .find(|p| p.policy_name() == Some(DNS01_POLICY))
                    .and_then(|p| p.policy_document());
                out.push(Self::found(
                    r.role_name().unwrap_or_default(),
                    r.path(),
                    r.arn(),
                    r.assume_role_policy_document(),
                    managed,
                    dns01,
                    tags_of(r.tags()),
                ));
            }
        }
        Ok(out)
    }

    /// One role by name, whoever owns it (`None` if there is none).
    async fn get(ctx: &Ctx, name: &str) -> Result<Option<Found>, ProviderError> {
        let Some(r) = not_found_none(ctx.read("iam", "GetRole", || ctx.c.iam.get_role().role_name(name).send()).await)?
        else {
            return Ok(None);
        };
        let Some(role) = r.role() else { return Ok(None) };
        let attached = ctx
            .read("iam", "ListAttachedRolePolicies", || ctx.c.iam.list_attached_role_policies().role_name(name).send())
            .await?;
        let managed = attached.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_string)).collect();
        let dns01 = not_found_none(
            ctx.read("iam", "GetRolePolicy", || {
                ctx.c.iam.get_role_policy().role_name(name).policy_name(DNS01_POLICY).send()
            })
            .await,
        )?;
        Ok(Some(Self::found(
            role.role_name(),
            Some(role.path()),
            Some(role.arn()),
            role.assume_role_policy_document(),
            managed,
            dns01.as_ref().map(|p| p.policy_document()),
            tags_of(role.tags()),
        )))
    }

    async fn one(ctx: &Ctx, name: &str) -> Result<ApplyResponse, ProviderError> {
        let f = Self::get(ctx, name).await?.ok_or_else(|| missing("iam", "GetRole", "the role just written"))?;
        Ok(ApplyResponse::new(f.id, f.attrs))
    }

    async fn sync_policies(ctx: &Ctx, name: &str, prior: Option<&Attrs>, cfg: &Cfg<'_>) -> Result<(), ProviderError> {
        let list = |a: Option<&Attrs>, k: &str| -> Vec<String> {
            a.and_then(|a| a.get(k))
                .and_then(Json::as_array)
                .map(|v| v.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let want = cfg.strs("managed_policies")?;
        let had = list(prior, "managed_policies");
        // Attach, detach and put are idempotent: sent again after a lost answer they change nothing.
        for arn in want.iter().filter(|a| !had.contains(a)) {
            ctx.write("iam", "AttachRolePolicy", || {
                ctx.c.iam.attach_role_policy().role_name(name).policy_arn(arn).send()
            })
            .await?;
        }
        for arn in had.iter().filter(|a| !want.contains(a)) {
            gone_ok(
                ctx.write("iam", "DetachRolePolicy", || {
                    ctx.c.iam.detach_role_policy().role_name(name).policy_arn(arn).send()
                })
                .await,
            )?;
        }
        let mut zones = cfg.strs("route53_zone_ids")?;
        zones.sort();
        let had_zones = list(prior, "route53_zone_ids");
        if zones != had_zones {
            if zones.is_empty() {
                gone_ok(
                    ctx.write("iam", "DeleteRolePolicy", || {
                        ctx.c.iam.delete_role_policy().role_name(name).policy_name(DNS01_POLICY).send()
                    })
                    .await,
                )?;
            } else {
                let doc = render_dns01(&zones);
                ctx.write("iam", "PutRolePolicy", || {
                    ctx.c.iam.put_role_policy().role_name(name).policy_name(DNS01_POLICY).policy_document(&doc).send()
                })
                .await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Kind<Ctx> for Role {
    fn schema(&self) -> TypeSchema {
        schema("eks", "iam_role")
            .force_new(&["name", "path"])
            .updatable(&["trust", "managed_policies", "route53_zone_ids"])
            .computed(&["id", "arn"])
            .build()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        Ok(Listing::Owned(Self::all(ctx).await?))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let (name, path) = (cfg.str("name")?, cfg.str("path")?);
        let trust = render_trust(&req.addr, cfg.get("trust").unwrap_or(&Json::Null))?;
        let tags = iam_tags(&req.identity.owner_tags, &req.identity.name);
        ctx.create("iam", "CreateRole", || {
            ctx.c
                .iam
                .create_role()
                .role_name(name)
                .path(path)
                .assume_role_policy_document(&trust)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await?;
        Self::sync_policies(ctx, name, None, &cfg).await?;
        Self::one(ctx, name).await
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &ReadResource,
        req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let want = cfg.get("trust").cloned().unwrap_or(Json::Null);
        if prior.attrs.get("trust") != Some(&want) {
            let doc = render_trust(&req.addr, &want)?;
            ctx.write("iam", "UpdateAssumeRolePolicy", || {
                ctx.c.iam.update_assume_role_policy().role_name(&prior.id).policy_document(&doc).send()
            })
            .await?;
        }
        Self::sync_policies(ctx, &prior.id, Some(&prior.attrs), &cfg).await?;
        Self::one(ctx, &prior.id).await
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        // A role goes only once its policies are gone; read them fresh (they may have changed).
        let attached = ctx
            .read("iam", "ListAttachedRolePolicies", || {
                ctx.c.iam.list_attached_role_policies().role_name(&req.id).send()
            })
            .await;
        let Some(attached) = not_found_none(attached)? else { return Ok(()) };
        for p in attached.attached_policies() {
            let arn = p.policy_arn().unwrap_or_default();
            gone_ok(
                ctx.write("iam", "DetachRolePolicy", || {
                    ctx.c.iam.detach_role_policy().role_name(&req.id).policy_arn(arn).send()
                })
                .await,
            )?;
        }
        let inline =
            ctx.read("iam", "ListRolePolicies", || ctx.c.iam.list_role_policies().role_name(&req.id).send()).await;
        let Some(inline) = not_found_none(inline)? else { return Ok(()) };
        for p in inline.policy_names() {
            gone_ok(
                ctx.write("iam", "DeleteRolePolicy", || {
                    ctx.c.iam.delete_role_policy().role_name(&req.id).policy_name(p).send()
                })
                .await,
            )?;
        }
        gone_ok(ctx.write("iam", "DeleteRole", || ctx.c.iam.delete_role().role_name(&req.id).send()).await)
    }

    /// Role names are deterministic and unique per account: the role of that name, whoever owns it.
    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Ok(Self::get(ctx, &req.name).await?.into_iter().collect())
    }
}

// ---------------------------------------------------------------------------------------------
// OIDC provider

struct OidcProvider;

/// Thumbprint of the root CA behind EKS OIDC issuers. IAM no longer checks it for EKS (it trusts
/// the issuer's CA), but the API still wants one.
const EKS_OIDC_THUMBPRINT: &str = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";

impl OidcProvider {
    /// Every OIDC provider of the account with its tags (the list call has neither URL nor tags:
    /// one look per provider; an account has few).
    async fn all(ctx: &Ctx) -> Result<Vec<Found>, ProviderError> {
        let list =
            ctx.read("iam", "ListOpenIDConnectProviders", || ctx.c.iam.list_open_id_connect_providers().send()).await?;
        let mut out = Vec::new();
        for p in list.open_id_connect_provider_list() {
            let Some(arn) = p.arn() else { continue };
            let got = ctx
                .read("iam", "GetOpenIDConnectProvider", || {
                    ctx.c.iam.get_open_id_connect_provider().open_id_connect_provider_arn(arn).send()
                })
                .await;
            // Deleted between the list and the look.
            let Some(got) = not_found_none(got)? else { continue };
            let host = got.url().unwrap_or_default().trim_start_matches("https://").to_string();
            let mut clients: Vec<String> = got.client_id_list().to_vec();
            clients.sort();
            out.push(Found::new(
                arn,
                attrs([
                    ("id", json!(arn)),
                    ("arn", json!(arn)),
                    ("url", json!(format!("https://{host}"))),
                    ("issuer_host", json!(host)),
                    ("client_ids", json!(clients)),
                ]),
                tags_of(got.tags()),
            ));
        }
        Ok(out)
    }
}

#[async_trait]
impl Kind<Ctx> for OidcProvider {
    fn schema(&self) -> TypeSchema {
        schema("eks", "oidc_provider").force_new(&["url", "client_ids"]).computed(&["id", "arn", "issuer_host"]).build()
    }

    async fn read(&self, ctx: &Ctx, _items: &[ReadItem]) -> Result<Listing, ProviderError> {
        Ok(Listing::Owned(Self::all(ctx).await?))
    }

    async fn create(&self, ctx: &Ctx, req: &ApplyRequest) -> Result<ApplyResponse, ProviderError> {
        let cfg = Cfg::of(req);
        let (url, clients) = (cfg.str("url")?, cfg.strs("client_ids")?);
        let tags = iam_tags(&req.identity.owner_tags, &req.identity.name);
        let r = ctx
            .create("iam", "CreateOpenIDConnectProvider", || {
                ctx.c
                    .iam
                    .create_open_id_connect_provider()
                    .url(url)
                    .set_client_id_list(Some(clients.clone()))
                    .thumbprint_list(EKS_OIDC_THUMBPRINT)
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        let arn = r
            .open_id_connect_provider_arn()
            .ok_or_else(|| missing("iam", "CreateOpenIDConnectProvider", "OpenIDConnectProviderArn"))?;
        let f = Self::all(ctx)
            .await?
            .into_iter()
            .find(|f| f.id == arn)
            .ok_or_else(|| missing("iam", "GetOpenIDConnectProvider", "the provider just created"))?;
        Ok(ApplyResponse::new(f.id, f.attrs))
    }

    async fn update(
        &self,
        _ctx: &Ctx,
        prior: &ReadResource,
        _req: &ApplyRequest,
    ) -> Result<ApplyResponse, ProviderError> {
        // Every configurable attribute forces replacement.
        unchanged(prior)
    }

    async fn delete(&self, ctx: &Ctx, req: &DeleteRequest) -> Result<(), ProviderError> {
        gone_ok(
            ctx.write("iam", "DeleteOpenIDConnectProvider", || {
                ctx.c.iam.delete_open_id_connect_provider().open_id_connect_provider_arn(&req.id).send()
            })
            .await,
        )
    }

    /// The providers named as the intent names this one, or carrying this platform's tags; the
    /// kit adopts the one whose owner tags name the address.
    async fn find(&self, ctx: &Ctx, req: &FindRequest) -> Result<Vec<Found>, ProviderError> {
        Ok(Self::all(ctx)
            .await?
            .into_iter()
            .filter(|f| f.tags.get("Name") == Some(&req.name) || ctx.owns(&f.tags))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_policies_round_trip() {
        let addr = ResourceAddr::must("eks.iam_role.x");
        for trust in [
            json!({"service": "eks.amazonaws.com"}),
            json!({"web_identity": {"provider_arn": "arn:aws:iam::123:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/AB", "issuer_host": "oidc.eks.us-east-1.amazonaws.com/id/AB", "subject": "system:serviceaccount:cert-manager:cert-manager"}}),
        ] {
            let doc = render_trust(&addr, &trust).unwrap();
            let encoded = percent_encoding::utf8_percent_encode(&doc, percent_encoding::NON_ALPHANUMERIC).to_string();
            assert_eq!(parse_trust(&decode_policy(&encoded).unwrap()), trust);
            assert_eq!(parse_trust(&decode_policy(&doc).unwrap()), trust);
        }
    }

    #[test]
    fn dns01_policy_is_limited_to_the_zones_and_round_trips() {
        let doc = render_dns01(&["Z2".into(), "Z1".into()]);
        assert!(doc.contains("arn:aws:route53:::hostedzone/Z1"));
        assert!(!doc.contains("hostedzone/*"));
        assert_eq!(parse_dns01(&decode_policy(&doc).unwrap()), vec!["Z1".to_string(), "Z2".to_string()]);
    }
}
