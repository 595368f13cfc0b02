//! The SDK clients, built from the standard AWS configuration chain, with the SDK's own retries
//! switched off (the kit's retry helper is the only retry loop: it knows which calls may be
//! repeated) and an interceptor that counts every HTTP request by `service:Operation` in the
//! kit's [`Recorder`].
//!
//! Credentials come from the SDK's default chain (environment, profile, SSO, web identity); this
//! module never reads, stores or logs them. `AWS_ENDPOINT_URL` (honoured by the SDK) points every
//! service at an emulator such as moto.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use matih_provider_kit::Recorder;

/// Counts requests sent (each attempt is a real call).
#[derive(Debug, Clone)]
struct CallCounter(Recorder);

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
        match cfg.load::<Metadata>() {
            Some(m) => self.0.call(m.service(), m.name()),
            None => self.0.call("unknown", "unknown"),
        }
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
    pub recorder: Recorder,
    /// The default chain's credentials, for signing tokens (never stored or logged).
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
}

impl Clients {
    /// Loads the shared configuration for `region` and builds the clients.
    pub async fn load(region: &str, recorder: Recorder) -> Self {
        let conf = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .retry_config(RetryConfig::disabled())
            // A request that gets no answer must fail, so that the create path can look for what
            // it may have made; the SDK sets no read timeout by default.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .read_timeout(Duration::from_secs(60))
                    .build(),
            )
            .load()
            .await;
        let calls = CallCounter(recorder.clone());
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
                aws_sdk_route53::config::Builder::from(&conf).interceptor(calls).build(),
            ),
            region: region.to_string(),
            recorder,
            credentials: conf.credentials_provider(),
        }
    }
}
