//! The Docker build context: the files under the context directory that `.dockerignore` lets
//! through, as the tar stream the engine's /build endpoint takes.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// One `.dockerignore` line: a pattern over `/`-separated paths, possibly negated with `!`.
#[derive(Debug, Clone)]
struct Rule {
    parts: Vec<String>,
    exclude: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DockerIgnore(Vec<Rule>);

impl DockerIgnore {
    pub(crate) fn parse(text: &str) -> DockerIgnore {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (exclude, pattern) = match line.strip_prefix('!') {
                    Some(p) => (false, p.trim()),
                    None => (true, line),
                };
                let pattern = pattern
                    .trim_start_matches("./")
                    .trim_start_matches('/')
                    .trim_end_matches('/');
                Rule {
                    parts: pattern
                        .split('/')
                        .filter(|p| !p.is_empty() && *p != ".")
                        .map(String::from)
                        .collect(),
                    exclude,
                }
            })
            .filter(|r| !r.parts.is_empty())
            .collect();
        DockerIgnore(rules)
    }

    /// True when `path` (relative, `/`-separated) is left out of the context. As in Docker, a
    /// pattern that matches a directory covers everything below it, and the last matching rule wins.
    pub(crate) fn excludes(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for rule in &self.0 {
            let hit = (1..=parts.len()).any(|n| matches(&rule.parts, &parts[..n]));
            if hit {
                excluded = rule.exclude;
            }
        }
        excluded
    }
}

/// Component-wise match; `**` spans any number of components.
fn matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((first, rest)) => path
            .split_first()
            .is_some_and(|(p, tail)| glob(first.as_bytes(), p.as_bytes()) && matches(rest, tail)),
    }
}

/// `*` and `?` within one path component.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        (Some((b'?', rest)), Some((_, tail))) => glob(rest, tail),
        (Some((p, rest)), Some((t, tail))) if p == t => glob(rest, tail),
        _ => false,
    }
}

/// The context is a directory and holds the Dockerfile: checked before anything is created or built.
pub(crate) fn check(dir: &Path, dockerfile: &str) -> Result<()> {
    if !dir.is_dir() {
        bail!("build context `{}` is not a directory", dir.display());
    }
    let dockerfile_path = dir.join(dockerfile);
    if !dockerfile_path.is_file() {
        bail!(
            "Dockerfile `{}` not found (context `{}`, --dockerfile `{dockerfile}`)",
            dockerfile_path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The context as an uncompressed tar, the Dockerfile always included (as Docker does).
pub(crate) fn tar(dir: &Path, dockerfile: &str) -> Result<Vec<u8>> {
    check(dir, dockerfile)?;
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text),
        Err(_) => DockerIgnore::default(),
    };
    let mut files = Vec::new();
    walk(dir, PathBuf::new(), &mut files)?;
    let keep = |name: &str| name == dockerfile || name == ".dockerignore";
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for rel in files {
        let name = rel.to_string_lossy().replace('\\', "/");
        if ignore.excludes(&name) && !keep(&name) {
            continue;
        }
        builder
            .append_path_with_name(dir.join(&rel), &rel)
            .with_context(|| format!("failed to add `{name}` to the build context"))?;
    }
    builder
        .into_inner()
        .context("failed to finish the build context tar")
}

/// Every file under `root/rel`; .dockerignore is applied by the caller (a later `!` rule may bring
/// back a file under an ignored directory).
fn walk(root: &Path, rel: PathBuf, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = root.join(&rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("failed to read build context directory `{}`", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = rel.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            // Walk ignored directories too: a later `!` rule may bring a file back.
            walk(root, path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::DockerIgnore;

    #[test]
    fn dockerignore_rules() {
        let ignore = DockerIgnore::parse(
            "# comment\n.git\ntarget/\n*.log\nsecrets/**\n!secrets/public.pem\ndocs/*.md\n**/node_modules\n",
        );
        for (path, excluded) in [
            (".git/config", true),
            ("target/debug/app", true),
            ("app.log", true),
            ("logs/app.log", false),
            ("secrets/key.pem", true),
            ("secrets/public.pem", false),
            ("docs/readme.md", true),
            ("docs/api/x.md", false),
            ("web/node_modules/a.js", true),
            ("src/main.rs", false),
            ("Dockerfile", false),
        ] {
            assert_eq!(ignore.excludes(path), excluded, "{path}");
        }
    }
}
