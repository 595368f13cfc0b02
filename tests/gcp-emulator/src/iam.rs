//! IAM v1: service accounts, and the IAM policies of service accounts and Cloud DNS zones
//! (`getIamPolicy`/`setIamPolicy` with etags).
//!
//! Policy members are checked as IAM checks them where a tool can get them wrong: a user-managed
//! service account (`…@<project>.iam.gserviceaccount.com`) must exist and be older than
//! [`crate::Options::principal_lag`] (a new account takes a while to be known), and a Workload
//! Identity member `serviceAccount:<project>.svc.id.goog[ns/ksa]` needs a cluster of that project
//! with Workload Identity on (the pool exists only then). A stale etag is 409 `ABORTED`. Deleting a
//! service account rewrites its members as `deleted:serviceAccount:…?uid=…`, as IAM does.
//! Not done: keys, roles (only their shape is checked), conditions (kept, not evaluated),
//! project/organisation policies, `testIamPermissions`, disable/enable/undelete. IAM grants
//! nothing: no call anywhere is ever refused for lack of a role.

use std::time::Instant;

use serde_json::{Value, json};

use crate::dns::int;
use crate::error::ApiError;
use crate::route::{Api, Kind, Target};
use crate::state::{Reply, Req, State, array, project_of, random_fingerprint};

/// The etag IAM gives a resource that never had a policy.
const EMPTY_POLICY_ETAG: &str = "ACAB";

fn not_found(who: &str) -> ApiError {
    ApiError::rpc(404, "NOT_FOUND", format!("Service account {who} does not exist."))
}

/// Whether `id` is a valid account id: 6-30 of `[a-z0-9-]`, a letter first, no `-` last.
fn account_id_ok(id: &str) -> bool {
    (6..=30).contains(&id.len()) && crate::state::rfc1035(id, 30)
}

impl State {
    pub(crate) fn iam(&mut self, req: &Req, t: &Target, now: Instant) -> Result<Reply, ApiError> {
        let no = || State::no_method(Api::Iam, req);
        match (t, req.method) {
            (Target::List { parent, .. }, "GET") => {
                let project = project_of(parent);
                let mut keys = if project == "-" {
                    self.entries
                        .iter()
                        .filter(|(_, e)| e.kind == Kind::ServiceAccount)
                        .map(|(k, _)| k.clone())
                        .collect()
                } else {
                    self.keys_in_project(Kind::ServiceAccount, project)
                };
                keys.sort();
                let accounts: Vec<Value> = keys.iter().map(|k| self.entries[k].value.clone()).collect();
                let (page, next) = self.page(accounts, req, Api::Iam, "pageSize", 100)?;
                let mut out = json!({"accounts": page});
                if let Some(n) = next {
                    out["nextPageToken"] = json!(n);
                }
                Ok(Reply::ok(out))
            }
            (Target::List { parent, .. }, "POST") => self.create_account(parent, req, now),
            (Target::Item { key, .. }, m) => {
                let k = self.account_key(key)?;
                match m {
                    "GET" => Ok(Reply::ok(self.entries[&k].value.clone())),
                    "DELETE" => {
                        self.delete_account(&k);
                        Ok(Reply::ok(json!({})))
                    }
                    "PATCH" => self.patch_account(&k, req),
                    "PUT" => {
                        let body = req.json(Api::Iam)?;
                        self.apply_account_fields(&k, &body, &["displayName", "description"])
                    }
                    _ => Err(no()),
                }
            }
            (Target::Verb { key, verb, .. }, "POST") => {
                let k = self.account_key(key)?;
                match verb.as_str() {
                    "getIamPolicy" => {
                        let v = req.param("options.requestedPolicyVersion").and_then(|s| s.parse().ok());
                        Ok(Reply::ok(self.get_policy(&k, v)))
                    }
                    "setIamPolicy" => {
                        let body = req.json(Api::Iam)?;
                        self.set_policy(&k, &body, Api::Iam, now).map(Reply::ok)
                    }
                    v => Err(ApiError::rpc(
                        501,
                        "UNIMPLEMENTED",
                        format!("The emulator does not implement serviceAccounts.{v}."),
                    )),
                }
            }
            _ => Err(no()),
        }
    }

    /// The key of the account a path names: by email or unique id, under any project or `-`.
    fn account_key(&self, path: &str) -> Result<String, ApiError> {
        let who = path.rsplit('/').next().unwrap_or_default();
        self.find_account(who).ok_or_else(|| not_found(path))
    }

    /// An account by email or unique id.
    pub(crate) fn find_account(&self, who: &str) -> Option<String> {
        self.entries
            .iter()
            .filter(|(_, e)| e.kind == Kind::ServiceAccount)
            .find(|(_, e)| e.value["email"].as_str() == Some(who) || e.value["uniqueId"].as_str() == Some(who))
            .map(|(k, _)| k.clone())
    }

