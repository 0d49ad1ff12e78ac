//! The checks that rewrite text: `pii` (personal data and secrets) and `regexReplace`. Both
//! look at every text part (every message before the call, every choice after it), not only
//! the current one, so that nothing they redact reaches the provider or the client.

use regex::{Regex, RegexBuilder};
use serde_json::{json, Value};

use super::params::Params;
use super::{Edit, Found, Input};
use crate::api::guardrails::{CheckData, Detected};
use crate::guardrails::pii::{self, Categories, Category};
use crate::guardrails::{text, Body, Subject};

#[derive(Debug)]
pub(super) enum Rewrite {
    /// Without `redact`, found data fails the check; with it, it is replaced and the check
    /// passes.
    Pii {
        categories: Categories,
        redact: bool,
    },
    /// Matches are replaced; the check fails only with `failOnDetection`.
    Replace {
        regex: Regex,
        with: String,
        fail_on_detection: bool,
    },
}

impl Rewrite {
    pub(super) fn pii(p: &mut Params) -> Rewrite {
        let names = p.list("categories");
        let mut list = Vec::new();
        for name in &names {
            match Category::parse(name) {
                Some(c) => list.push(c),
                None => {
                    let known: Vec<&str> = Category::ALL.iter().map(|c| c.name()).collect();
                    p.error(
                        "categories",
                        format!(
                            "unknown PII category {name:?}; supported: {}",
                            known.join(", ")
                        ),
                    );
                }
            }
        }
        let categories = if list.is_empty() {
            Categories::all()
        } else {
            Categories::of(&list)
        };
        Rewrite::Pii {
            categories,
            redact: p.flag("redact", false),
        }
    }

    pub(super) fn regex_replace(p: &mut Params) -> Rewrite {
        let rule = p.required_string("rule", "a regular expression, plain or as /pattern/flags");
        let regex = js_regex(&rule).unwrap_or_else(|e| {
            p.error("rule", e);
            Regex::new("").expect("the empty regex compiles")
        });
        let with = p
            .string("redactText")
            .unwrap_or_else(|| "[REDACTED]".to_string());
        Rewrite::Replace {
            regex,
            with,
            fail_on_detection: p.flag("failOnDetection", false),
        }
    }

    pub(super) fn evaluate(&self, input: &Input) -> Found {
        let mut counts = [0usize; Category::ALL.len()];
        let rewritten = self.rewrite(input.subject, input.body, &mut counts);
        let total: usize = counts.iter().sum();
        let found = match self {
            Rewrite::Pii { redact, .. } => {
                let detected = Category::ALL
                    .iter()
                    .zip(counts)
                    .filter(|(_, n)| *n > 0)
                    .map(|(c, n)| Detected {
                        category: c.name(),
                        count: n as u64,
                    })
                    .collect();
                let data = CheckData::Pii {
                    detected,
                    redacted: rewritten.is_some(),
                };
                Found::new(total == 0 || *redact, data)
            }
            Rewrite::Replace {
                regex,
                fail_on_detection,
                ..
            } => Found::new(
                total == 0 || !fail_on_detection,
                json!({"rule": regex.as_str(), "replacements": total}),
            ),
        };
        Found {
            edit: rewritten.map(Edit::Redacted),
            ..found
        }
    }

    /// `body` with this check's replacements, when there were any; `counts` gets the number
    /// of findings per [`Category`] (regexReplace counts its matches in the first slot).
    pub(super) fn rewrite(
        &self,
        subject: &Subject,
        body: Body,
        counts: &mut [usize],
    ) -> Option<Value> {
        text::rewrite_all(subject.stage, subject.endpoint, body, |s| match self {
            Rewrite::Pii { categories, redact } => {
                let findings = pii::scan(s, *categories);
                for f in &findings {
                    counts[f.category as usize] += 1;
                }
                (*redact && !findings.is_empty()).then(|| pii::redact(s, &findings))
            }
            Rewrite::Replace { regex, with, .. } => {
                let n = regex.find_iter(s).count();
                counts[0] += n;
                (n > 0).then(|| regex.replace_all(s, regex::NoExpand(with)).into_owned())
            }
        })
    }
}

/// A JavaScript-style `/pattern/flags` (flags g, i, m, s, u; every match is replaced) or a
/// plain pattern.
fn js_regex(rule: &str) -> Result<Regex, String> {
    let (pattern, flags) = match rule.strip_prefix('/').and_then(|r| r.rsplit_once('/')) {
        Some((pattern, flags)) => (pattern, flags),
        None => (rule, ""),
    };
    let mut b = RegexBuilder::new(pattern);
    for f in flags.chars() {
        match f {
            'i' => b.case_insensitive(true),
            'm' => b.multi_line(true),
            's' => b.dot_matches_new_line(true),
            'g' | 'u' => &mut b,
            other => {
                return Err(format!(
                    "unsupported regex flag {other:?}; use g, i, m, s or u"
                ))
            }
        };
    }
    b.build()
        .map_err(|e| format!("invalid regular expression: {e}"))
}
