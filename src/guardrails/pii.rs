//! Detection of personal data and secrets in text, by hand-written scanners rather than
//! regexes: one pass per kind over the places words start, with checksums (Luhn, IBAN mod-97,
//! SSN number ranges) so that random digit runs are not taken for card numbers or account
//! numbers.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use memchr::memmem::Finder;

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
///
/// Every kind but e-mail addresses starts where a word starts, so one pass over the bytes
/// finds the word starts and hands each to the scanners its first byte may open (in prose,
/// few: most words start with a lowercase letter). Each scanner's findings are then offered
/// in the order above, each taken unless it overlaps one taken before.
pub(super) fn scan(text: &str, wanted: Categories) -> Vec<Finding> {
    let b = text.as_bytes();
    let mut opens = NUMBER;
    if wanted.has(Category::Secret) {
        opens |= TOKEN;
    }
    if wanted.has(Category::Iban) {
        opens |= IBAN;
    }
    // Most text has no two colons at all, and then no IPv6 address.
    if wanted.has(Category::IpAddress) && memchr::memchr_iter(b':', b).nth(1).is_some() {
        opens |= HEX;
    }
    let (mut secrets, mut ibans, mut ips, mut numbers) = (vec![], vec![], vec![], vec![]);
    // Where each scanner that skips over its own findings may look next.
    let (mut iban_next, mut ip_next, mut number_next) = (0, 0, 0);
    let mut from = 0;
    while let Some(i) = next_opening(b, from, opens) {
        from = i + 1;
        let opened = CLASS[usize::from(b[i])] & opens;
        if opened & TOKEN != 0 {
            secret_at(b, i, &mut secrets);
        }
        if opened & IBAN != 0 && i >= iban_next {
            if let Some(end) = iban_at(b, i) {
                ibans.push(finding(Category::Iban, i, end));
                iban_next = end;
            }
        }
        if opened & HEX != 0 && i >= ip_next {
            let end = i + b[i..].iter().take_while(|c| is_ipv6_part(**c)).count();
            if is_ipv6(text, i, end) {
                ips.push(finding(Category::IpAddress, i, end));
            }
            ip_next = end.max(i + 1);
        }
        if opened & NUMBER != 0 && i >= number_next {
            if let Some(end) = digit_run_end(b, i) {
                let bounded = end == b.len() || !is_word(b[end]);
                if let Some(category) = bounded.then(|| classify(&text[i..end])).flatten() {
                    numbers.push(finding(category, i, end));
                }
                number_next = end.max(i + 1);
            }
        }
    }
    if wanted.has(Category::Secret) {
        private_keys(text, &mut secrets);
    }
    let emails = if wanted.has(Category::Email) {
        emails(b)
    } else {
        vec![]
    };
    let mut found: Vec<Finding> = Vec::new();
    for f in [secrets, emails, ibans, ips, numbers].into_iter().flatten() {
        let overlaps = found.iter().any(|g| f.start < g.end && g.start < f.end);
        if wanted.has(f.category) && !overlaps {
            found.push(f);
        }
    }
    found.sort_by_key(|f| f.start);
    found
}

/// The first place at or after `from` where a word starts with a byte of the classes `opens`.
fn next_opening(b: &[u8], from: usize, opens: u8) -> Option<usize> {
    let mut after_word = from > 0 && is_word(b[from - 1]);
    let at = b[from..].iter().position(|&c| {
        let class = CLASS[usize::from(c)];
        let opening = !after_word && class & opens != 0;
        after_word = class & WORD != 0;
        opening
    })?;
    Some(from + at)
}

fn finding(category: Category, start: usize, end: usize) -> Finding {
    Finding {
        category,
        start,
        end,
    }
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
    CLASS[usize::from(c)] & WORD != 0
}

/// Byte classes: a word character, and the first bytes of what each scanner looks for.
const WORD: u8 = 1;
/// The first byte of a [`TOKENS`] prefix.
const TOKEN: u8 = 2;
/// An IBAN's country code.
const IBAN: u8 = 4;
/// An IPv6 address: hex digits and colons.
const HEX: u8 = 8;
/// A phone, card, SSN or IPv4 number: a digit, or `+` or `(` before one.
const NUMBER: u8 = 16;

const CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut class = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || b == b'_' {
            class[c] |= WORD;
        }
        if b.is_ascii_uppercase() {
            class[c] |= IBAN;
        }
        if b.is_ascii_hexdigit() || b == b':' {
            class[c] |= HEX;
        }
        if b.is_ascii_digit() || b == b'+' || b == b'(' {
            class[c] |= NUMBER;
        }
        c += 1;
    }
    let mut t = 0;
    while t < TOKENS.len() {
        class[TOKENS[t].0.as_bytes()[0] as usize] |= TOKEN;
        t += 1;
    }
    class
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

/// Whether some token prefix starts with the bytes `first`, `second`: one lookup per word
/// start that a token's first byte opens instead of comparing every prefix.
fn opens_token(first: u8, second: u8) -> bool {
    let pair = usize::from(first) << 8 | usize::from(second);
    TOKEN_PAIRS[pair / 64] & (1 << (pair % 64)) != 0
}

/// A bit for each pair of first two bytes of [`TOKENS`].
const TOKEN_PAIRS: [u64; 1024] = token_pairs();

const fn token_pairs() -> [u64; 1024] {
    let mut bits = [0u64; 1024];
    let mut t = 0;
    while t < TOKENS.len() {
        let p = TOKENS[t].0.as_bytes();
        let pair = (p[0] as usize) << 8 | p[1] as usize;
        bits[pair / 64] |= 1 << (pair % 64);
        t += 1;
    }
    bits
}

/// The tokens that start at `start`, when its first two bytes open a token prefix.
fn secret_at(b: &[u8], start: usize, out: &mut Vec<Finding>) {
    if start + 1 >= b.len() || !opens_token(b[start], b[start + 1]) {
        return;
    }
    for &(prefix, body, min) in TOKENS {
        if !b[start..].starts_with(prefix.as_bytes()) {
            continue;
        }
        let rest = start + prefix.len();
        let len = b[rest..].iter().take_while(|c| body(**c)).count();
        let end = rest + len;
        if len >= min && (end == b.len() || !is_word(b[end])) {
            out.push(finding(Category::Secret, start, end));
        }
    }
}

/// PEM private keys: from the BEGIN line through the END line.
fn private_keys(text: &str, out: &mut Vec<Finding>) {
    const BEGIN: &str = "-----BEGIN ";
    // Built once: building a finder cost more than most scans with it.
    static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(BEGIN));
    for start in FINDER.find_iter(text.as_bytes()) {
        let after = start + BEGIN.len();
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
            out.push(finding(Category::Secret, start, tail + c + 5));
        }
    }
}

fn emails(b: &[u8]) -> Vec<Finding> {
    let local = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    let domain = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'-';
    let mut out = Vec::new();
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
            out.push(finding(Category::Email, start, end));
        }
    }
    out
}

/// The end of the IBAN at `i`: `CCdd` then 11 to 30 letters and digits, in groups of four
/// separated by single spaces or not at all; the mod-97 checksum must hold for the whole or
/// for a prefix ending at a group.
fn iban_at(b: &[u8], i: usize) -> Option<usize> {
    let head = b.get(i..i + 4)?;
    let candidate = head[0].is_ascii_uppercase()
        && head[1].is_ascii_uppercase()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit();
    if !candidate {
        return None;
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
    ends.iter()
        .rev()
        .find(|(n, _)| (15..=34).contains(n) && mod97(&compact[..*n]) == 1)
        .map(|&(_, end)| end)
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

fn is_ipv6_part(c: u8) -> bool {
    CLASS[usize::from(c)] & HEX != 0
}

/// Whether the run of hex digits and colons `text[start..end]` is an IPv6 address: at least
/// two colons, not followed by a word character.
fn is_ipv6(text: &str, start: usize, end: usize) -> bool {
    let run = &text[start..end];
    let colons = run.bytes().filter(|c| *c == b':').count();
    let hex = run.len() - colons;
    let bounded = end == text.len() || !is_word(text.as_bytes()[end]);
    colons >= 2 && hex >= 2 && bounded && run.parse::<Ipv6Addr>().is_ok()
}

/// The end of the number written at `i` with digits and separators (IPv4 addresses, SSNs,
/// card numbers, phones), when one starts there.
fn digit_run_end(b: &[u8], i: usize) -> Option<usize> {
    let sep = |c: u8| matches!(c, b' ' | b'-' | b'.' | b'(' | b')');
    let plus = b[i] == b'+' || b[i] == b'(';
    let first_digit = if plus { i + 1 } else { i };
    if !b.get(first_digit)?.is_ascii_digit() {
        return None;
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
    Some(end)
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
