//! Release versions `X.Y.Z`, compared numerically so `0.10.0` is newer than `0.9.9`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A release version. Ordering is numeric by (major, minor, patch); no pre-release
/// tags, because a bundle either is a release or is not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version {input:?} is not of the form X.Y.Z (decimal numbers)")]
pub struct VersionError {
    pub input: String,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self { major, minor, patch }
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionError { input: s.to_owned() };
        let mut parts = s.split('.');
        let mut next = || -> Result<u64, VersionError> {
            let p = parts.next().ok_or_else(err)?;
            // `u64::from_str` accepts a leading '+', which would make "+1.0.0" and
            // "1.0.0" two spellings of one version; only plain digits are allowed.
            if p.is_empty() || p.len() > 19 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            p.parse().map_err(|_| err())
        };
        let v = Version { major: next()?, minor: next()?, patch: next()? };
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(v)
    }
}

impl TryFrom<String> for Version {
    type Error = VersionError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.to_string()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_orders_numerically() {
        let a: Version = "0.9.9".parse().unwrap();
        let b: Version = "0.10.0".parse().unwrap();
        assert!(b > a);
        assert_eq!(b.to_string(), "0.10.0");
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "1", "1.2", "1.2.3.4", "1..3", "a.b.c", "+1.2.3", "1.2.-3", " 1.2.3", "1.2.3-rc1"] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn serde_is_a_string() {
        let v = Version::new(1, 2, 3);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"1.2.3\"");
        assert!(serde_json::from_str::<Version>("\"1.2\"").is_err());
    }

    proptest! {
        #[test]
        fn ordering_matches_tuples(a in any::<(u32, u32, u32)>(), b in any::<(u32, u32, u32)>()) {
            let va = Version::new(a.0.into(), a.1.into(), a.2.into());
            let vb = Version::new(b.0.into(), b.1.into(), b.2.into());
            prop_assert_eq!(va.cmp(&vb), a.cmp(&b));
            let round: Version = va.to_string().parse().unwrap();
            prop_assert_eq!(round, va);
        }
    }
}
