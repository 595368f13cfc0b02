//! `policy report` and `kubeconfig`: what the bootstrap sets up, seen from outside it.

use serde_json::json;

use super::print_json;
use matih_plans::Value;

use crate::cli::{Format, Global, PolicyCommand};
use crate::context::{self, Locked};
use crate::exit::{Failure, code};

#[cfg(feature = "bootstrap")]
pub fn policy(g: &Global, cmd: &PolicyCommand) -> Result<i32, Failure> {
    use matih_provider_kubernetes::layout::Layout;
    use matih_provider_kubernetes::netpol;
    match cmd {
        PolicyCommand::Report => {
            let spec = context::load_spec(g)?;
            let report = netpol::report(&Layout::from_spec(&spec.spec, None));
            match g.format {
                Format::Json => print_json(&report)?,
                Format::Text => print!("{}", report.render_text()),
            }
            Ok(code::OK)
        }
    }
}

/// The report is computed by the bootstrap's policy generator and evaluator.
#[cfg(not(feature = "bootstrap"))]
pub fn policy(_g: &Global, _cmd: &PolicyCommand) -> Result<i32, Failure> {
    Err(Failure::usage("the policy report is not part of this build").hint("build with the `bootstrap` cargo feature"))
}

/// A kubeconfig for the cluster recorded in state. It holds no credential: it runs the cloud's
/// own plugin (EKS: `aws eks get-token`) each time kubectl needs a token.
pub async fn kubeconfig(g: &Global) -> Result<i32, Failure> {
    let spec = context::load_spec(g)?;
    let cloud = context::cloud(g, &spec)?;
    let location = context::state_location(g, &spec, cloud.as_ref())?;
    let state = Locked::read_only(&location, g, Some(&spec)).await?;
    let Some(binding) = cloud.bootstrap_binding(&spec.spec) else {
        return Err(Failure::usage(format!(
            "kubeconfig is not available for --cloud {}: it has no cluster",
            cloud.name()
        )));
    };
    let addr = binding.cluster_addr.clone();
    if !state.resources.contains_key(&addr) {
        return Err(Failure::user(anyhow::anyhow!("no cluster recorded in {location} ({addr} is not in state)"))
            .hint("run `matih-infra apply` first; the kubeconfig is made from the cluster the tool created"));
    }
    // The binding names the cluster resource's attributes; state holds their values.
    let recorded = |v: &Value| -> String {
        let resolved = v.resolve(&mut |r| state.resources.get(&r.addr).and_then(|res| res.attrs.get(&r.attr)).cloned());
        resolved.as_known().and_then(|j| j.as_str()).unwrap_or_default().to_string()
    };
    let c = &binding.connection;
    let (name, endpoint, ca) = (recorded(&c.name), recorded(&c.endpoint), recorded(&c.ca_data));
    if endpoint.is_empty() || ca.is_empty() {
        return Err(Failure::user(anyhow::anyhow!("the cluster {name} in state has no endpoint or CA recorded"))
            .hint("run `matih-infra refresh` to record what the cloud reports"));
    }
    let e = cloud
        .exec_credential(&spec.spec, &name)
        .map_err(|why| Failure::usage(format!("kubeconfig is not available for --cloud {}: {why}", cloud.name())))?;
    let user = format!("{name}-matih");
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": e.command,
            "args": e.args,
            "interactiveMode": "IfAvailable",
            "installHint": format!("this kubeconfig runs `{}`: install {}", e.command, e.install_hint),
        }}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    });
    match g.format {
        Format::Json => print_json(&doc)?,
        Format::Text => print!("{}", yaml(&doc, 0)),
    }
    Ok(code::OK)
}

/// Block-style YAML for a JSON document; strings double-quoted (JSON's string syntax is YAML's).
fn yaml(v: &serde_json::Value, indent: usize) -> String {
    use serde_json::Value as J;
    let pad = " ".repeat(indent);
    let scalar = |v: &J| match v {
        J::String(s) => serde_json::to_string(s).expect("a string serializes"),
        other => other.to_string(),
    };
    let mut out = String::new();
    match v {
        J::Object(m) => {
            for (k, x) in m {
                match x {
                    J::Object(_) | J::Array(_) if !is_empty(x) => {
                        out.push_str(&format!("{pad}{k}:\n{}", yaml(x, indent + 2)))
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(x))),
                }
            }
        }
        J::Array(items) => {
            for x in items {
                let inner = yaml(x, indent + 2);
                match x {
                    J::Object(_) | J::Array(_) if !is_empty(x) => {
                        out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", scalar(x))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
    out
}

fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) => m.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_nests_maps_and_lists() {
        let v = json!({"a": [{"b": "x", "c": {"d": 1}}], "e": "f"});
        assert_eq!(yaml(&v, 0), "a:\n  - b: \"x\"\n    c:\n      d: 1\ne: \"f\"\n");
    }
}
