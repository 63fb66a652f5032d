//! The commit being shipped: its SHA, branch, repository URL and CI run number, and the image
//! tags rendered from them (`{sha}`, `{branch}-{sha}`, `{run_number}`).

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Commit {
    pub(crate) sha: String,
    pub(crate) branch: Option<String>,
    pub(crate) repository_url: Option<String>,
    pub(crate) run_number: Option<String>,
}

impl Commit {
    /// Reads git in `dir`; CI variables (GitHub Actions, GitLab CI) win where git cannot know.
    pub(crate) fn read(dir: &Path) -> Result<Commit> {
        let git = |args: &[&str]| -> Option<String> {
            let out = Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(args)
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let sha = env("GITHUB_SHA").or_else(|| env("CI_COMMIT_SHA")).or_else(|| git(&["rev-parse", "HEAD"])).with_context(|| {
            format!("failed to find the commit to tag the image with: `{}` is not in a git repository (or pass --image to deploy a prebuilt image)", dir.display())
        })?;
        let branch = env("GITHUB_HEAD_REF")
            .or_else(|| env("GITHUB_REF_NAME"))
            .or_else(|| env("CI_COMMIT_REF_NAME"))
            .or_else(|| git(&["rev-parse", "--abbrev-ref", "HEAD"]).filter(|b| b != "HEAD"));
        let repository_url = match (env("GITHUB_SERVER_URL"), env("GITHUB_REPOSITORY")) {
            (Some(server), Some(repo)) => Some(format!("{server}/{repo}")),
            _ => env("CI_PROJECT_URL")
                .or_else(|| git(&["remote", "get-url", "origin"]).map(|u| https_url(&u))),
        };
        let run_number = env("GITHUB_RUN_NUMBER").or_else(|| env("CI_PIPELINE_IID"));
        Ok(Commit {
            sha,
            branch,
            repository_url,
            run_number,
        })
    }

    /// Renders one tag template. Unknown placeholders and missing values are errors, not blanks.
    pub(crate) fn tag(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find('}') else {
                bail!("invalid tag template `{template}`: `{{` without `}}`");
            };
            let name = &rest[start + 1..start + end];
            let value = match name {
                "sha" => self.sha.chars().take(12).collect(),
                "full_sha" => self.sha.clone(),
                "branch" => self.branch.clone().with_context(|| format!("tag template `{template}` needs {{branch}}, but the branch is unknown (detached HEAD outside CI)"))?,
                "run_number" => self.run_number.clone().with_context(|| format!("tag template `{template}` needs {{run_number}}: set in GitHub Actions (GITHUB_RUN_NUMBER) and GitLab CI (CI_PIPELINE_IID) only"))?,
                other => bail!("invalid tag template `{template}`: unknown placeholder `{{{other}}}`; known: {{sha}}, {{full_sha}}, {{branch}}, {{run_number}}"),
            };
            out.push_str(&value);
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(sanitize_tag(&out))
    }
}

/// Docker tags allow [A-Za-z0-9_.-], 128 at most, not starting with `.` or `-`: `feature/x` → `feature-x`.
fn sanitize_tag(tag: &str) -> String {
    let mut clean: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    while clean.starts_with(['.', '-']) {
        clean.remove(0);
    }
    clean.chars().take(128).collect()
}

/// `git@github.com:org/repo.git` → `https://github.com/org/repo`.
fn https_url(remote: &str) -> String {
    let trimmed = remote.trim_end_matches(".git");
    match trimmed.strip_prefix("git@") {
        Some(rest) => format!("https://{}", rest.replacen(':', "/", 1)),
        None => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_templates() {
        let commit = Commit {
            sha: "0123456789abcdef0123".into(),
            branch: Some("feature/login".into()),
            repository_url: None,
            run_number: Some("42".into()),
        };
        for (template, expected) in [
            ("{sha}", "0123456789ab"),
            ("{branch}-{sha}", "feature-login-0123456789ab"),
            ("build-{run_number}", "build-42"),
            ("{full_sha}", "0123456789abcdef0123"),
            ("latest", "latest"),
        ] {
            assert_eq!(commit.tag(template).unwrap(), expected, "{template}");
        }
        assert!(
            commit
                .tag("{nope}")
                .unwrap_err()
                .to_string()
                .contains("unknown placeholder `{nope}`")
        );
        assert!(commit.tag("{sha").is_err());
        let bare = Commit {
            sha: "abc".into(),
            ..Default::default()
        };
        assert!(
            bare.tag("{branch}")
                .unwrap_err()
                .to_string()
                .contains("branch is unknown")
        );
        assert!(bare.tag("{run_number}").is_err());
    }

    #[test]
    fn remotes_become_https() {
        assert_eq!(
            https_url("git@github.com:org/app.git"),
            "https://github.com/org/app"
        );
        assert_eq!(
            https_url("https://gitlab.com/org/app.git"),
            "https://gitlab.com/org/app"
        );
    }
}
