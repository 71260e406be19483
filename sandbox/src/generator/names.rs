//! Made-up company and person names.

use std::collections::{HashMap, HashSet};

use rand::RngExt;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

const ADJECTIVES: &[&str] = &[
    "Blue",
    "Northern",
    "Silver",
    "Rapid",
    "Granite",
    "Bright",
    "Quiet",
    "Golden",
    "Iron",
    "Coastal",
    "Summit",
    "Crimson",
    "Evergreen",
    "Polar",
    "Urban",
    "Prairie",
    "Harbor",
    "Atlas",
    "Cobalt",
    "Maple",
    "Sterling",
    "Vivid",
    "Lunar",
    "Solar",
    "Clear",
    "Pioneer",
    "Keystone",
    "Redwood",
    "Falcon",
    "Meridian",
];
const NOUNS: &[&str] = &[
    "Harbor", "Ridge", "Forge", "Signal", "Orchard", "Circuit", "Beacon", "Canyon", "Vector",
    "Lattice", "Anchor", "Prism", "Compass", "Harvest", "Bridge", "Quarry", "Summit", "Current",
    "Pixel", "Engine", "Grove", "Ledger", "Harbour", "Falls", "Matrix", "Cloud", "Delta", "Stone",
    "Works", "Wave",
];
const SUFFIXES: &[&str] = &[
    "Systems",
    "Labs",
    "Inc.",
    "Group",
    "Technologies",
    "Holdings",
    "GmbH",
    "Ltd",
    "Solutions",
    "Software",
    "Corp.",
    "Partners",
];
const FIRST_NAMES: &[&str] = &[
    "Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn",
    "Robin", "Drew", "Kim", "Lee", "Noor", "Ana", "Luca", "Mei", "Omar", "Priya", "Sofia", "Tomas",
    "Yuki", "Zara",
];
const LAST_NAMES: &[&str] = &[
    "Garcia", "Smith", "Nguyen", "Okafor", "Schmidt", "Rossi", "Tanaka", "Kowalski", "Haddad",
    "Silva", "Novak", "Larsen", "Murphy", "Dubois", "Chen", "Patel", "Cohen", "Ivanova", "Moreau",
    "Fischer",
];

/// Fresh word combinations tried before a name gets a number: the word lists make about
/// 10 800 names, so small worlds read naturally and big ones never run out.
const FRESH_TRIES: usize = 16;

/// Hands out company names that are unique unless a duplicate is asked for.
#[derive(Default)]
pub(crate) struct NameBook {
    companies: HashSet<String>,
    /// Per word combination, the last number given to it (`Blue Harbor Systems 2`, `… 3`).
    numbered: HashMap<String, u32>,
}

impl NameBook {
    pub(crate) fn company(&mut self, rng: &mut ChaCha8Rng) -> String {
        let mut name = String::new();
        for _ in 0..FRESH_TRIES {
            name = format!(
                "{} {} {}",
                pick(rng, ADJECTIVES),
                pick(rng, NOUNS),
                pick(rng, SUFFIXES)
            );
            if self.companies.insert(name.clone()) {
                return name;
            }
        }
        // Taken: the next free number for this combination (a number can itself be taken by a
        // literal name only if the word lists held digits, which they do not).
        let n = self.numbered.entry(name.clone()).or_insert(1);
        loop {
            *n += 1;
            let numbered = format!("{name} {n}");
            if self.companies.insert(numbered.clone()) {
                return numbered;
            }
        }
    }
}

pub(crate) fn person(rng: &mut ChaCha8Rng) -> String {
    format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES))
}

/// `Blue Harbor Systems` → `blueharborsystems.example.com`.
pub(crate) fn domain(company: &str) -> String {
    let slug: String = company
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("{slug}.example.com")
}

/// `Sam Novak` at `domain` → `sam.novak@domain`, with a number to keep it unique.
pub(crate) fn email(person: &str, domain: &str, rng: &mut ChaCha8Rng) -> String {
    let local = person.to_lowercase().replace(' ', ".");
    format!("{local}{}@{domain}", rng.random_range(1..1000))
}

fn pick<'a>(rng: &mut ChaCha8Rng, options: &[&'a str]) -> &'a str {
    options.choose(rng).expect("non-empty word list")
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn names_stay_unique_far_beyond_the_word_lists() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut book = NameBook::default();
        let names: HashSet<String> = (0..50_000).map(|_| book.company(&mut rng)).collect();
        assert_eq!(names.len(), 50_000);
        assert!(
            names.iter().any(|n| n.ends_with(" 2")),
            "numbered once the words run out"
        );
    }
}
