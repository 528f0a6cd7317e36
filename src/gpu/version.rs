//! NVIDIA driver version numbers (`550.144.03`), compared field by field.

/// A parsed driver version; missing trailing fields count as zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version(Vec<u32>);

impl Version {
    /// Parses `550.144.03` or `570.26`; anything else is `None`.
    pub(crate) fn parse(text: &str) -> Option<Version> {
        let fields: Option<Vec<u32>> = text.trim().split('.').map(|f| f.parse().ok()).collect();
        fields.filter(|f| f.len() >= 2 && f.len() <= 4).map(Version)
    }

    fn field(&self, i: usize) -> u32 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

/// Whether `v` is at least the version written `min`.
pub(crate) fn at_least(v: &Version, min: &str) -> bool {
    let Some(min) = Version::parse(min) else {
        return false;
    };
    let n = v.0.len().max(min.0.len());
    (0..n).map(|i| (v.field(i), min.field(i))).find(|(a, b)| a != b).is_none_or(|(a, b)| a > b)
}

/// Whether `text` looks like a driver version (`550.144.03`).
pub(crate) fn is_version(text: &str) -> bool {
    Version::parse(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_field_by_field() {
        let v = Version::parse("550.144.03").unwrap();
        assert!(at_least(&v, "550.54.14"));
        assert!(at_least(&v, "550.144.03"));
        assert!(!at_least(&v, "550.144.04"));
        assert!(at_least(&Version::parse("570.26").unwrap(), "570.26.0"));
        assert!(!at_least(&Version::parse("570.26").unwrap(), "570.26.1"));
    }

    #[test]
    fn parses_only_versions() {
        assert!(is_version("555.85"));
        assert!(!is_version("1"));
        assert!(!is_version("x86_64"));
        assert!(!is_version("550.a"));
        assert!(!is_version(""));
    }
}
