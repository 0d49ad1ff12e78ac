//! Checks of the current text: regexMatch, sentenceCount, wordCount, characterCount,
//! endsWith, alllowercase, alluppercase, contains, notNull.

use std::sync::Arc;

use regex::Regex;
use serde_json::json;

use crate::api::guardrails::CheckData;

use super::params::Params;
use super::{Found, Input};

#[derive(Debug)]
pub(super) enum Content {
    RegexMatch {
        regex: Regex,
        /// The pattern as results show it, shared by them.
        pattern: Arc<str>,
        not: bool,
    },
    Count {
        unit: Unit,
        min: u64,
        max: u64,
        not: bool,
    },
    EndsWith {
        suffix: String,
        not: bool,
    },
    Case {
        upper: bool,
        not: bool,
    },
    Contains {
        words: Vec<String>,
        operator: Operator,
    },
    NotNull {
        not: bool,
    },
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Unit {
    Sentences,
    Words,
    Characters,
}

/// `any`, `all` or `none` of a list is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operator {
    Any,
    All,
    None,
}

impl Operator {
    pub(super) fn read(p: &mut Params, name: &str, default: &'static str) -> Operator {
        match p.choice(name, &["any", "all", "none"], default) {
            "all" => Operator::All,
            "none" => Operator::None,
            _ => Operator::Any,
        }
    }

    pub(super) fn holds(self, present: usize, total: usize) -> bool {
        match self {
            Operator::Any => present > 0,
            Operator::All => present == total,
            Operator::None => present == 0,
        }
    }
}

/// The check `name` of plugin `default`, if it is one of these.
pub(super) fn compile(name: &str, p: &mut Params) -> Option<Content> {
    let not = |p: &mut Params| p.flag("not", false);
    Some(match name {
        "regexMatch" => {
            let rule = p.required_string("rule", "a regular expression the text must match");
            let regex = match Regex::new(&rule) {
                Ok(r) => r,
                Err(e) => {
                    p.error("rule", format!("invalid regular expression: {e}"));
                    Regex::new("").expect("the empty regex compiles")
                }
            };
            Content::RegexMatch {
                pattern: regex.as_str().into(),
                regex,
                not: not(p),
            }
        }
        "sentenceCount" => count(p, Unit::Sentences, "minSentences", "maxSentences", 99_999),
        "wordCount" => count(p, Unit::Words, "minWords", "maxWords", 99_999),
        "characterCount" => count(
            p,
            Unit::Characters,
            "minCharacters",
            "maxCharacters",
            9_999_999,
        ),
        "endsWith" => Content::EndsWith {
            suffix: p.required_string("suffix", "the text the content must end with"),
            not: not(p),
        },
        "alllowercase" => Content::Case {
            upper: false,
            not: not(p),
        },
        "alluppercase" => Content::Case {
            upper: true,
            not: not(p),
        },
        "contains" => Content::Contains {
            words: p.required_list("words", "words or phrases to look for"),
            operator: Operator::read(p, "operator", "any"),
        },
        "notNull" => Content::NotNull { not: not(p) },
        _ => return None,
    })
}

fn count(p: &mut Params, unit: Unit, min_key: &str, max_key: &str, max_default: u64) -> Content {
    let min = p.count(min_key, 0);
    let max = p.count(max_key, max_default);
    if min > max {
        p.error(
            max_key,
            format!("must be at least {min_key} ({min}), found {max}"),
        );
    }
    Content::Count {
        unit,
        min,
        max,
        not: p.flag("not", false),
    }
}

impl Content {
    pub(super) fn evaluate(&self, input: &Input) -> Result<Found, String> {
        let text = input.text;
        Ok(match self {
            Content::RegexMatch {
                regex,
                pattern,
                not,
            } => {
                if text.is_empty() {
                    return Err("no text to match".into());
                }
                let found = regex.find(text);
                Found::new(
                    found.is_some() != *not,
                    CheckData::Regex {
                        pattern: pattern.clone(),
                        not: *not,
                        matched: found.map(|m| m.as_str().to_string()),
                    },
                )
            }
            Content::Count {
                unit,
                min,
                max,
                not,
            } => {
                let n = match unit {
                    Unit::Sentences => text
                        .chars()
                        .filter(|c| matches!(c, '.' | '!' | '?'))
                        .count(),
                    Unit::Words => words(text),
                    Unit::Characters => text.chars().count(),
                } as u64;
                let key = match unit {
                    Unit::Sentences => "sentenceCount",
                    Unit::Words => "wordCount",
                    Unit::Characters => "characterCount",
                };
                let inside = (*min..=*max).contains(&n);
                Found::new(
                    inside != *not,
                    CheckData::Count {
                        key,
                        count: n,
                        min: *min,
                        max: *max,
                        not: *not,
                    },
                )
            }
            Content::EndsWith { suffix, not } => {
                if text.is_empty() {
                    return Err("no text to check".into());
                }
                let ends = text.ends_with(suffix.as_str())
                    || text
                        .strip_suffix('.')
                        .is_some_and(|t| t.ends_with(suffix.as_str()));
                Found::new(ends != *not, json!({"suffix": suffix, "not": not}))
            }
            Content::Case { upper, not } => {
                let all = if *upper {
                    !text.chars().any(char::is_lowercase)
                } else {
                    !text.chars().any(char::is_uppercase)
                };
                Found::new(all != *not, json!({"not": not}))
            }
            Content::Contains { words, operator } => {
                let present: Vec<&String> =
                    words.iter().filter(|w| text.contains(w.as_str())).collect();
                Found::new(
                    operator.holds(present.len(), words.len()),
                    json!({"operator": format!("{operator:?}").to_lowercase(), "found": present}),
                )
            }
            Content::NotNull { not } => {
                let present = !text.trim().is_empty();
                Found::new(present != *not, json!({"not": not}))
            }
        })
    }
}

/// The words of `text` as `split_whitespace` counts them, byte by byte when the text is ASCII
/// (the usual case, several times cheaper than decoding it into chars).
fn words(text: &str) -> usize {
    if !text.is_ascii() {
        return text.split_whitespace().count();
    }
    // ASCII's Unicode whitespace: space, and tab to carriage return (with vertical tab).
    let space = |b: u8| (b == b' ') | (b'\t'..=b'\r').contains(&b);
    let bytes = text.as_bytes();
    let first = bytes.first().is_some_and(|&b| !space(b));
    // A word starts after each space followed by a non-space. Counted in byte-sized sums of
    // at most 255 pairs, which compile to vector instructions.
    let (before, after) = (bytes, bytes.get(1..).unwrap_or_default());
    let starts: usize = before
        .chunks(255)
        .zip(after.chunks(255))
        .map(|(a, b)| {
            let pairs = a.iter().zip(b);
            let n: u8 = pairs.map(|(&a, &b)| u8::from(space(a) & !space(b))).sum();
            usize::from(n)
        })
        .sum();
    usize::from(first) + starts
}
