//! The site code: a clinic's short, unique name, carried by human-facing numbers
//! (medical record numbers) so that two offline clinics never mint the same one.

use std::fmt;

use crate::DomainError;

/// 2 to 12 characters, upper-case ASCII letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SiteCode(String);

impl SiteCode {
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim().to_ascii_uppercase();
        let ok_len = (2..=12).contains(&s.len());
        if !ok_len
            || !s
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(DomainError::invalid(
                "site",
                "a site code is 2 to 12 letters or digits",
            ));
        }
        Ok(SiteCode(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The medical record number for the `seq`-th patient registered at this site.
    pub fn mrn(&self, seq: u64) -> String {
        format!("{}-{seq:06}", self.0)
    }

    /// A medical record number minted at the hub for this site: from 900000000001
    /// on, a range no node's counter reaches, so the hub and the site's nodes never
    /// mint the same number offline.
    pub fn hub_mrn(&self, seq: u64) -> String {
        self.mrn(HUB_MRN_BASE + seq)
    }
}

/// Where the hub's medical record numbers start (see [`SiteCode::hub_mrn`]).
pub const HUB_MRN_BASE: u64 = 900_000_000_000;

impl fmt::Display for SiteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_codes() {
        for (input, expected) in [
            ("dev", Some("DEV")),
            (" nbo1 ", Some("NBO1")),
            ("x", None),
            ("TOO-LONG", None),
            ("ABCDEFGHIJKLM", None),
            ("", None),
        ] {
            assert_eq!(
                SiteCode::parse(input).ok().map(|s| s.0),
                expected.map(String::from),
                "{input:?}"
            );
        }
        let site = SiteCode::parse("NBO").expect("valid");
        assert_eq!(site.mrn(42), "NBO-000042");
    }
}