    fn create_account(&mut self, parent: &str, req: &Req, now: Instant) -> Result<Reply, ApiError> {
        let body = req.json(Api::Iam)?;
        let project = project_of(parent).to_string();
        if project == "-" {
            return Err(ApiError::invalid_argument("A service account must be created in a named project, not '-'."));
        }
        let id = body["accountId"].as_str().unwrap_or_default();
        if !account_id_ok(id) {
            return Err(ApiError::invalid_argument(format!(
                "Invalid value for field \"account_id\": \"{id}\". Account IDs are 6 to 30 characters: a lower-case \
                 letter, then lower-case letters, digits and hyphens, not ending with a hyphen."
            )));
        }
        let sa = &body["serviceAccount"];
        if sa["displayName"].as_str().is_some_and(|d| d.chars().count() > 100) {
            return Err(ApiError::invalid_argument("The display name is longer than 100 characters."));
        }
        if sa["description"].as_str().is_some_and(|d| d.chars().count() > 256) {
            return Err(ApiError::invalid_argument("The description is longer than 256 characters."));
        }
        let email = format!("{id}@{project}.iam.gserviceaccount.com");
        let key = format!("projects/{project}/serviceAccounts/{email}");
        if self.entries.contains_key(&key) {
            return Err(ApiError::rpc(
                409,
                "ALREADY_EXISTS",
                format!("Service account {id} already exists within project projects/{project}."),
            ));
        }
        let unique = format!("1{:020}", self.next_id().parse::<u64>().unwrap_or(0));
        let mut doc = json!({
            "name": key,
            "projectId": project,
            "uniqueId": unique,
            "email": email,
            "etag": random_fingerprint(),
            "oauth2ClientId": unique,
        });
        for f in ["displayName", "description"] {
            if let Some(v) = sa[f].as_str().filter(|s| !s.is_empty()) {
                doc[f] = json!(v);
            }
        }
        self.store(Kind::ServiceAccount, &key, doc.clone(), now);
        Ok(Reply::ok(doc))
    }

    fn patch_account(&mut self, key: &str, req: &Req) -> Result<Reply, ApiError> {
        let body = req.json(Api::Iam)?;
        let mask = body["updateMask"].as_str().unwrap_or_default();
        if mask.is_empty() {
            return Err(ApiError::invalid_argument("Invalid value for field \"update_mask\": it is required."));
        }
        let mut fields = Vec::new();
        for f in mask.split(',').map(str::trim) {
            match f {
                "displayName" | "display_name" => fields.push("displayName"),
                "description" => fields.push("description"),
                other => {
                    return Err(ApiError::invalid_argument(format!(
                        "Invalid value for field \"update_mask\": \"{other}\" cannot be updated."
                    )));
                }
            }
        }
        self.apply_account_fields(key, &body["serviceAccount"], &fields)
    }

    fn apply_account_fields(&mut self, key: &str, sa: &Value, fields: &[&str]) -> Result<Reply, ApiError> {
        let e = self.entries.get_mut(key).expect("resolved");
        for f in fields {
            match sa[*f].as_str().filter(|s| !s.is_empty()) {
                Some(v) => e.value[*f] = json!(v),
                None => {
                    if let Some(o) = e.value.as_object_mut() {
                        o.remove(*f);
                    }
                }
            }
        }
        e.value["etag"] = json!(random_fingerprint());
        Ok(Reply::ok(e.value.clone()))
    }

    fn delete_account(&mut self, key: &str) {
        let Some(e) = self.entries.remove(key) else { return };
        self.policies.remove(key);
        let email = e.value["email"].as_str().unwrap_or_default();
        let member = format!("serviceAccount:{email}");
        let gone = format!("deleted:serviceAccount:{email}?uid={}", e.value["uniqueId"].as_str().unwrap_or_default());
        for p in self.policies.values_mut() {
            if let Some(bindings) = p["bindings"].as_array_mut() {
                for b in bindings {
                    if let Some(members) = b["members"].as_array_mut() {
                        for m in members.iter_mut().filter(|m| m.as_str() == Some(&member)) {
                            *m = json!(gone);
                        }
                    }
                }
            }
        }
    }

    // ---- policies ---------------------------------------------------------------------------

    /// The policy on a resource (a zone or service account key): never set, it is empty with the
    /// etag `ACAB`.
    pub(crate) fn get_policy(&self, key: &str, _requested_version: Option<i64>) -> Value {
        self.policies.get(key).cloned().unwrap_or_else(|| json!({"version": 1, "etag": EMPTY_POLICY_ETAG}))
    }

