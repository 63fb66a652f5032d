//! Container image references (`[registry/]repository[:tag][@sha256:…]`), validated before any AWS call.

use anyhow::{Result, bail};

/// A syntactically valid image reference, kept as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef(pub(crate) String);

impl ImageRef {
    pub(crate) fn parse(text: &str) -> Result<ImageRef> {
        let expected = "expected [registry/]repository[:tag][@sha256:<64 hex digits>], e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2";
        if text.is_empty() || text.len() > 512 || text.chars().any(char::is_whitespace) {
            bail!("invalid image reference `{text}`: {expected}");
        }
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (text, None),
        };
        if let Some(digest) = digest {
            let ok = digest.strip_prefix("sha256:").is_some_and(|hex| {
                hex.len() == 64
                    && hex
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            });
            if !ok {
                bail!(
                    "invalid image reference `{text}`: the digest must be sha256:<64 lowercase hex digits>"
                );
            }
        }
        // A tag follows the last ':' after the last '/' (a ':' before it belongs to a registry port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                bail!(
                    "invalid image reference `{text}`: tag `{tag}` must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"
                );
            }
        }
        let mut components: Vec<&str> = path.split('/').collect();
        let first = components[0];
        if components.len() > 1
            && (first.contains('.') || first.contains(':') || first == "localhost")
        {
            let host_ok = first
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
            if !host_ok {
                bail!("invalid image reference `{text}`: registry `{first}` is not a host name");
            }
            components.remove(0);
        }
        for component in &components {
            let valid = !component.is_empty()
                && component
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && component
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
                && component
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_ascii_alphanumeric());
            if !valid {
                bail!(
                    "invalid image reference `{text}`: repository part `{component}` must be lowercase letters, digits and . _ - (starting and ending with a letter or digit)"
                );
            }
        }
        Ok(ImageRef(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::ImageRef;

    #[track_caller]
    fn case(text: &str, valid: bool) {
        assert_eq!(ImageRef::parse(text).is_ok(), valid, "{text}");
    }

    #[test]
    fn references() {
        case("nginx", true);
        case("nginx:1.27", true);
        case("library/nginx:latest", true);
        case(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:abc123def456",
            true,
        );
        case("localhost:5000/app", true);
        case("registry.lab/app:v1", true);
        case(
            "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            true,
        );
        case(
            "ghcr.io/org/app:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            true,
        );
        case("", false);
        case("Web:1", false);
        case("web:", false);
        case("web:-x", false);
        case("web app", false);
        case("web@sha256:123", false);
        case("web@md5:0123456789abcdef0123456789abcdef", false);
        case("web//x", false);
        case("-web", false);
        case("web:tag:tag", false);
    }
}
