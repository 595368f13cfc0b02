//! The SDK clients, built from the standard AWS configuration chain, with adaptive retries and an
//! interceptor that counts every HTTP request by `service:Operation`.
//!
//! Credentials come from the SDK's default chain (environment, profile, SSO, web identity); this
//! module never reads, stores or logs them. `AWS_ENDPOINT_URL` (honoured by the SDK) points every
//! service at an emulator such as moto.

use std::sync::{Arc, Mutex};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use matih_plans::ApiCalls;

/// Counts requests sent (retries included: each is a real call).
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<ApiCalls>>);

impl CallCounter {
    pub fn snapshot(&self) -> ApiCalls {
        self.0.lock().unwrap().clone()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "matih-call-counter"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = match cfg.load::<Metadata>() {
            Some(m) => format!("{}:{}", m.service(), m.name()),
            None => "unknown".to_string(),
        };
        *self.0.lock().unwrap().entry(key).or_default() += 1;
        Ok(())
    }
}

/// One client per AWS service the provider uses.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub eks: aws_sdk_eks::Client,
    pub iam: aws_sdk_iam::Client,
    pub route53: aws_sdk_route53::Client,
    pub region: String,
    pub calls: CallCounter,
    /// The default chain's credentials, for signing tokens (never stored or logged).
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

impl Clients {
    /// Loads the shared configuration for `region` and builds the clients.
    pub async fn load(region: &str) -> Self {
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .retry_config(RetryConfig::adaptive().with_max_attempts(6))
            .load()
            .await;
        let calls = CallCounter::default();
        Clients {
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&conf).interceptor(calls.clone()).build(),
            ),
            eks: aws_sdk_eks::Client::from_conf(
                aws_sdk_eks::config::Builder::from(&conf).interceptor(calls.clone()).build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&conf).interceptor(calls.clone()).build(),
            ),
            route53: aws_sdk_route53::Client::from_conf(
                aws_sdk_route53::config::Builder::from(&conf).interceptor(calls.clone()).build(),
            ),
            region: region.to_string(),
            calls,
            credentials: conf.credentials_provider(),
        }
    }
}
