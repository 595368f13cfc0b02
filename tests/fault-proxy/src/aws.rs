//! AWS: names the action of each request the AWS SDK for Rust sends, and writes synthetic error
//! answers in each protocol's shape, so the SDK reads the error code AWS itself would send and
//! retries (or not) exactly as it would against AWS.
//!
//! The protocols, told apart by the request target:
//! - `POST /`: the Query protocol (EC2 `ec2Query`; IAM and STS `awsQuery`). The form body's
//!   `Action` names the action (the query string's, if the body has none). EC2 errors are
//!   `<Response><Errors><Error>`, IAM and STS errors `<ErrorResponse><Error>`. EC2 is recognised by
//!   the API version every EC2 request carries, `Version=2016-11-15`: no list of action names to
//!   keep up to date, no parsing of the signature's credential scope.
//! - `/2013-04-01/...`: Route 53, REST-XML; method and path template name the action.
//! - Any other path: EKS, REST-JSON; method and path template name the action.
//!
//! The path templates are those of every operation in aws-sdk-eks 1.160 and aws-sdk-route53 1.132
//! (their `uri_base`). A `{}` matches one non-empty path segment: the SDK percent-encodes labels
//! (an ARN's `/` and `:` included), so a label is always one segment. A trailing `/` is ignored.
//!
//! What it deliberately does not do: other services and protocols (S3, awsJson services such as
//! KMS) come back unclassified (`None`); no signature checks; no percent-decoding of labels.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::{Action, Options, Request, Rule};

/// [`Options`] that classify AWS requests and answer AWS-shaped errors.
pub fn options(upstream: SocketAddr, rules: Vec<Rule>) -> Options {
    Options { upstream, classify: Arc::new(classify), error_body: Arc::new(error_body), rules }
}

/// The action an AWS SDK request performs, `None` if it is none this module knows.
pub fn classify(req: &Request<'_>) -> Option<Action> {
    if signed_for(req) == Some("s3") {
        let name = s3_action(req)?;
        return Some(Action { mutating: is_mutating(name), name: name.to_owned() });
    }
    let name = match protocol(req) {
        Protocol::Ec2Query | Protocol::AwsQuery => query_param(req, "Action")?,
        Protocol::RestXml => route(ROUTE53, req.method, path(req))?.to_owned(),
        Protocol::RestJson => route(EKS, req.method, path(req))?.to_owned(),
    };
    Some(Action { mutating: is_mutating(&name), name })
}

/// Whether an action changes anything: all but reads, which are named `Describe*`, `List*` or
/// `Get*` (`GetCallerIdentity` among them), and the few reads named otherwise.
pub fn is_mutating(action: &str) -> bool {
    const READ_PREFIXES: &[&str] = &["Describe", "List", "Get"];
    const OTHER_READS: &[&str] = &[
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "DecodeAuthorizationMessage",
        "SimulateCustomPolicy",
        "SimulatePrincipalPolicy",
        "TestDNSAnswer",
    ];
    !(READ_PREFIXES.iter().any(|p| action.starts_with(p)) || OTHER_READS.contains(&action))
}

