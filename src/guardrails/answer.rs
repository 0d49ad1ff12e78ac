//! An answer as output hooks get it from the provider: its JSON text, with the text slots read
//! by a decode that borrows them and skips everything else. The whole body becomes a `Value`
//! only when a check needs all of it (a webhook, a redaction that found something); decoding
//! every answer into one cost about 20,000 instructions (docs/performance.md, issue 7).

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::text::Scope;
use crate::gateway::providers::adapter::Endpoint;

/// A chat or text completion's JSON text and its text slots.
pub struct RawAnswer<'a> {
    bytes: &'a [u8],
    choices: Vec<Choice<'a>>,
    value: OnceLock<Value>,
}

impl<'a> RawAnswer<'a> {
    /// None when `bytes` is not a JSON object whose choices have the usual shape (a choice's
    /// `message` an object, no key twice); the caller decodes such an answer into a `Value`,
    /// whose walk ([`super::text`]) is the reference this one agrees with.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        let shape: Shape = serde_json::from_slice(bytes).ok()?;
        Some(RawAnswer {
            bytes,
            choices: shape.choices,
            value: OnceLock::new(),
        })
    }

    /// The whole answer, decoded on first use.
    pub(super) fn value(&self) -> &Value {
        // `parse` read all of `bytes` as JSON, so this decode does not fail.
        self.value
            .get_or_init(|| serde_json::from_slice(self.bytes).unwrap_or_default())
    }

    /// The string slots in `scope`, in document order: each choice's message content (a
    /// string, or its parts' `text`) for chat, each choice's `text` for completions.
    pub(super) fn slots(&self, endpoint: Endpoint, scope: Scope) -> impl Iterator<Item = &str> {
        let n = match scope {
            Scope::Current => self.choices.len().min(1),
            Scope::All => self.choices.len(),
        };
        self.choices[..n].iter().flat_map(move |c| {
            let (one, parts): (Option<&Cow<str>>, &[Part]) = match endpoint {
                Endpoint::Chat => match c.message.as_ref().map(|m| &m.content) {
                    Some(Content::Text(s)) => (Some(s), &[]),
                    Some(Content::Parts(parts)) => (None, parts),
                    _ => (None, &[]),
                },
                Endpoint::Completions => (c.text.0.as_ref(), &[]),
                _ => (None, &[]),
            };
            one.into_iter()
                .chain(parts.iter().filter_map(|p| p.text.0.as_ref()))
                .map(|s| &**s)
        })
    }
}

#[derive(Deserialize)]
struct Shape<'a> {
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(borrow, default)]
    text: Slot<'a>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Content<'a>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Slot<'a>,
}

/// A message's `content`: a string, an array of parts, or anything else (no text).
#[derive(Default)]
enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
    #[default]
    None,
}

/// A value that counts as text only when it is a string.
#[derive(Default)]
struct Slot<'a>(Option<Cow<'a, str>>);

/// Visits a string as text and skips any other value; `Content` also takes arrays of parts.
struct TextVisitor<T>(std::marker::PhantomData<T>);

/// What a [`TextVisitor`] makes of each kind of value.
trait FromText<'a>: Sized + Default {
    fn text(s: Cow<'a, str>) -> Self;
    fn seq<'de: 'a, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }
}

impl<'a> FromText<'a> for Slot<'a> {
    fn text(s: Cow<'a, str>) -> Self {
        Slot(Some(s))
    }
}

impl<'a> FromText<'a> for Content<'a> {
    fn text(s: Cow<'a, str>) -> Self {
        Content::Text(s)
    }

    fn seq<'de: 'a, A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut parts = Vec::new();
        while let Some(part) = seq.next_element()? {
            parts.push(part);
        }
        Ok(Content::Parts(parts))
    }
}

macro_rules! skip {
    ($($name:ident: $t:ty),*) => {
        $(fn $name<E>(self, _: $t) -> Result<T, E> {
            Ok(T::default())
        })*
    };
}

impl<'de: 'a, 'a, T: FromText<'a>> Visitor<'de> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<T, E> {
        Ok(T::text(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<T, E> {
        Ok(T::text(Cow::Owned(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> Result<T, E> {
        Ok(T::text(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        T::seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }

    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::default())
    }

    skip!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64);
}

impl<'de: 'a, 'a> Deserialize<'de> for Slot<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor(std::marker::PhantomData))
    }
}
