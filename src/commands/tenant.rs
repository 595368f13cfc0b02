//! `tenant add|remove|list`: onboarding as one command. A tenant is a file beside the platform
//! spec (`tenants/<slug>.yaml`); with `--apply` the command also plans and applies just what the
//! tenant changes (its addresses, DNS record, namespace, ingress controller, policies).
//!
//! With `--apply` the state lock is taken before the file is touched, so two onboarding scripts
//! run one after the other (the second waits per `--lock-timeout`) and each plan sees both files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use matih_plans::{InstanceKey, ResourceAddr};
use matih_spec::naming as layout;
use matih_spec::{LoadedSpec, TenantSpec};
use serde_json::json;

use super::{Env, print_json, run};
use crate::cli::{Format, Global, TenantAddArgs, TenantCommand, TenantRemoveArgs};
use crate::context;
use crate::exit::{Failure, code};

pub async fn run(g: &Global, cmd: &TenantCommand, env: &Env) -> Result<i32, Failure> {
    match cmd {
        TenantCommand::List => list(g),
        TenantCommand::Add(a) => add(g, a, env).await,
        TenantCommand::Remove(a) => remove(g, a, env).await,
    }
}

/// A tenant as scripts see it.
fn tenant_json(spec: &LoadedSpec, slug: &str, display_name: &str, dedicated: bool, file: &Path) -> serde_json::Value {
    json!({
        "slug": slug,
        "display_name": display_name,
        "dedicated_ingress": dedicated,
        "namespace": layout::tenant_namespace(slug),
        "ingress_class": if dedicated { layout::ingress_class(slug) } else { "nginx".to_string() },
        "hostname": format!("{slug}.{}", spec.spec.zone_name()),
        "file": file,
    })
}

