//! One SdkConfig from the standard credential chain, and the concrete SDK clients built from it.
//!
//! AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> are honoured by aws-config itself; that is how
//! the lab and LocalStack users point deployer elsewhere.

pub(crate) mod codedeploy;
pub(crate) mod ecr;
pub(crate) mod ecs;
pub(crate) mod elb;
pub(crate) mod iam;
pub(crate) mod logs;
pub(crate) mod pace;
pub(crate) mod reads;
pub(crate) mod secrets;
pub(crate) mod wire;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// How long one attempt of an AWS call may go unanswered before it is abandoned and retried.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one AWS call may take in all, retries included.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct Aws {
    pub(crate) sdk: SdkConfig,
    pub(crate) ecr: aws_sdk_ecr::Client,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) ecs: aws_sdk_ecs::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) codedeploy: aws_sdk_codedeploy::Client,
}

impl Aws {
    pub(crate) async fn load() -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        // A deploy is worth more patience than one API call: ride out throttling storms (many
        // pipelines deploying at once) with up to 8 attempts. AWS_MAX_ATTEMPTS still wins when set.
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() {
            loader = loader.retry_config(
                RetryConfig::standard()
                    .with_max_attempts(8)
                    .with_max_backoff(Duration::from_secs(10)),
            );
        }
        // No AWS call may hang the run: an attempt that has not answered in 10 s is abandoned (and
        // retried), and the call as a whole, retries included, gives up after 60 s. The watch's
        // deadline and the signal still race every look; these bound what they cannot reach
        // (pre-flight, the rollback and its reads).
        loader = loader.timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(3100))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
        let sdk = loader.load().await;
        Aws {
            ecr: aws_sdk_ecr::Client::new(&sdk),
            ec2: aws_sdk_ec2::Client::new(&sdk),
            ecs: aws_sdk_ecs::Client::new(&sdk),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            codedeploy: aws_sdk_codedeploy::Client::new(&sdk),
            sdk,
        }
    }

    /// A CloudWatch Logs client for the region a container's awslogs driver writes to.
    pub(crate) fn logs(&self, region: Option<&str>) -> aws_sdk_cloudwatchlogs::Client {
        let mut config = aws_sdk_cloudwatchlogs::config::Builder::from(&self.sdk);
        if let Some(region) = region {
            config = config.region(aws_config::Region::new(region.to_string()));
        }
        aws_sdk_cloudwatchlogs::Client::from_conf(config.build())
    }
}
