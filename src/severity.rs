//! ECR scan finding severities, lowest first: `--max-severity` is an index into them.

use anyhow::{Context, Result};

pub(crate) const SEVERITIES: &[&str] = &["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"];

pub(crate) fn parse_severity(text: &str) -> Result<usize> {
    let upper = text.to_ascii_uppercase();
    SEVERITIES
        .iter()
        .position(|s| *s == upper)
        .with_context(|| {
            format!(
                "invalid --max-severity `{text}`: expected one of {}",
                SEVERITIES.join(", ")
            )
        })
}

/// The rank of a severity as ECR names it (unknown names rank above CRITICAL: they block).
pub(crate) fn rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| *s == severity)
        .unwrap_or(SEVERITIES.len())
}
