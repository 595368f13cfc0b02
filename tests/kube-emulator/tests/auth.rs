//! Authentication through the real kube-rs client: bearer tokens, and EKS tokens presigned with
//! the `aws-sigv4` crate the way `aws eks get-token` builds them.

mod common;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;
use common::{api_error, client, client_with_token};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use matih_kube_emulator::{Auth, KubeEmulator, Options};

async fn list_namespaces(c: kube::Client) -> kube::Result<usize> {
    Ok(Api::<Namespace>::all(c).list(&ListParams::default()).await?.items.len())
}

#[tokio::test]
async fn bearer_tokens_are_required() {
    let em = KubeEmulator::start(Options { auth: Auth::Bearer("letmein".into()), ..Options::default() });
    let err = api_error(list_namespaces(client(&em)).await);
    assert_eq!((err.code, err.reason.as_str()), (401, "Unauthorized"));
    let err = api_error(list_namespaces(client_with_token(&em, Some("wrong"))).await);
    assert_eq!(err.code, 401);
    assert_eq!(list_namespaces(client_with_token(&em, Some("letmein"))).await.unwrap(), 4);
    assert!(em.requests().iter().filter(|r| r.status == 401).count() == 2);
}

/// An EKS token: `k8s-aws-v1.` + base64url of a presigned STS GetCallerIdentity URL signed with
/// the header `x-k8s-aws-id: <cluster>`.
fn eks_token(cluster: &str, secret: &str, at: SystemTime, body: SignableBody<'_>) -> String {
    let identity = Credentials::new("AKIDEXAMPLE", secret, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let url = "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15";
    let request = SignableRequest::new("GET", url, [("x-k8s-aws-id", cluster)].into_iter(), body).unwrap();
    let (instructions, _) = sign(request, &params).unwrap().into_parts();
    let mut req = http::Request::get(url).header("x-k8s-aws-id", cluster).body(()).unwrap();
    instructions.apply_to_request_http1x(&mut req);
    let signed_url = req.uri().to_string();
    format!("k8s-aws-v1.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed_url))
}

#[tokio::test]
async fn eks_tokens_are_verified_against_cluster_key_and_time() {
    let auth = Auth::EksToken {
        cluster: "matih-prod".into(),
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
    };
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let em = KubeEmulator::start(Options { auth, ..Options::default() });
    let now = SystemTime::now();

    // Both payload hashes seen in the wild are accepted.
    for body in [SignableBody::Bytes(&[]), SignableBody::UnsignedPayload] {
        let token = eks_token("matih-prod", secret, now, body);
        assert_eq!(list_namespaces(client_with_token(&em, Some(&token))).await.unwrap(), 4);
    }

    let wrong_cluster = eks_token("matih-staging", secret, now, SignableBody::Bytes(&[]));
    let err = api_error(list_namespaces(client_with_token(&em, Some(&wrong_cluster))).await);
    assert_eq!((err.code, err.reason.as_str()), (401, "Unauthorized"));
    assert!(err.message.contains("signature does not match for cluster \"matih-prod\""), "{}", err.message);

    let wrong_secret = eks_token("matih-prod", "not-the-secret", now, SignableBody::Bytes(&[]));
    assert_eq!(api_error(list_namespaces(client_with_token(&em, Some(&wrong_secret))).await).code, 401);

    let old = eks_token("matih-prod", secret, now - Duration::from_secs(20 * 60), SignableBody::Bytes(&[]));
    let err = api_error(list_namespaces(client_with_token(&em, Some(&old))).await);
    assert!(err.message.contains("expired"), "{}", err.message);

    let err = api_error(list_namespaces(client_with_token(&em, Some("k8s-aws-v1.bm90LWEtdXJs"))).await);
    assert_eq!(err.code, 401);
}
