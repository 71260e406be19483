//! Salesforce-shaped ids for things the emulator mints (query cursors): 15 base-62
//! characters plus the 3-character case checksum (reference/apis.md B4), so they look and
//! validate like the real ones.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The 18-character id number `serial` of the object with key prefix `prefix` (3 chars).
pub fn mint(prefix: &str, serial: u64) -> String {
    let mut digits = [b'0'; 12];
    let mut rest = serial;
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(rest % 62) as usize];
        rest /= 62;
    }
    let head = format!("{prefix}{}", String::from_utf8_lossy(&digits));
    let suffix: String = head
        .as_bytes()
        .chunks(5)
        .map(|chunk| {
            let mask = chunk
                .iter()
                .enumerate()
                .filter(|(_, b)| b.is_ascii_uppercase())
                .fold(0usize, |mask, (i, _)| mask | (1 << i));
            char::from(CHECKSUM_ALPHABET[mask])
        })
        .collect();
    format!("{head}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_carry_the_case_checksum() {
        assert_eq!(mint("01g", 0), "01g000000000000AAA");
        assert_eq!(mint("01g", 61), "01g00000000000zAAA");
        assert_eq!(mint("01g", 10), "01g00000000000AAAQ");
        assert_eq!(mint("01g", 62), "01g000000000010AAA");
    }
}
