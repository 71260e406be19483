//! Salesforce ids that pass the 15→18 checksum (apis.md B4).

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
/// 62^5: the number of distinct 5-character tails.
const TAILS: u64 = 916_132_832;
/// Coprime with 62^5, so multiplying by it permutes the tails: ids look scattered (and use
/// both letter cases, which the checksum encodes) yet never collide.
const SCATTER: u64 = 387_420_489;

/// Hands out ids with a key prefix (`001` Account, `003` Contact, …). One sequence serves
/// every prefix, so a subscription never shares its account's tail.
#[derive(Default)]
pub(crate) struct IdFactory {
    issued: u64,
}

impl IdFactory {
    pub(crate) fn next(&mut self, prefix: &'static str) -> String {
        self.issued += 1;
        let mut tail = (self.issued * SCATTER) % TAILS;
        let mut chars = [b'0'; 5];
        for slot in chars.iter_mut().rev() {
            *slot = BASE62[(tail % 62) as usize];
            tail /= 62;
        }
        let short = format!(
            "{prefix}4M00001{}",
            std::str::from_utf8(&chars).expect("ascii")
        );
        with_checksum(&short)
    }
}

pub(crate) fn with_checksum(short: &str) -> String {
    let suffix: String = short
        .as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            CHECKSUM_ALPHABET[bits] as char
        })
        .collect();
    format!("{short}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_known_salesforce_ids() {
        for (short, full) in [
            ("003RO0000035WQg", "003RO0000035WQgYAM"),
            ("0063l00000l1ZOI", "0063l00000l1ZOIAA2"),
            ("0013l00002PMMqS", "0013l00002PMMqSAAX"),
            ("0011U00000V0tkD", "0011U00000V0tkDQAR"),
            ("001D000000IRFma", "001D000000IRFmaIAH"),
        ] {
            assert_eq!(with_checksum(short), full);
        }
    }

    #[test]
    fn ids_are_unique_and_keep_their_prefix() {
        let mut factory = IdFactory::default();
        let ids: Vec<String> = (0..2000).map(|_| factory.next("001")).collect();
        let unique: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids.iter().all(|id| id.len() == 18 && id.starts_with("001")));
        assert!(factory.next("003").starts_with("003"));
    }
}
