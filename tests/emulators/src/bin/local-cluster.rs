//! A stand-in Kubernetes API server for trying the tool locally (`scripts/try-local`): starts the
//! Kubernetes API emulator on 127.0.0.1 — `local-cluster <cluster>` as EKS seeds a cluster,
//! accepting that cluster's EKS token (signed with moto's dummy credentials); `local-cluster
//! --aks <token>` as AKS seeds one, accepting the cluster user credential's token; `local-cluster
//! --gke <token>` as GKE seeds one, accepting that access token — prints one line
//! of JSON (`{"url": ..., "addons_dir": ...}`) and serves until its standard input closes.

use std::io::Read;

use matih_kube_emulator::{Auth, Flavor, KubeEmulator, Options};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match args.as_slice() {
        [flag, token] if flag == "--aks" => {
            Options { auth: Auth::Bearer(token.clone()), flavor: Flavor::Aks, ..Options::default() }
        }
        [flag, token] if flag == "--gke" => {
            Options { auth: Auth::Bearer(token.clone()), flavor: Flavor::Gke, ..Options::default() }
        }
        _ => {
            let cluster = args.first().cloned().unwrap_or_else(|| "matih-prod".to_string());
            Options {
                auth: Auth::EksToken { cluster, access_key_id: "testing".into(), secret_access_key: "testing".into() },
                ..Options::default()
            }
        }
    };
    let kube = KubeEmulator::start(options);
    // The add-on manifests from ../shared, if it is beside the checkout; otherwise the tool
    // fetches the pinned upstream releases itself.
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/addons");
    let addons = if shared.is_dir() { Some(matih_emulators::addons_dir().display().to_string()) } else { None };
    println!("{}", serde_json::json!({"url": kube.url(), "addons_dir": addons}));
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
