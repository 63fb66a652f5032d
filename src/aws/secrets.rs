//! Whether a task's secrets exist, by name only: Secrets Manager DescribeSecret and SSM
//! DescribeParameters return metadata, never a value. deployer never calls GetSecretValue or
//! GetParameter.

use crate::aws::Aws;
use crate::aws::iam::seen;
use crate::findings::{SecretRef, Seen};
use aws_sdk_ssm::types::ParameterStringFilter;

pub(crate) async fn exists(aws: &Aws, secret: &SecretRef) -> Seen<()> {
    match secret {
        SecretRef::Secret { region, id } => {
            let mut config = aws_sdk_secretsmanager::config::Builder::from(&aws.sdk);
            if let Some(region) = region {
                config = config.region(aws_config::Region::new(region.clone()));
            }
            let client = aws_sdk_secretsmanager::Client::from_conf(config.build());
            match client.describe_secret().secret_id(id).send().await {
                Ok(_) => Seen::Found(()),
                Err(err) => seen(
                    err,
                    &["ResourceNotFoundException"],
                    "secretsmanager:DescribeSecret",
                ),
            }
        }
        SecretRef::Parameter { region, name } => {
            let mut config = aws_sdk_ssm::config::Builder::from(&aws.sdk);
            if let Some(region) = region {
                config = config.region(aws_config::Region::new(region.clone()));
            }
            let client = aws_sdk_ssm::Client::from_conf(config.build());
            let filter = ParameterStringFilter::builder()
                .key("Name")
                .option("Equals")
                .values(name)
                .build();
            let filter = match filter {
                Ok(filter) => filter,
                Err(err) => return Seen::Failed(err.to_string()),
            };
            match client
                .describe_parameters()
                .parameter_filters(filter)
                .send()
                .await
            {
                Ok(out) if out.parameters().iter().any(|p| p.name() == Some(name)) => {
                    Seen::Found(())
                }
                Ok(_) => Seen::Missing,
                Err(err) => seen(err, &["ParameterNotFound"], "ssm:DescribeParameters"),
            }
        }
    }
}