/// Content-Type and body of an error answer with this status: a throttling error for 429, a
/// server failure for anything else, in the request's protocol. The codes are ones the SDK's retry
/// classifier knows (`RequestLimitExceeded`, `Throttling`, `ThrottlingException`), or a 5xx.
///
/// EKS's code goes in the JSON body's `__type`, which the SDK reads when there is no
/// `x-amzn-errortype` header (the callback cannot set headers).
pub fn error_body(req: &Request<'_>, status: u16) -> (String, Vec<u8>) {
    let throttled = status == 429;
    let message = if throttled {
        "Rate exceeded (injected by the fault proxy)"
    } else {
        "We encountered an internal error. Please try again. (injected by the fault proxy)"
    };
    if signed_for(req) == Some("s3") {
        let code = if throttled { "SlowDown" } else { "InternalError" };
        let body = format!(
            "{XML_DECLARATION}<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{REQUEST_ID}</RequestId></Error>"
        );
        return ("application/xml".to_owned(), body.into_bytes());
    }
    let protocol = protocol(req);
    let (fault_type, code) = match (&protocol, throttled) {
        (Protocol::Ec2Query, true) => ("", "RequestLimitExceeded"),
        (Protocol::Ec2Query, false) => ("", "InternalError"),
        (Protocol::AwsQuery | Protocol::RestXml, true) => ("<Type>Sender</Type>", "Throttling"),
        (Protocol::AwsQuery, false) => ("<Type>Receiver</Type>", "ServiceFailure"),
        (Protocol::RestXml, false) => ("<Type>Receiver</Type>", "InternalFailure"),
        (Protocol::RestJson, true) => ("", "ThrottlingException"),
        (Protocol::RestJson, false) => ("", "ServerException"),
    };
    let error = format!("<Error>{fault_type}<Code>{code}</Code><Message>{message}</Message></Error>");
    let (kind, body) = match protocol {
        Protocol::Ec2Query => (
            "text/xml;charset=UTF-8",
            format!(
                r#"{XML_DECLARATION}<Response><Errors>{error}</Errors><RequestID>{REQUEST_ID}</RequestID></Response>"#
            ),
        ),
        Protocol::AwsQuery => {
            ("text/xml", format!("<ErrorResponse>{error}<RequestId>{REQUEST_ID}</RequestId></ErrorResponse>"))
        }
        Protocol::RestXml => (
            "text/xml",
            format!(
                r#"{XML_DECLARATION}<ErrorResponse xmlns="{ROUTE53_XMLNS}">{error}<RequestId>{REQUEST_ID}</RequestId></ErrorResponse>"#
            ),
        ),
        Protocol::RestJson => ("application/json", format!(r#"{{"__type":"{code}","message":"{message}"}}"#)),
    };
    (kind.to_owned(), body.into_bytes())
}

/// The service a SigV4 request is signed for: the third part of the credential scope
/// (`Credential=AKID/20260101/us-east-1/s3/aws4_request`).
fn signed_for<'a>(req: &Request<'a>) -> Option<&'a str> {
    let auth = req.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    scope.split('/').nth(3)
}

/// The S3 object and bucket calls the state store makes, addressed by path
/// (`/bucket/key`, `/bucket?versioning`).
fn s3_action(req: &Request<'_>) -> Option<&'static str> {
    let (path, query) = req.path_and_query.split_once('?').unwrap_or((req.path_and_query, ""));
    let has_key = path.trim_start_matches('/').split_once('/').is_some_and(|(_, k)| !k.is_empty());
    let sub = |name: &str| query.split('&').any(|p| p.split('=').next() == Some(name));
    Some(match (req.method, has_key) {
        ("GET", false) if sub("versioning") => "GetBucketVersioning",
        ("PUT", false) if sub("versioning") => "PutBucketVersioning",
        ("PUT", false) => "CreateBucket",
        ("GET", false) => "ListObjects",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("PUT", true) => "PutObject",
        ("DELETE", true) => "DeleteObject",
        _ => return None,
    })
}

/// The request id of synthetic errors, so they are easy to tell apart in the tool's logs.
const REQUEST_ID: &str = "fault-proxy";
const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
const ROUTE53_XMLNS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

/// The wire protocol of a request, which decides the shape of its errors.
enum Protocol {
    Ec2Query,
    AwsQuery,
    RestXml,
    RestJson,
}

/// The EC2 API version every EC2 request names.
const EC2_VERSION: &str = "2016-11-15";

fn protocol(req: &Request<'_>) -> Protocol {
    let path = path(req);
    if path == "/" {
        if query_param(req, "Version").as_deref() == Some(EC2_VERSION) {
            Protocol::Ec2Query
        } else {
            Protocol::AwsQuery
        }
    } else if path.starts_with("/2013-04-01/") {
        Protocol::RestXml
    } else {
        Protocol::RestJson
    }
}

fn path<'a>(req: &Request<'a>) -> &'a str {
    req.path_and_query.split_once('?').map_or(req.path_and_query, |(p, _)| p)
}

