//! IAM reads for `verify`: a role's trust policy (GetRole). Also `seen`, which turns any SDK
//! error into what `verify` reports: missing, denied (with the permission), or failed.

use crate::aws::Aws;
use crate::findings::Seen;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Error codes AWS answers when the caller's policy does not allow the call.
const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedAccess",
];

/// An SDK error as `verify` reports it: `missing` codes mean the thing is not there, a denial
/// names `permission`, anything else is a failed read.
pub(crate) fn seen<T, E, R>(
    err: SdkError<E, R>,
    missing: &[&str],
    permission: &'static str,
) -> Seen<T>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.code() {
        Some(code) if missing.contains(&code) => Seen::Missing,
        Some(code) if DENIED.contains(&code) => Seen::Denied(permission),
        _ => Seen::Failed(DisplayErrorContext(&err).to_string()),
    }
}

/// The role's trust policy document (as IAM returns it: URL-encoded JSON), or why not.
pub(crate) async fn trust_policy(aws: &Aws, role_arn: &str) -> Seen<String> {
    let iam = aws_sdk_iam::Client::new(&aws.sdk);
    let name = crate::findings::role_name(role_arn);
    match iam.get_role().role_name(&name).send().await {
        Ok(out) => Seen::Found(
            out.role()
                .and_then(|r| r.assume_role_policy_document())
                .unwrap_or_default()
                .to_string(),
        ),
        Err(err) => seen(err, &["NoSuchEntity"], "iam:GetRole"),
    }
}