    /// `setIamPolicy`: the etag must be current (or absent), members must exist.
    pub(crate) fn set_policy(&mut self, key: &str, body: &Value, api: Api, now: Instant) -> Result<Value, ApiError> {
        let invalid = |m: String| ApiError::for_api(Some(api), 400, "INVALID_ARGUMENT", m);
        let policy =
            body.get("policy").filter(|p| p.is_object()).ok_or_else(|| invalid("The policy is required.".into()))?;
        let current = self.get_policy(key, None);
        if let Some(etag) = policy["etag"].as_str().filter(|e| !e.is_empty())
            && Some(etag) != current["etag"].as_str()
        {
            let mut e = ApiError::stale_policy();
            if api.legacy() {
                e = ApiError::for_api(Some(api), 409, "ABORTED", e.message);
            }
            return Err(e);
        }
        let project = project_of(key).to_string();
        let mut merged: Vec<(String, Value, Vec<String>)> = Vec::new();
        let mut conditions = false;
        for b in array(&policy["bindings"]) {
            let role = b["role"].as_str().unwrap_or_default().to_string();
            let shaped =
                role.starts_with("roles/") || role.starts_with("projects/") || role.starts_with("organizations/");
            if !shaped || role.ends_with('/') {
                return Err(invalid(format!("Role ({role}) does not exist in the resource's hierarchy.")));
            }
            let members: Vec<String> =
                array(&b["members"]).iter().filter_map(|m| m.as_str().map(String::from)).collect();
            for m in &members {
                self.check_member(m, now).map_err(invalid)?;
            }
            let condition = b.get("condition").cloned().unwrap_or(Value::Null);
            conditions |= !condition.is_null();
            match merged.iter_mut().find(|(r, c, _)| *r == role && *c == condition) {
                Some((_, _, ms)) => ms.extend(members),
                None => merged.push((role, condition, members)),
            }
        }
        let version = int(&policy["version"]).unwrap_or(1);
        if conditions && version < 3 {
            return Err(invalid("A policy with conditions must be version 3.".into()));
        }
        let bindings: Vec<Value> = merged
            .into_iter()
            .filter(|(_, _, ms)| !ms.is_empty())
            .map(|(role, condition, mut ms)| {
                ms.sort();
                ms.dedup();
                let mut b = json!({"role": role, "members": ms});
                if !condition.is_null() {
                    b["condition"] = condition;
                }
                b
            })
            .collect();
        let etag = random_fingerprint();
        let mut out = json!({"version": version, "etag": etag});
        if !bindings.is_empty() {
            out["bindings"] = json!(bindings);
        }
        if let Some(a) = policy.get("auditConfigs").filter(|a| !a.is_null()) {
            out["auditConfigs"] = a.clone();
        }
        let _ = project;
        self.policies.insert(key.to_string(), out.clone());
        Ok(out)
    }

    /// Whether IAM would take this member.
    fn check_member(&self, m: &str, now: Instant) -> Result<(), String> {
        if m == "allUsers" || m == "allAuthenticatedUsers" {
            return Ok(());
        }
        let Some((kind, rest)) = m.split_once(':').filter(|(_, r)| !r.is_empty()) else {
            return Err(format!("Invalid member: {m}"));
        };
        match kind {
            "serviceAccount" => {
                if let Some((pool, ksa)) = rest.split_once('[') {
                    let project = pool.strip_suffix(".svc.id.goog").unwrap_or_default();
                    let ok_shape = !project.is_empty()
                        && ksa
                            .strip_suffix(']')
                            .is_some_and(|s| s.split('/').count() == 2 && !s.starts_with('/') && !s.ends_with('/'));
                    if !ok_shape {
                        return Err(format!("Invalid service account ({rest})."));
                    }
                    if !self.workload_pool_exists(project) {
                        return Err(format!(
                            "Identity Pool does not exist ({pool}). Please check that you specified a valid resource \
                             name as returned in the `name` attribute in the configuration API."
                        ));
                    }
                    return Ok(());
                }
                let user_managed = rest
                    .split_once('@')
                    .is_some_and(|(_, d)| d.ends_with(".iam.gserviceaccount.com") && !d.starts_with("gcp-sa-"));
                if user_managed {
                    let known = self
                        .find_account(rest)
                        .is_some_and(|k| now.duration_since(self.entries[&k].created) >= self.opts.principal_lag);
                    if !known {
                        return Err(format!("Service account {rest} does not exist."));
                    }
                }
                Ok(())
            }
            "user" | "group" | "domain" | "deleted" | "principal" | "principalSet" | "projectOwner"
            | "projectEditor" | "projectViewer" => Ok(()),
            _ => Err(format!("Invalid member: {m}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!(account_id_ok("matih-dns01"));
        assert!(!account_id_ok("short"));
        assert!(!account_id_ok("1matih-dns"));
        assert!(!account_id_ok("matih-dns-"));
        assert!(!account_id_ok("Matih-dns01"));
        assert!(!account_id_ok(&"a".repeat(31)));
    }
}
