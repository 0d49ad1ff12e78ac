//! Detection of personal data and secrets in text, by hand-written scanners rather than
//! regexes: one pass per kind over the places words start, with checksums (Luhn, IBAN mod-97,
//! SSN number ranges) so that random digit runs are not taken for card numbers or account
//! numbers.

use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Category {
    Email,
    Phone,
    CreditCard,
    Iban,
    Ssn,
    IpAddress,
    Secret,
}

impl Category {
    pub(super) const ALL: [Category; 7] = [
        Category::Email,
        Category::Phone,
        Category::CreditCard,
        Category::Iban,
        Category::Ssn,
        Category::IpAddress,
        Category::Secret,
    ];

    /// The name in `categories` and in the placeholder that replaces a finding.
    pub(super) fn name(self) -> &'static str {
        match self {
            Category::Email => "EMAIL_ADDRESS",
            Category::Phone => "PHONE_NUMBER",
            Category::CreditCard => "CREDIT_CARD",
            Category::Iban => "IBAN_CODE",
            Category::Ssn => "SSN",
            Category::IpAddress => "IP_ADDRESS",
            Category::Secret => "SECRET",
        }
    }

    pub(super) fn parse(name: &str) -> Option<Category> {
        Category::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Categories(u8);

impl Categories {
    pub(super) fn all() -> Self {
        Categories(Category::ALL.iter().fold(0, |acc, c| acc | c.bit()))
    }

    pub(super) fn of(list: &[Category]) -> Self {
        Categories(list.iter().fold(0, |acc, c| acc | c.bit()))
    }

    fn has(self, c: Category) -> bool {
        self.0 & c.bit() != 0
    }
}

/// One finding: `text[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Finding {
    pub(super) category: Category,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Everything of `wanted` in `text`, in text order, without overlaps (secrets win, then
/// e-mail addresses, IBANs, IP addresses, then the digit-based kinds).
pub(super) fn scan(text: &str, wanted: Categories) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut add = |f: Finding| {
        if wanted.has(f.category)
            && !found
                .iter()
                .any(|g: &Finding| f.start < g.end && g.start < f.end)
        {
            found.push(f);
        }
    };
    let b = text.as_bytes();
    let starts = word_starts(b);
    if wanted.has(Category::Secret) {
        secrets(text, &starts, &mut add);
    }
    if wanted.has(Category::Email) {
        emails(b, &mut add);
    }
    if wanted.has(Category::Iban) {
        ibans(b, &starts, &mut add);
    }
    if wanted.has(Category::IpAddress) {
        ipv6(text, &starts, &mut add);
    }
    digit_runs(text, &starts, &mut add);
    found.sort_by_key(|f| f.start);
    found
}

/// `text` with each finding replaced by `[CATEGORY]`.
pub(super) fn redact(text: &str, findings: &[Finding]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        out.push_str(&text[at..f.start]);
        out.push('[');
        out.push_str(f.category.name());
        out.push(']');
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The positions not preceded by a word character, in order. Every kind but e-mail
/// addresses starts at one, so the scanners visit these (about one byte in five of prose)
/// instead of every byte.
fn word_starts(b: &[u8]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(b.len() / 4 + 1);
    let mut after_word = false;
    for (i, &c) in b.iter().enumerate() {
        if !after_word {
            starts.push(i);
        }
        after_word = is_word(c);
    }
    starts
}

/// A token prefix of a well-known API key, the characters that follow and how many at least.
type Token = (&'static str, fn(u8) -> bool, usize);

const TOKENS: &[Token] = &[
    ("sk-", key_char, 20),
    ("sk_live_", key_char, 16),
    ("sk_test_", key_char, 16),
    ("rk_live_", key_char, 16),
    ("AKIA", upper_alnum, 16),
    ("ASIA", upper_alnum, 16),
    ("ghp_", alnum, 30),
    ("gho_", alnum, 30),
    ("ghu_", alnum, 30),
    ("ghs_", alnum, 30),
    ("ghr_", alnum, 30),
    ("github_pat_", key_char, 30),
    ("glpat-", key_char, 20),
    ("xoxb-", key_char, 10),
    ("xoxp-", key_char, 10),
    ("xoxa-", key_char, 10),
    ("xoxr-", key_char, 10),
    ("xoxs-", key_char, 10),
    ("AIza", key_char, 30),
];

fn key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn upper_alnum(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// Whether some token prefix starts with the bytes `first`, `second`: one lookup per byte of
/// text instead of comparing every prefix at every word.
fn opens_token(first: u8, second: u8) -> bool {
    static PAIRS: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    let pairs = PAIRS.get_or_init(|| {
        let mut bits = vec![0u64; 1 << 10];
        for (prefix, ..) in TOKENS {
            let p = prefix.as_bytes();
            let pair = usize::from(p[0]) << 8 | usize::from(p[1]);
            bits[pair / 64] |= 1 << (pair % 64);
        }
        bits
    });
    let pair = usize::from(first) << 8 | usize::from(second);
    pairs[pair / 64] & (1 << (pair % 64)) != 0
}

/// At each word start whose first two bytes open a token prefix, the prefixes.
fn secrets(text: &str, starts: &[usize], add: &mut impl FnMut(Finding)) {
    let b = text.as_bytes();
    for &start in starts {
        if start + 1 >= b.len() || !opens_token(b[start], b[start + 1]) {
            continue;
        }
        for &(prefix, body, min) in TOKENS {
            if !b[start..].starts_with(prefix.as_bytes()) {
                continue;
            }
            let rest = start + prefix.len();
            let len = b[rest..].iter().take_while(|c| body(**c)).count();
            let end = rest + len;
            if len >= min && (end == b.len() || !is_word(b[end])) {
                add(Finding {
                    category: Category::Secret,
                    start,
                    end,
                });
            }
        }
    }
    // PEM private keys: from the BEGIN line through the END line.
    for (start, _) in text.match_indices("-----BEGIN ") {
        let after = start + "-----BEGIN ".len();
        let Some(h) = text[after..].find("-----") else {
            continue;
        };
        if !text[after..after + h].ends_with("PRIVATE KEY") {
            continue;
        }
        let body = after + h + 5;
        let Some(e) = text[body..].find("-----END ") else {
            continue;
        };
        let tail = body + e + "-----END ".len();
        if let Some(c) = text[tail..].find("-----") {
            add(Finding {
                category: Category::Secret,
                start,
                end: tail + c + 5,
            });
        }
    }
}

fn emails(b: &[u8], add: &mut impl FnMut(Finding)) {
    let local = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    let domain = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'-';
    for at in memchr::memchr_iter(b'@', b) {
        let start = at - b[..at].iter().rev().take_while(|c| local(**c)).count();
        let mut end = at + 1 + b[at + 1..].iter().take_while(|c| domain(**c)).count();
        while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let host = &b[at + 1..end];
        let tld = host.rsplit(|c| *c == b'.').next().unwrap_or_default();
        let dotted = host.contains(&b'.') && !host.starts_with(b".");
        if start < at && dotted && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) {
            add(Finding {
                category: Category::Email,
                start,
                end,
            });
        }
    }
}

/// `CCdd` then 11 to 30 letters and digits, in groups of four separated by single spaces or
/// not at all; the mod-97 checksum must hold for the whole or for a prefix ending at a group.
fn ibans(b: &[u8], starts: &[usize], add: &mut impl FnMut(Finding)) {
    let mut next = 0;
    for &i in starts {
        if i < next || i + 4 > b.len() {
            continue;
        }
        let head = &b[i..i + 4];
        let candidate = head[0].is_ascii_uppercase()
            && head[1].is_ascii_uppercase()
            && head[2].is_ascii_digit()
            && head[3].is_ascii_digit();
        if !candidate {
            continue;
        }
        let mut compact = Vec::with_capacity(34);
        let mut ends = Vec::new(); // (compact length, byte end) at each group boundary
        let mut j = i;
        while j < b.len() && compact.len() < 34 {
            let c = b[j];
            if c.is_ascii_uppercase() || c.is_ascii_digit() {
                compact.push(c);
                j += 1;
            } else if c == b' ' && j + 1 < b.len() && b[j + 1].is_ascii_alphanumeric() {
                ends.push((compact.len(), j));
                j += 1;
            } else {
                break;
            }
        }
        let whole_word = j == b.len() || !is_word(b[j]);
        if whole_word {
            ends.push((compact.len(), j));
        }
        let hit = ends
            .iter()
            .rev()
            .find(|(n, _)| (15..=34).contains(n) && mod97(&compact[..*n]) == 1);
        if let Some(&(_, end)) = hit {
            add(Finding {
                category: Category::Iban,
                start: i,
                end,
            });
            next = end;
        }
    }
}

/// ISO 13616: move the first four characters to the end, letters become 10..35, mod 97.
fn mod97(iban: &[u8]) -> u32 {
    let rotated = iban[4..].iter().chain(&iban[..4]);
    rotated.fold(0u32, |acc, &c| {
        if c.is_ascii_digit() {
            (acc * 10 + u32::from(c - b'0')) % 97
        } else {
            (acc * 100 + u32::from(c - b'A') + 10) % 97
        }
    })
}

/// Runs of hex digits and colons with at least two colons that parse as an IPv6 address.
fn ipv6(text: &str, starts: &[usize], add: &mut impl FnMut(Finding)) {
    let b = text.as_bytes();
    // Most text has no two colons at all: no need to look at every word.
    if memchr::memchr_iter(b':', b).nth(1).is_none() {
        return;
    }
    let part = |c: u8| c.is_ascii_hexdigit() || c == b':';
    let mut next = 0;
    for &i in starts {
        if i < next || !part(b[i]) {
            continue;
        }
        let end = i + b[i..].iter().take_while(|c| part(**c)).count();
        let run = &text[i..end];
        let colons = run.bytes().filter(|c| *c == b':').count();
        let hex = run.len() - colons;
        let bounded = end == b.len() || !is_word(b[end]);
        if colons >= 2 && hex >= 2 && bounded && run.parse::<Ipv6Addr>().is_ok() {
            add(Finding {
                category: Category::IpAddress,
                start: i,
                end,
            });
        }
        next = end.max(i + 1);
    }
}

/// Numbers written with digits and separators: IPv4 addresses, SSNs, card numbers, phones.
fn digit_runs(text: &str, starts: &[usize], add: &mut impl FnMut(Finding)) {
    let b = text.as_bytes();
    let sep = |c: u8| matches!(c, b' ' | b'-' | b'.' | b'(' | b')');
    let mut next = 0;
    for &i in starts {
        if i < next {
            continue;
        }
        let plus = b[i] == b'+' || b[i] == b'(';
        let first_digit = if plus { i + 1 } else { i };
        if first_digit >= b.len() || !b[first_digit].is_ascii_digit() {
            continue;
        }
        // Extend over digits, and over up to two separators when a digit follows them.
        let mut end = first_digit;
        loop {
            let digits = b[end..].iter().take_while(|c| c.is_ascii_digit()).count();
            end += digits;
            let seps = b[end..].iter().take(3).take_while(|c| sep(**c)).count();
            if seps > 0 && seps <= 2 && b.get(end + seps).is_some_and(u8::is_ascii_digit) {
                end += seps;
            } else {
                break;
            }
        }
        if end == b.len() || !is_word(b[end]) {
            if let Some(category) = classify(&text[i..end]) {
                add(Finding {
                    category,
                    start: i,
                    end,
                });
            }
        }
        next = end.max(i + 1);
    }
}

/// National phone numbers without `+`, by their digit groups: `415 555 0123`,
/// `1-415-555-0123`, `020 7946 0958`, `06 12 34 56 78`, `0301 234 567`.
const PHONE_GROUPS: &[&[usize]] = &[
    &[3, 3, 4],
    &[1, 3, 3, 4],
    &[3, 4, 4],
    &[2, 2, 2, 2, 2],
    &[4, 3, 3],
];

fn classify(run: &str) -> Option<Category> {
    let digits: Vec<u8> = run
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|c| c - b'0')
        .collect();
    let groups: Vec<&str> = run
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let seps: Vec<char> = run.chars().filter(|c| !c.is_ascii_digit()).collect();
    let only = |s: &[char]| seps.iter().all(|c| s.contains(c));
    if groups.len() == 4 && seps.len() == 3 && only(&['.']) {
        return run
            .parse::<Ipv4Addr>()
            .is_ok()
            .then_some(Category::IpAddress);
    }
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens == [3, 2, 4] && seps.len() == 2 && seps[0] == seps[1] && only(&['-', ' ']) {
        return ssn_valid(&groups).then_some(Category::Ssn);
    }
    if (13..=19).contains(&digits.len()) && only(&[' ', '-']) && luhn(&digits) {
        return Some(Category::CreditCard);
    }
    let international =
        run.starts_with('+') && (8..=15).contains(&digits.len()) && groups.len() <= 6;
    if international || PHONE_GROUPS.contains(&lens.as_slice()) {
        return Some(Category::Phone);
    }
    None
}

/// Area 001-899 except 666, group 01-99, serial 0001-9999.
fn ssn_valid(groups: &[&str]) -> bool {
    let n = |s: &str| s.parse::<u32>().unwrap_or(0);
    let (area, group, serial) = (n(groups[0]), n(groups[1]), n(groups[2]));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}