/// A Query-protocol parameter: from the form body, else from the query string.
fn query_param(req: &Request<'_>, key: &str) -> Option<String> {
    let query = req.path_and_query.split_once('?').map_or("", |(_, q)| q);
    [req.body, query.as_bytes()]
        .into_iter()
        .find_map(|form| form_urlencoded::parse(form).find(|(k, _)| k == key).map(|(_, v)| v.into_owned()))
}

/// The action of the first row whose method and path template match.
fn route(table: &[(&str, &str, &'static str)], method: &str, path: &str) -> Option<&'static str> {
    let path = path.strip_suffix('/').unwrap_or(path);
    table.iter().find(|(m, template, _)| *m == method && matches(template, path)).map(|(_, _, action)| *action)
}

fn matches(template: &str, path: &str) -> bool {
    let (mut t, mut p) = (template.split('/'), path.split('/'));
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some("{}"), Some(segment)) if !segment.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// EKS (aws-sdk-eks 1.160): method, path template, action.
const EKS: &[(&str, &str, &str)] = &[
    ("POST", "/clusters/{}/certificate-authorities/{}/activate", "ActivateCertificateAuthority"),
    ("POST", "/clusters/{}/access-entries/{}/access-policies", "AssociateAccessPolicy"),
    ("POST", "/clusters/{}/encryption-config/associate", "AssociateEncryptionConfig"),
    ("POST", "/clusters/{}/identity-provider-configs/associate", "AssociateIdentityProviderConfig"),
    ("POST", "/clusters/{}/updates/{}/cancel-update", "CancelUpdate"),
    ("POST", "/clusters/{}/access-entries", "CreateAccessEntry"),
    ("POST", "/clusters/{}/addons", "CreateAddon"),
    ("POST", "/clusters/{}/capabilities", "CreateCapability"),
    ("POST", "/clusters/{}/certificate-authorities", "CreateCertificateAuthority"),
    ("POST", "/clusters", "CreateCluster"),
    ("POST", "/eks-anywhere-subscriptions", "CreateEksAnywhereSubscription"),
    ("POST", "/clusters/{}/fargate-profiles", "CreateFargateProfile"),
    ("POST", "/clusters/{}/node-groups", "CreateNodegroup"),
    ("POST", "/clusters/{}/pod-identity-associations", "CreatePodIdentityAssociation"),
    ("DELETE", "/clusters/{}/access-entries/{}", "DeleteAccessEntry"),
    ("DELETE", "/clusters/{}/addons/{}", "DeleteAddon"),
    ("DELETE", "/clusters/{}/capabilities/{}", "DeleteCapability"),
    ("DELETE", "/clusters/{}/certificate-authorities/{}", "DeleteCertificateAuthority"),
    ("DELETE", "/clusters/{}", "DeleteCluster"),
    ("DELETE", "/eks-anywhere-subscriptions/{}", "DeleteEksAnywhereSubscription"),
    ("DELETE", "/clusters/{}/fargate-profiles/{}", "DeleteFargateProfile"),
    ("DELETE", "/clusters/{}/node-groups/{}", "DeleteNodegroup"),
    ("DELETE", "/clusters/{}/pod-identity-associations/{}", "DeletePodIdentityAssociation"),
    ("DELETE", "/cluster-registrations/{}", "DeregisterCluster"),
    ("GET", "/clusters/{}/access-entries/{}", "DescribeAccessEntry"),
    ("GET", "/clusters/{}/addons/{}", "DescribeAddon"),
    ("GET", "/addons/configuration-schemas", "DescribeAddonConfiguration"),
    ("GET", "/addons/supported-versions", "DescribeAddonVersions"),
    ("GET", "/clusters/{}/capabilities/{}", "DescribeCapability"),
    ("GET", "/clusters/{}/certificate-authorities/{}", "DescribeCertificateAuthority"),
    ("GET", "/clusters/{}", "DescribeCluster"),
    ("GET", "/cluster-versions", "DescribeClusterVersions"),
    ("GET", "/eks-anywhere-subscriptions/{}", "DescribeEksAnywhereSubscription"),
    ("GET", "/clusters/{}/fargate-profiles/{}", "DescribeFargateProfile"),
    ("POST", "/clusters/{}/identity-provider-configs/describe", "DescribeIdentityProviderConfig"),
    ("GET", "/clusters/{}/insights/{}", "DescribeInsight"),
    ("GET", "/clusters/{}/insights-refresh", "DescribeInsightsRefresh"),
    ("GET", "/clusters/{}/node-groups/{}", "DescribeNodegroup"),
    ("GET", "/clusters/{}/pod-identity-associations/{}", "DescribePodIdentityAssociation"),
    ("GET", "/clusters/{}/updates/{}", "DescribeUpdate"),
    ("DELETE", "/clusters/{}/access-entries/{}/access-policies/{}", "DisassociateAccessPolicy"),
    ("POST", "/clusters/{}/identity-provider-configs/disassociate", "DisassociateIdentityProviderConfig"),
    ("GET", "/clusters/{}/access-entries", "ListAccessEntries"),
    ("GET", "/access-policies", "ListAccessPolicies"),
    ("GET", "/clusters/{}/addons", "ListAddons"),
    ("GET", "/clusters/{}/access-entries/{}/access-policies", "ListAssociatedAccessPolicies"),
    ("GET", "/clusters/{}/capabilities", "ListCapabilities"),
    ("GET", "/clusters/{}/certificate-authorities", "ListCertificateAuthorities"),
    ("GET", "/clusters", "ListClusters"),
    ("GET", "/eks-anywhere-subscriptions", "ListEksAnywhereSubscriptions"),
    ("GET", "/clusters/{}/fargate-profiles", "ListFargateProfiles"),
    ("GET", "/clusters/{}/identity-provider-configs", "ListIdentityProviderConfigs"),
    ("POST", "/clusters/{}/insights", "ListInsights"),
    ("GET", "/clusters/{}/node-groups", "ListNodegroups"),
    ("GET", "/clusters/{}/pod-identity-associations", "ListPodIdentityAssociations"),
    ("GET", "/tags/{}", "ListTagsForResource"),
    ("GET", "/clusters/{}/updates", "ListUpdates"),
    ("POST", "/cluster-registrations", "RegisterCluster"),
    ("POST", "/clusters/{}/insights-refresh", "StartInsightsRefresh"),
    ("POST", "/tags/{}", "TagResource"),
    ("DELETE", "/tags/{}", "UntagResource"),
    ("POST", "/clusters/{}/access-entries/{}", "UpdateAccessEntry"),
    ("POST", "/clusters/{}/addons/{}/update", "UpdateAddon"),
    ("POST", "/clusters/{}/capabilities/{}", "UpdateCapability"),
    ("POST", "/clusters/{}/update-config", "UpdateClusterConfig"),
    ("POST", "/clusters/{}/updates", "UpdateClusterVersion"),
    ("POST", "/eks-anywhere-subscriptions/{}", "UpdateEksAnywhereSubscription"),
    ("POST", "/clusters/{}/node-groups/{}/update-config", "UpdateNodegroupConfig"),
    ("POST", "/clusters/{}/node-groups/{}/update-version", "UpdateNodegroupVersion"),
    ("POST", "/clusters/{}/pod-identity-associations/{}", "UpdatePodIdentityAssociation"),
];

/// Route 53 (aws-sdk-route53 1.132): method, path template, action.
const ROUTE53: &[(&str, &str, &str)] = &[
    ("POST", "/2013-04-01/keysigningkey/{}/{}/activate", "ActivateKeySigningKey"),
    ("POST", "/2013-04-01/hostedzone/{}/associatevpc", "AssociateVPCWithHostedZone"),
    ("POST", "/2013-04-01/cidrcollection/{}", "ChangeCidrCollection"),
    ("POST", "/2013-04-01/hostedzone/{}/rrset", "ChangeResourceRecordSets"),
    ("POST", "/2013-04-01/tags/{}/{}", "ChangeTagsForResource"),
    ("POST", "/2013-04-01/cidrcollection", "CreateCidrCollection"),
    ("POST", "/2013-04-01/healthcheck", "CreateHealthCheck"),
    ("POST", "/2013-04-01/hostedzone", "CreateHostedZone"),
    ("POST", "/2013-04-01/keysigningkey", "CreateKeySigningKey"),
    ("POST", "/2013-04-01/queryloggingconfig", "CreateQueryLoggingConfig"),
    ("POST", "/2013-04-01/delegationset", "CreateReusableDelegationSet"),
    ("POST", "/2013-04-01/trafficpolicy", "CreateTrafficPolicy"),
    ("POST", "/2013-04-01/trafficpolicyinstance", "CreateTrafficPolicyInstance"),
    ("POST", "/2013-04-01/trafficpolicy/{}", "CreateTrafficPolicyVersion"),
    ("POST", "/2013-04-01/hostedzone/{}/authorizevpcassociation", "CreateVPCAssociationAuthorization"),
    ("POST", "/2013-04-01/keysigningkey/{}/{}/deactivate", "DeactivateKeySigningKey"),
    ("DELETE", "/2013-04-01/cidrcollection/{}", "DeleteCidrCollection"),
    ("DELETE", "/2013-04-01/healthcheck/{}", "DeleteHealthCheck"),
    ("DELETE", "/2013-04-01/hostedzone/{}", "DeleteHostedZone"),
    ("DELETE", "/2013-04-01/keysigningkey/{}/{}", "DeleteKeySigningKey"),
    ("DELETE", "/2013-04-01/queryloggingconfig/{}", "DeleteQueryLoggingConfig"),
    ("DELETE", "/2013-04-01/delegationset/{}", "DeleteReusableDelegationSet"),
    ("DELETE", "/2013-04-01/trafficpolicy/{}/{}", "DeleteTrafficPolicy"),
    ("DELETE", "/2013-04-01/trafficpolicyinstance/{}", "DeleteTrafficPolicyInstance"),
    ("POST", "/2013-04-01/hostedzone/{}/deauthorizevpcassociation", "DeleteVPCAssociationAuthorization"),
    ("POST", "/2013-04-01/hostedzone/{}/disable-dnssec", "DisableHostedZoneDNSSEC"),
    ("POST", "/2013-04-01/hostedzone/{}/disassociatevpc", "DisassociateVPCFromHostedZone"),
    ("POST", "/2013-04-01/hostedzone/{}/enable-dnssec", "EnableHostedZoneDNSSEC"),
    ("GET", "/2013-04-01/accountlimit/{}", "GetAccountLimit"),
    ("GET", "/2013-04-01/change/{}", "GetChange"),
    ("GET", "/2013-04-01/checkeripranges", "GetCheckerIpRanges"),
    ("GET", "/2013-04-01/hostedzone/{}/dnssec", "GetDNSSEC"),
    ("GET", "/2013-04-01/geolocation", "GetGeoLocation"),
    ("GET", "/2013-04-01/healthcheck/{}", "GetHealthCheck"),
    ("GET", "/2013-04-01/healthcheckcount", "GetHealthCheckCount"),
    ("GET", "/2013-04-01/healthcheck/{}/lastfailurereason", "GetHealthCheckLastFailureReason"),
    ("GET", "/2013-04-01/healthcheck/{}/status", "GetHealthCheckStatus"),
    ("GET", "/2013-04-01/hostedzone/{}", "GetHostedZone"),
    ("GET", "/2013-04-01/hostedzonecount", "GetHostedZoneCount"),
    ("GET", "/2013-04-01/hostedzonelimit/{}/{}", "GetHostedZoneLimit"),
    ("GET", "/2013-04-01/queryloggingconfig/{}", "GetQueryLoggingConfig"),
    ("GET", "/2013-04-01/delegationset/{}", "GetReusableDelegationSet"),
    ("GET", "/2013-04-01/reusabledelegationsetlimit/{}/{}", "GetReusableDelegationSetLimit"),
    ("GET", "/2013-04-01/trafficpolicy/{}/{}", "GetTrafficPolicy"),
    ("GET", "/2013-04-01/trafficpolicyinstance/{}", "GetTrafficPolicyInstance"),
    ("GET", "/2013-04-01/trafficpolicyinstancecount", "GetTrafficPolicyInstanceCount"),
    ("GET", "/2013-04-01/cidrcollection/{}/cidrblocks", "ListCidrBlocks"),
    ("GET", "/2013-04-01/cidrcollection", "ListCidrCollections"),
    ("GET", "/2013-04-01/cidrcollection/{}", "ListCidrLocations"),
    ("GET", "/2013-04-01/geolocations", "ListGeoLocations"),
    ("GET", "/2013-04-01/healthcheck", "ListHealthChecks"),
    ("GET", "/2013-04-01/hostedzone", "ListHostedZones"),
    ("GET", "/2013-04-01/hostedzonesbyname", "ListHostedZonesByName"),
    ("GET", "/2013-04-01/hostedzonesbyvpc", "ListHostedZonesByVPC"),
    ("GET", "/2013-04-01/queryloggingconfig", "ListQueryLoggingConfigs"),
    ("GET", "/2013-04-01/hostedzone/{}/rrset", "ListResourceRecordSets"),
    ("GET", "/2013-04-01/delegationset", "ListReusableDelegationSets"),
    ("GET", "/2013-04-01/tags/{}/{}", "ListTagsForResource"),
    ("POST", "/2013-04-01/tags/{}", "ListTagsForResources"),
    ("GET", "/2013-04-01/trafficpolicies", "ListTrafficPolicies"),
    ("GET", "/2013-04-01/trafficpolicyinstances", "ListTrafficPolicyInstances"),
    ("GET", "/2013-04-01/trafficpolicyinstances/hostedzone", "ListTrafficPolicyInstancesByHostedZone"),
    ("GET", "/2013-04-01/trafficpolicyinstances/trafficpolicy", "ListTrafficPolicyInstancesByPolicy"),
    ("GET", "/2013-04-01/trafficpolicies/{}/versions", "ListTrafficPolicyVersions"),
    ("GET", "/2013-04-01/hostedzone/{}/authorizevpcassociation", "ListVPCAssociationAuthorizations"),
    ("GET", "/2013-04-01/testdnsanswer", "TestDNSAnswer"),
    ("POST", "/2013-04-01/healthcheck/{}", "UpdateHealthCheck"),
    ("POST", "/2013-04-01/hostedzone/{}", "UpdateHostedZoneComment"),
    ("POST", "/2013-04-01/hostedzone/{}/features", "UpdateHostedZoneFeatures"),
    ("POST", "/2013-04-01/trafficpolicy/{}/{}", "UpdateTrafficPolicyComment"),
    ("POST", "/2013-04-01/trafficpolicyinstance/{}", "UpdateTrafficPolicyInstance"),
];

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    fn action(method: &str, target: &str, body: &str) -> Option<(String, bool)> {
        let headers = HeaderMap::new();
        let req = Request { method, path_and_query: target, headers: &headers, body: body.as_bytes() };
        classify(&req).map(|a| (a.name, a.mutating))
    }

    fn named(method: &str, target: &str) -> Option<String> {
        action(method, target, "").map(|(name, _)| name)
    }

    fn body(method: &str, target: &str, form: &str, status: u16) -> (String, String) {
        let headers = HeaderMap::new();
        let req = Request { method, path_and_query: target, headers: &headers, body: form.as_bytes() };
        let (kind, body) = error_body(&req, status);
        (kind, String::from_utf8(body).unwrap())
    }

    #[test]
    fn query_protocol_actions_come_from_the_form_body() {
        let create = "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16";
        assert_eq!(action("POST", "/", create), Some(("CreateVpc".into(), true)));
        assert_eq!(action("POST", "/", "Action=DescribeVpcs&Version=2016-11-15"), Some(("DescribeVpcs".into(), false)));
        assert_eq!(
            action("POST", "/", "Version=2010-05-08&Action=CreateRole&RoleName=r"),
            Some(("CreateRole".into(), true))
        );
        assert_eq!(
            action("POST", "/", "Action=GetCallerIdentity&Version=2011-06-15"),
            Some(("GetCallerIdentity".into(), false))
        );
        assert_eq!(action("GET", "/?Action=ListRoles&Version=2010-05-08", ""), Some(("ListRoles".into(), false)));
        assert_eq!(action("POST", "/", "Version=2016-11-15"), None);
    }

    #[test]
    fn eks_actions_come_from_method_and_path() {
        let cases = [
            ("POST", "/clusters", "CreateCluster"),
            ("GET", "/clusters?maxResults=100", "ListClusters"),
            ("GET", "/clusters/matih", "DescribeCluster"),
            ("DELETE", "/clusters/matih", "DeleteCluster"),
            ("POST", "/clusters/matih/update-config", "UpdateClusterConfig"),
            ("POST", "/clusters/matih/updates", "UpdateClusterVersion"),
            ("GET", "/clusters/matih/updates/1234", "DescribeUpdate"),
            ("POST", "/clusters/matih/node-groups", "CreateNodegroup"),
            ("GET", "/clusters/matih/node-groups", "ListNodegroups"),
            ("GET", "/clusters/matih/node-groups/system", "DescribeNodegroup"),
            ("DELETE", "/clusters/matih/node-groups/system", "DeleteNodegroup"),
            ("POST", "/clusters/matih/node-groups/system/update-config", "UpdateNodegroupConfig"),
            ("POST", "/clusters/matih/addons", "CreateAddon"),
            ("POST", "/tags/arn%3Aaws%3Aeks%3Aus-east-1%3A123456789012%3Acluster%2Fmatih", "TagResource"),
            ("DELETE", "/tags/arn%3Aaws%3Aeks%3Aus-east-1%3A123456789012%3Acluster%2Fmatih?tagKeys=a", "UntagResource"),
            ("GET", "/tags/arn%3Aaws%3Aeks%3Aus-east-1%3A123456789012%3Acluster%2Fmatih", "ListTagsForResource"),
        ];
        for (method, target, want) in cases {
            assert_eq!(named(method, target).as_deref(), Some(want), "{method} {target}");
        }
        assert_eq!(action("POST", "/clusters", "{}"), Some(("CreateCluster".into(), true)));
        assert_eq!(action("GET", "/clusters/matih", ""), Some(("DescribeCluster".into(), false)));
        assert_eq!(named("PUT", "/clusters/matih"), None);
        assert_eq!(named("GET", "/api/v1/namespaces"), None);
        assert_eq!(named("GET", "/clusters//node-groups"), None);
    }

    #[test]
    fn route53_actions_come_from_method_and_path() {
        let cases = [
            ("POST", "/2013-04-01/hostedzone", "CreateHostedZone"),
            ("GET", "/2013-04-01/hostedzone?maxitems=100", "ListHostedZones"),
            ("GET", "/2013-04-01/hostedzonesbyname?dnsname=example.com", "ListHostedZonesByName"),
            ("GET", "/2013-04-01/hostedzone/Z123", "GetHostedZone"),
            ("POST", "/2013-04-01/hostedzone/Z123", "UpdateHostedZoneComment"),
            ("DELETE", "/2013-04-01/hostedzone/Z123", "DeleteHostedZone"),
            ("POST", "/2013-04-01/hostedzone/Z123/rrset", "ChangeResourceRecordSets"),
            ("POST", "/2013-04-01/hostedzone/Z123/rrset/", "ChangeResourceRecordSets"),
            ("GET", "/2013-04-01/hostedzone/Z123/rrset?name=a.example.com", "ListResourceRecordSets"),
            ("GET", "/2013-04-01/change/C123", "GetChange"),
            ("POST", "/2013-04-01/tags/hostedzone/Z123", "ChangeTagsForResource"),
            ("GET", "/2013-04-01/tags/hostedzone/Z123", "ListTagsForResource"),
        ];
        for (method, target, want) in cases {
            assert_eq!(named(method, target).as_deref(), Some(want), "{method} {target}");
        }
        assert_eq!(action("POST", "/2013-04-01/hostedzone/Z1/rrset", "<x/>").map(|a| a.1), Some(true));
        assert_eq!(named("GET", "/2013-04-01/nothing"), None);
    }

    #[test]
    fn every_table_row_is_reachable_and_unique() {
        for table in [EKS, ROUTE53] {
            for (i, (method, template, action)) in table.iter().enumerate() {
                let sample = template.replace("{}", "x");
                assert_eq!(route(table, method, &sample), Some(*action), "{method} {template}");
                let same = table.iter().skip(i + 1).find(|(m, t, _)| m == method && t == template);
                assert_eq!(same, None, "{method} {template} twice");
            }
        }
    }

    #[test]
    fn reads_are_not_mutating() {
        for read in ["DescribeVpcs", "ListRoles", "GetCallerIdentity", "GetChange", "AssumeRoleWithWebIdentity"] {
            assert!(!is_mutating(read), "{read}");
        }
        for write in ["CreateVpc", "DeleteCluster", "ChangeResourceRecordSets", "TagResource", "PutRolePolicy"] {
            assert!(is_mutating(write), "{write}");
        }
    }

    #[test]
    fn ec2_errors_use_the_ec2_shape() {
        let form = "Action=CreateVpc&Version=2016-11-15";
        let (kind, failure) = body("POST", "/", form, 500);
        assert_eq!(kind, "text/xml;charset=UTF-8");
        assert!(failure.contains("<Response><Errors><Error><Code>InternalError</Code>"), "{failure}");
        assert!(failure.ends_with("<RequestID>fault-proxy</RequestID></Response>"), "{failure}");
        let (_, throttle) = body("POST", "/", form, 429);
        assert!(throttle.contains("<Code>RequestLimitExceeded</Code>"), "{throttle}");
    }

    #[test]
    fn iam_and_sts_errors_use_the_aws_query_shape() {
        for form in ["Action=CreateRole&Version=2010-05-08", "Action=GetCallerIdentity&Version=2011-06-15"] {
            let (kind, failure) = body("POST", "/", form, 500);
            assert_eq!(kind, "text/xml");
            assert!(
                failure.starts_with("<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceFailure</Code>"),
                "{failure}"
            );
            let (_, throttle) = body("POST", "/", form, 429);
            assert!(throttle.contains("<Type>Sender</Type><Code>Throttling</Code>"), "{throttle}");
        }
    }

    #[test]
    fn eks_errors_are_json_with_the_code_in_type() {
        let (kind, failure) = body("POST", "/clusters", "{}", 500);
        assert_eq!(kind, "application/json");
        assert!(failure.starts_with(r#"{"__type":"ServerException","message":""#), "{failure}");
        let (_, throttle) = body("POST", "/clusters", "{}", 429);
        assert!(throttle.starts_with(r#"{"__type":"ThrottlingException""#), "{throttle}");
    }

    #[test]
    fn route53_errors_use_the_rest_xml_shape() {
        let (kind, failure) = body("POST", "/2013-04-01/hostedzone", "<x/>", 500);
        assert_eq!(kind, "text/xml");
        assert!(
            failure.contains(concat!(
                r#"<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">"#,
                "<Error><Type>Receiver</Type><Code>InternalFailure</Code>"
            )),
            "{failure}"
        );
        let (_, throttle) = body("GET", "/2013-04-01/change/C1", "", 429);
        assert!(throttle.contains("<Code>Throttling</Code>"), "{throttle}");
    }
}
