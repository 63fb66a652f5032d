//! The pull request on GitHub: one sticky comment per service and environment. (Placeholder
//! until the GitHub client lands; see publish.rs.)

use crate::output::Output;
use crate::report::Report;

pub(crate) async fn publish(
    _report: &Report,
    _environment: &str,
    _run_url: Option<&str>,
    _out: &Output,
) {
}
