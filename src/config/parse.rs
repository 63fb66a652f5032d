//! The values of single flags, parsed with the flag named in the error: images, environment
//! variables, commands and durations.

use crate::image_ref::ImageRef;
use crate::target::{EnvChange, ImageChange};
use anyhow::{Context, Result, bail};
use std::time::Duration;

/// `--image web=REF` or `--image REF`.
pub(crate) fn parse_image_change(text: &str) -> Result<ImageChange> {
    let (container, reference) = match text.split_once('=') {
        Some((container, reference)) => {
            check_container_name(container).with_context(|| format!("invalid --image `{text}`"))?;
            (Some(container.to_string()), reference)
        }
        None => (None, text),
    };
    let image = ImageRef::parse(reference).with_context(|| format!("invalid --image `{text}`"))?;
    Ok(ImageChange { container, image })
}

/// `--env web:KEY=VALUE` or `--env KEY=VALUE`.
pub(crate) fn parse_env_change(text: &str) -> Result<EnvChange> {
    let Some((left, value)) = text.split_once('=') else {
        bail!("invalid --env `{text}`: expected CONTAINER:KEY=VALUE");
    };
    let (container, key) = match left.split_once(':') {
        Some((container, key)) => {
            check_container_name(container).with_context(|| format!("invalid --env `{text}`"))?;
            (Some(container.to_string()), key)
        }
        None => (None, left),
    };
    if key.is_empty() || key.chars().any(|c| c.is_whitespace()) {
        bail!("invalid --env `{text}`: the variable name must be non-empty and without spaces");
    }
    Ok(EnvChange {
        container,
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// `./manage migrate --noinput` (split on whitespace) or `["sh", "-c", "x && y"]` (JSON).
pub(crate) fn parse_command(text: &str) -> Result<Vec<String>> {
    let text = text.trim();
    let words: Vec<String> = if text.starts_with('[') {
        serde_json::from_str(text)
            .with_context(|| format!("`{text}` is not a JSON array of strings"))?
    } else {
        text.split_whitespace().map(String::from).collect()
    };
    if words.is_empty() || words[0].is_empty() {
        bail!("the command is empty");
    }
    Ok(words)
}

pub(crate) fn check_container_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 255
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("container name `{name}` must be 1-255 letters, digits, hyphens or underscores");
    }
    Ok(())
}

/// `15m`, `90s`, `1h30m`, `500ms`.
/// The longest duration accepted (a week): longer is a typo, and a deadline that far away would
/// overflow the clock's arithmetic.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(168 * 3600);

pub(crate) fn parse_duration(text: &str) -> Result<Duration> {
    let expected = "expected a duration such as 15m, 90s, 1h30m or 500ms";
    let longest = format!("at most {} hours", MAX_DURATION.as_secs() / 3600);
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        bail!("invalid duration `{text}`: {expected}");
    }
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            bail!("invalid duration `{text}`: {expected}");
        }
        let too_long = || anyhow::anyhow!("invalid duration `{text}`: {longest}");
        // Too many digits for a u64 is too long, not malformed: the text is all digits.
        let number: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "s" => Some(Duration::from_secs(number)),
            "ms" => Some(Duration::from_millis(number)),
            _ => bail!("invalid duration `{text}`: {expected}"),
        };
        total = part
            .and_then(|part| total.checked_add(part))
            .filter(|total| *total <= MAX_DURATION)
            .ok_or_else(too_long)?;
    }
    if total.is_zero() {
        bail!("invalid duration `{text}`: must be longer than zero");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, secs) in [
            ("15m", 900.0),
            ("90s", 90.0),
            ("1h30m", 5400.0),
            ("500ms", 0.5),
            ("2m5s", 125.0),
            ("168h", 604_800.0),
            ("167h60m", 604_800.0),
        ] {
            assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs, "{text}");
        }
        for bad in ["", "15", "m", "15x", "1.5m", "0s", "-1m", "15 m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        // Too long is refused with the limit, never a panic (u64 overflow, Instant overflow).
        for long in [
            "9999999999999999999s",
            "99999999999999999999s",
            "5124095576030432h",
            "18446744073709551615ms",
            "168h1s",
            "169h",
            "100000h100000h",
        ] {
            let err = parse_duration(long).expect_err(long).to_string();
            assert!(err.contains("at most 168 hours"), "{long}: {err}");
        }
    }

    #[test]
    fn image_and_env_flags() {
        let c = parse_image_change("web=registry.lab/app:v2").unwrap();
        assert_eq!(c.container.as_deref(), Some("web"));
        assert_eq!(c.image.0, "registry.lab/app:v2");
        assert!(
            parse_image_change("registry.lab/app:v2")
                .unwrap()
                .container
                .is_none()
        );
        assert!(parse_image_change("we b=app").is_err());
        assert!(parse_image_change("web=App:1").is_err());
        let e = parse_env_change("web:GREETING=hi=there").unwrap();
        assert_eq!(
            (e.container.as_deref(), e.key.as_str(), e.value.as_str()),
            (Some("web"), "GREETING", "hi=there")
        );
        assert!(parse_env_change("web:GREETING").is_err());
        assert!(parse_env_change("web:=x").is_err());
    }
}