fn list(g: &Global) -> Result<i32, Failure> {
    let spec = context::load_spec(g)?;
    let all: Vec<serde_json::Value> = spec
        .spec
        .tenants
        .iter()
        .map(|t| tenant_json(&spec, &t.slug, &t.display_name, t.dedicated_ingress, &t.file))
        .collect();
    match g.format {
        Format::Json => print_json(&json!({ "tenants": all }))?,
        Format::Text => {
            if all.is_empty() {
                println!("No tenants (add one with `matih-infra tenant add <slug>`).");
            }
            for t in &all {
                println!(
                    "{:<24} {:<28} {:<32} {}",
                    t["slug"].as_str().unwrap_or_default(),
                    t["hostname"].as_str().unwrap_or_default(),
                    t["ingress_class"].as_str().unwrap_or_default(),
                    t["display_name"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(code::OK)
}

/// The tenant file's text, commented like the examples.
fn tenant_yaml(slug: &str, display_name: &str, dedicated: bool) -> String {
    // JSON string syntax is YAML's double-quoted scalar syntax.
    let quoted = serde_json::to_string(display_name).expect("a string serializes");
    format!(
        "# One tenant of the platform, written by `matih-infra tenant add`. The file name is <slug>.yaml.\n\
         slug: {slug}\n\
         display_name: {quoted}\n\
         # true: its own NGINX ingress controller (ingress class nginx-tenant-{slug}) and load balancer.\n\
         dedicated_ingress: {dedicated}\n"
    )
}

/// Writes `path` atomically.
fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().unwrap_or_default().to_string_lossy()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// What `add` did to the files.
struct Added {
    file: PathBuf,
    changed: bool,
    display_name: String,
}

/// A slug becomes a file name, a DNS label and a namespace: refuse anything else before touching
/// a file (the platform spec's own check runs after the file is written).
fn check_slug(slug: &str) -> Result<(), Failure> {
    let ok = !slug.is_empty()
        && slug.len() <= 32
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if ok {
        return Ok(());
    }
    Err(Failure::usage(format!("`{slug}` is not a tenant slug"))
        .hint("a slug is a DNS label of at most 32 characters: lower-case a-z, 0-9 and `-`, e.g. `acme`"))
}

fn add_file(spec: &LoadedSpec, a: &TenantAddArgs) -> Result<Added, Failure> {
    check_slug(&a.slug)?;
    let path = spec.tenant_dir.join(format!("{}.yaml", a.slug));
    if let Some(t) = spec.spec.tenants.iter().find(|t| t.slug == a.slug) {
        let same_name = a.name.as_ref().is_none_or(|n| *n == t.display_name);
        if same_name && t.dedicated_ingress == a.dedicated_ingress {
            return Ok(Added { file: t.file.clone(), changed: false, display_name: t.display_name.clone() });
        }
        return Err(Failure::user(anyhow::anyhow!(
            "tenant {} already exists in {} with display_name {:?} and dedicated_ingress: {}",
            t.slug,
            t.file.display(),
            t.display_name,
            t.dedicated_ingress
        ))
        .hint(format!(
            "edit {} to change it, or `matih-infra tenant remove {}` first",
            t.file.display(),
            t.slug
        )));
    }
    let display_name = a.name.clone().unwrap_or_else(|| a.slug.clone());
    write_file(&path, &tenant_yaml(&a.slug, &display_name, a.dedicated_ingress))?;
    // The whole platform spec must still load, with the tenant in it; otherwise the file goes again.
    match context::load_spec_at(&spec.config_path) {
        Ok(s) if s.spec.tenants.iter().any(|t| t.slug == a.slug) => {}
        Ok(_) => {
            let _ = std::fs::remove_file(&path);
            return Err(Failure::user(anyhow::anyhow!(
                "{} was written but the platform spec does not read it",
                path.display()
            )));
        }
        Err(f) => {
            let _ = std::fs::remove_file(&path);
            return Err(f);
        }
    }
    Ok(Added { file: path, changed: true, display_name })
}

async fn add(g: &Global, a: &TenantAddArgs, env: &Env) -> Result<i32, Failure> {
    if !a.apply.apply {
        let spec = context::load_spec(g)?;
        let added = add_file(&spec, a)?;
        return report(g, &spec, a, &added);
    }
    let mut added = None;
    let mut edit = |spec: &LoadedSpec| -> Result<(), Failure> {
        added = Some(add_file(spec, a)?);
        Ok(())
    };
    let s = run::open_with(g, env, "tenant add", Some(&mut edit)).await?;
    let added = added.expect("open_with ran the edit");
    let spec = context::load_spec(g)?;
    if g.format == Format::Text {
        report(g, &spec, a, &added)?;
    }
    let tenant = tenant_json(&spec, &a.slug, &added.display_name, a.dedicated_ingress, &added.file);
    let slug = a.slug.clone();
    run::apply_targeted(s, g, env, &move |addr| belongs_to(addr, &slug), tenant, a.apply.parallelism as usize).await
}

fn report(g: &Global, spec: &LoadedSpec, a: &TenantAddArgs, added: &Added) -> Result<i32, Failure> {
    let t = tenant_json(spec, &a.slug, &added.display_name, a.dedicated_ingress, &added.file);
    match g.format {
        Format::Json => print_json(&json!({"tenant": t, "changed": added.changed}))?,
        Format::Text if added.changed => println!("Added tenant {} ({}).", a.slug, added.file.display()),
        Format::Text => println!("Tenant {} is already there ({}); nothing changed.", a.slug, added.file.display()),
    }
    Ok(code::OK)
}

fn remove_file(spec: &LoadedSpec, slug: &str) -> Result<Option<TenantSpec>, Failure> {
    let Some(t) = spec.spec.tenants.iter().find(|t| t.slug == slug).cloned() else {
        return Ok(None);
    };
    std::fs::remove_file(&t.file).with_context(|| format!("removing {}", t.file.display()))?;
    Ok(Some(t))
}

async fn remove(g: &Global, a: &TenantRemoveArgs, env: &Env) -> Result<i32, Failure> {
    check_slug(&a.slug)?;
    let said = |spec: &LoadedSpec, removed: &Option<TenantSpec>| -> serde_json::Value {
        match removed {
            Some(t) => tenant_json(spec, &t.slug, &t.display_name, t.dedicated_ingress, &t.file),
            None => json!({"slug": a.slug}),
        }
    };
    if !a.apply.apply {
        let spec = context::load_spec(g)?;
        let removed = remove_file(&spec, &a.slug)?;
        match g.format {
            Format::Json => print_json(&json!({"tenant": said(&spec, &removed), "changed": removed.is_some()}))?,
            Format::Text if removed.is_some() => println!(
                "Removed tenant {}; `matih-infra apply` (or `tenant remove {} --apply`) tears down what it had.",
                a.slug, a.slug
            ),
            Format::Text => println!("There is no tenant {}; nothing changed.", a.slug),
        }
        return Ok(code::OK);
    }
    let mut removed = None;
    let mut edit = |spec: &LoadedSpec| -> Result<(), Failure> {
        removed = remove_file(spec, &a.slug)?;
        Ok(())
    };
    let s = run::open_with(g, env, "tenant remove", Some(&mut edit)).await?;
    let spec = context::load_spec(g)?;
    if g.format == Format::Text {
        match &removed {
            Some(t) => println!("Removed tenant {} ({}).", t.slug, t.file.display()),
            None => println!("There is no tenant file for {}; tearing down whatever state still has.", a.slug),
        }
    }
    let tenant = said(&spec, &removed);
    let slug = a.slug.clone();
    run::apply_targeted(s, g, env, &move |addr| belongs_to(addr, &slug), tenant, a.apply.parallelism as usize).await
}

/// Resources that exist for one tenant: keyed by its slug (`["acme"]`, `["acme/us-east-1a"]`),
/// and the platform's network policies, which name every tenant.
fn belongs_to(addr: &ResourceAddr, slug: &str) -> bool {
    let keyed = match &addr.key {
        Some(InstanceKey::Str(k)) => k == slug || k.strip_prefix(slug).is_some_and(|rest| rest.starts_with('/')),
        _ => false,
    };
    keyed || (addr.rtype.to_string() == "k8s.addon" && addr.name == "network_policies")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenants_resources_are_those_keyed_by_its_slug() {
        let yes = ["eks.eip.ingress[\"acme/us-east-1a\"]", "dns.record.tenant[\"acme\"]", "k8s.addon.tenant[\"acme\"]"];
        for a in yes {
            assert!(belongs_to(&a.parse().unwrap(), "acme"), "{a}");
        }
        let no = ["eks.eip.ingress[\"acmecorp/us-east-1a\"]", "dns.record.tenant[\"acmecorp\"]", "eks.vpc.main"];
        for a in no {
            assert!(!belongs_to(&a.parse().unwrap(), "acme"), "{a}");
        }
        assert!(belongs_to(&"k8s.addon.network_policies".parse().unwrap(), "acme"));
    }

    #[test]
    fn slugs_that_are_not_dns_labels_are_refused_before_any_file_is_written() {
        for bad in ["../acme", "Acme", "acme!", "-acme", "", "a234567890123456789012345678901234"] {
            assert!(check_slug(bad).is_err(), "{bad:?}");
        }
        for good in ["acme", "big-corp", "t0001"] {
            assert!(check_slug(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn tenant_file_quotes_the_display_name() {
        let y = tenant_yaml("acme", "Acme: \"the\" corp", true);
        assert!(y.contains("display_name: \"Acme: \\\"the\\\" corp\"\n"), "{y}");
        assert!(y.contains("dedicated_ingress: true\n"));
    }
}
