//! Salesforce record ids: the join key between Salesforce and Zendesk, and the only values that
//! may ever be interpolated into a SOQL string.
//!
//! An id is 15 case-sensitive base-62 characters, or those 15 plus a 3-character checksum that
//! encodes the case of each letter (reference/apis.md B4). [`SalesforceId`] always holds the
//! canonical 18-character form, so two spellings of the same record compare equal and the value
//! is safe to quote in SOQL: it is proven to match `^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$` (SPEC §10).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The characters the checksum maps each 5-bit case mask to.
const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// A validated Salesforce id in its canonical 18-character form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SalesforceId(String);

/// Why a string is not a Salesforce id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SalesforceIdError {
    #[error("Salesforce id {value:?} has {len} characters; it must have 15 or 18")]
    Length { value: String, len: usize },
    #[error(
        "Salesforce id {value:?} has {ch:?} at position {position}; only A-Z, a-z and 0-9 are allowed"
    )]
    Character {
        value: String,
        ch: char,
        position: usize,
    },
    #[error("Salesforce id {value:?} fails its checksum: the suffix should be {expected:?}")]
    Checksum { value: String, expected: String },
}

impl SalesforceId {
    /// Validates `value` (15 or 18 characters, base 62, and for 18 a matching checksum) and
    /// returns the canonical 18-character id. Does not trim: callers trim where SPEC says so.
    pub fn parse(value: &str) -> Result<Self, SalesforceIdError> {
        let len = value.chars().count();
        if len != 15 && len != 18 {
            return Err(SalesforceIdError::Length {
                value: value.to_owned(),
                len,
            });
        }
        if let Some((position, ch)) = value
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii_alphanumeric())
        {
            return Err(SalesforceIdError::Character {
                value: value.to_owned(),
                ch,
                position,
            });
        }
        // All characters are ASCII from here on, so byte slicing is character slicing.
        let (head, suffix) = value.split_at(15);
        let expected = checksum(head);
        if suffix.is_empty() || suffix.eq_ignore_ascii_case(&expected) {
            Ok(Self(format!("{head}{expected}")))
        } else {
            Err(SalesforceIdError::Checksum {
                value: value.to_owned(),
                expected,
            })
        }
    }

    /// The canonical 18-character id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-sensitive 15-character form (Zendesk's `sfdc_short_id`).
    pub fn short(&self) -> &str {
        &self.0[..15]
    }
}

/// The 3-character checksum of a 15-character id: for each 5-character chunk, bit `i` is set
/// when character `i` is an upper-case letter.
fn checksum(head: &str) -> String {
    head.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let mask = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_uppercase())
                .fold(0usize, |mask, (i, _)| mask | (1 << i));
            char::from(CHECKSUM_ALPHABET[mask])
        })
        .collect()
}

impl TryFrom<String> for SalesforceId {
    type Error = SalesforceIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SalesforceId> for String {
    fn from(id: SalesforceId) -> Self {
        id.0
    }
}

impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SalesforceId({})", self.0)
    }
}

impl std::str::FromStr for SalesforceId {
    type Err = SalesforceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Real ids whose checksums were verified against Salesforce (reference/apis.md B4).
    const VERIFIED: &[(&str, &str)] = &[
        ("003RO0000035WQg", "YAM"),
        ("0063l00000l1ZOI", "AA2"),
        ("0013l00002PMMqS", "AAX"),
        ("0011U00000V0tkD", "QAR"),
        ("001D000000IRFma", "IAH"),
    ];

    #[test]
    fn fifteen_character_ids_gain_their_verified_checksum() {
        for (head, suffix) in VERIFIED {
            let id = SalesforceId::parse(head).unwrap();
            assert_eq!(id.as_str(), format!("{head}{suffix}"));
            assert_eq!(id.short(), *head);
        }
    }

    #[test]
    fn eighteen_character_ids_with_a_matching_checksum_are_accepted() {
        for (head, suffix) in VERIFIED {
            let full = format!("{head}{suffix}");
            assert_eq!(SalesforceId::parse(&full).unwrap().as_str(), full);
            // The suffix is case-insensitive; the canonical form uses the upper-case alphabet.
            let lower_suffix = format!("{head}{}", suffix.to_ascii_lowercase());
            assert_eq!(SalesforceId::parse(&lower_suffix).unwrap().as_str(), full);
        }
    }

    #[test]
    fn the_spec_example_id_is_valid() {
        assert!(SalesforceId::parse("0016100001AbCdEAAV").is_ok());
    }

    #[test]
    fn a_wrong_checksum_is_rejected_naming_the_expected_suffix() {
        let err = SalesforceId::parse("003RO0000035WQgAAA").unwrap_err();
        assert_eq!(
            err,
            SalesforceIdError::Checksum {
                value: "003RO0000035WQgAAA".into(),
                expected: "YAM".into()
            }
        );
        assert!(err.to_string().contains("YAM"));
    }

    #[test]
    fn other_lengths_and_characters_are_rejected() {
        for bad in [
            "",
            "001",
            "0011U00000V0tkDQ",
            "0011U00000V0tkDQARX",
            "0011U00000V0tkDQARXYZ",
        ] {
            assert!(
                matches!(
                    SalesforceId::parse(bad),
                    Err(SalesforceIdError::Length { .. })
                ),
                "{bad:?}"
            );
        }
        for bad in [
            "0011U00000V0tk'",
            "0011U00000V0tk ",
            " 011U00000V0tkD",
            "0011U00000V0tkDQA;",
            "0011U0000-V0tkD",
            "0011U00000V0tkÄ",
        ] {
            assert!(
                matches!(
                    SalesforceId::parse(bad),
                    Err(SalesforceIdError::Character { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serde_validates_on_read() {
        let ok: SalesforceId = serde_json::from_str("\"0011U00000V0tkD\"").unwrap();
        assert_eq!(ok.as_str(), "0011U00000V0tkDQAR");
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            "\"0011U00000V0tkDQAR\""
        );
        assert!(serde_json::from_str::<SalesforceId>("\"x' OR Name != '\"").is_err());
    }

    proptest! {
        /// Whatever string comes in, an accepted id is exactly the SOQL-safe shape of SPEC §10.
        #[test]
        fn accepted_ids_are_always_soql_safe(s in "\\PC{0,20}") {
            if let Ok(id) = SalesforceId::parse(&s) {
                prop_assert_eq!(id.as_str().len(), 18);
                prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
            }
        }

        #[test]
        fn every_fifteen_character_id_round_trips_through_its_eighteen_form(s in "[A-Za-z0-9]{15}") {
            let id = SalesforceId::parse(&s).unwrap();
            prop_assert_eq!(id.short(), s.as_str());
            prop_assert_eq!(SalesforceId::parse(id.as_str()).unwrap(), id);
        }
    }
}
