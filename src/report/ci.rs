//! The CI a run is in, read from its environment: variables (an empty one counts as unset), the
//! environment name reports use, and the link to the GitHub Actions run.

use std::time::Duration;

/// How long a GitHub or GitLab connection may take to open, and a response may go unread.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A CI variable, treating empty as unset (CI systems often pass empty inputs).
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The environment named in the comment marker and the GitHub deployment.
pub(crate) fn environment() -> String {
    env("DEPLOYER_ENVIRONMENT").unwrap_or_else(|| "default".to_string())
}

/// The GitHub Actions run's page, when the runner says where it is.
pub(crate) fn run_url() -> Option<String> {
    Some(format!(
        "{}/{}/actions/runs/{}",
        env("GITHUB_SERVER_URL")?,
        env("GITHUB_REPOSITORY")?,
        env("GITHUB_RUN_ID")?
    ))
}
