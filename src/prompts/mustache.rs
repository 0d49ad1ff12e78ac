//! Mustache rendering of prompt templates, after the spec (github.com/mustache/spec) without
//! lambdas, and with two departures because prompts are not HTML: nothing is escaped, and a
//! variable or partial that resolves nowhere is an error rather than an empty string.
//!
//! Values are JSON: strings render as they are, null as nothing, anything else as its JSON text.
//! Sections skip null, false, "" and [], iterate the other lists and render any other value once
//! with it on top of the context stack.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

/// How deeply partials may include partials before rendering stops (a partial including itself).
pub const MAX_PARTIAL_DEPTH: usize = 32;

/// Finds a partial by name and pinned version (`{{>name@5}}`); `None` when there is no such partial.
pub type PartialResolver<'a> = &'a dyn Fn(&str, Option<u32>) -> Option<String>;

/// Every problem found in a template or while rendering it, one message each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderErrors(pub Vec<String>);

impl fmt::Display for RenderErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for RenderErrors {}

/// Renders `template` against `vars`, collecting every missing variable, missing partial and
/// parse error instead of stopping at the first.
pub fn render(
    template: &str,
    vars: &Value,
    partials: PartialResolver,
) -> Result<String, RenderErrors> {
    let nodes = parse(template).map_err(RenderErrors)?;
    let mut renderer = Renderer {
        partials,
        resolved: HashMap::new(),
        out: String::new(),
        errors: Vec::new(),
        too_deep: false,
    };
    renderer.nodes(&nodes, &mut vec![vars], 0);
    if renderer.errors.is_empty() {
        Ok(renderer.out)
    } else {
        Err(RenderErrors(renderer.errors))
    }
}

/// The names a template looks up in the variables it is given, in order of first use: variables
/// and sections outside any section (for a dotted name, its first part). Names inside a section
/// resolve against the section's value first, and partials are not followed.
pub fn variables(template: &str) -> Result<Vec<String>, RenderErrors> {
    let nodes = parse(template).map_err(RenderErrors)?;
    let mut names = Vec::new();
    collect_root_names(&nodes, &mut names);
    Ok(names)
}

fn collect_root_names(nodes: &[Node], names: &mut Vec<String>) {
    for node in nodes {
        let (name, inside) = match node {
            Node::Variable(name) => (name, None),
            // An inverted section pushes nothing, so the names inside it resolve where it does.
            Node::Section {
                name,
                inverted: true,
                children,
            } => (name, Some(children)),
            Node::Section { name, .. } => (name, None),
            Node::Text(_) | Node::Partial { .. } => continue,
        };
        let root = name.split('.').next().unwrap_or_default();
        if !root.is_empty() && !names.iter().any(|n| n == root) {
            names.push(root.to_string());
        }
        if let Some(children) = inside {
            collect_root_names(children, names);
        }
    }
}

enum Node {
    Text(String),
    Variable(String),
    Section {
        name: String,
        inverted: bool,
        children: Vec<Node>,
    },
    Partial {
        name: String,
        version: Option<u32>,
        indent: String,
    },
}

enum Tag {
    Variable(String),
    Open { name: String, inverted: bool },
    Close(String),
    Comment,
    Delimiters(String, String),
    Partial { name: String, version: Option<u32> },
}

impl Tag {
    fn may_stand_alone(&self) -> bool {
        !matches!(self, Tag::Variable(_))
    }
}

/// A section whose closing tag is still to come.
struct Frame {
    name: String,
    inverted: bool,
    tag: String,
    line: usize,
    nodes: Vec<Node>,
}

struct Parser<'t> {
    src: &'t str,
    pos: usize,
    open: String,
    close: String,
    line: usize,
    line_counted_to: usize,
    root: Vec<Node>,
    frames: Vec<Frame>,
    errors: Vec<String>,
}

fn parse(src: &str) -> Result<Vec<Node>, Vec<String>> {
    let mut parser = Parser {
        src,
        pos: 0,
        open: "{{".into(),
        close: "}}".into(),
        line: 1,
        line_counted_to: 0,
        root: Vec::new(),
        frames: Vec::new(),
        errors: Vec::new(),
    };
    while parser.next_tag() {}
    parser.finish()
}

impl Parser<'_> {
    /// Consumes the text up to the next tag and the tag itself; false once nothing is left.
    fn next_tag(&mut self) -> bool {
        let src = self.src;
        let Some(offset) = src[self.pos..].find(&self.open) else {
            self.push_text(src.len());
            return false;
        };
        let start = self.pos + offset;
        let line = self.line_of(start);
        let Some((sigil, body, end)) = self.scan(start) else {
            let shown: String = src[start..]
                .chars()
                .take_while(|&c| c != '\n')
                .take(40)
                .collect();
            self.errors
                .push(format!("line {line}: unclosed tag {shown}"));
            return false;
        };
        let raw = &src[start..end];
        let tag = match classify(sigil, body) {
            Ok(tag) => tag,
            Err(problem) => {
                self.errors.push(format!("line {line}: {problem} in {raw}"));
                self.push_text(start);
                self.pos = end;
                return true;
            }
        };
        let standalone = tag
            .may_stand_alone()
            .then(|| standalone_line(src, start, end))
            .flatten();
        let (text_end, resume) = standalone.unwrap_or((start, end));
        self.push_text(text_end);
        self.pos = resume;
        self.apply(tag, raw, line, &src[text_end..start]);
        true
    }

    /// The tag's sigil, its content and where it ends, or `None` when it is never closed.
    fn scan(&self, start: usize) -> Option<(Option<char>, &str, usize)> {
        let after_open = start + self.open.len();
        let sigil = self.src[after_open..]
            .chars()
            .next()
            .filter(|c| "#^/!>&={".contains(*c));
        let closer = match sigil {
            Some('{') => format!("}}{}", self.close),
            Some('=') => format!("={}", self.close),
            _ => self.close.clone(),
        };
        let body_start = after_open + sigil.map_or(0, char::len_utf8);
        let body_len = self.src[body_start..].find(&closer)?;
        let body = &self.src[body_start..body_start + body_len];
        Some((sigil, body, body_start + body_len + closer.len()))
    }

    fn apply(&mut self, tag: Tag, raw: &str, line: usize, indent: &str) {
        match tag {
            Tag::Variable(name) => self.push_node(Node::Variable(name)),
            Tag::Open { name, inverted } => self.frames.push(Frame {
                name,
                inverted,
                tag: raw.to_string(),
                line,
                nodes: Vec::new(),
            }),
            Tag::Close(name) => self.close_section(&name, raw, line),
            Tag::Comment => {}
            Tag::Delimiters(open, close) => {
                self.open = open;
                self.close = close;
            }
            Tag::Partial { name, version } => self.push_node(Node::Partial {
                name,
                version,
                indent: indent.to_string(),
            }),
        }
    }

    fn close_section(&mut self, name: &str, raw: &str, line: usize) {
        let Some(at) = self.frames.iter().rposition(|f| f.name == name) else {
            self.errors
                .push(format!("line {line}: {raw} closes no open section"));
            return;
        };
        for inner in self.frames.drain(at + 1..) {
            self.errors.push(format!(
                "line {}: {} is not closed before {raw} on line {line}",
                inner.line, inner.tag
            ));
        }
        if let Some(frame) = self.frames.pop() {
            self.push_node(Node::Section {
                name: frame.name,
                inverted: frame.inverted,
                children: frame.nodes,
            });
        }
    }

    fn push_text(&mut self, end: usize) {
        if end > self.pos {
            self.push_node(Node::Text(self.src[self.pos..end].to_string()));
        }
        self.pos = end;
    }

    fn push_node(&mut self, node: Node) {
        match self.frames.last_mut() {
            Some(frame) => frame.nodes.push(node),
            None => self.root.push(node),
        }
    }

    /// Tags are met in order, so counting newlines only since the last tag keeps this linear.
    fn line_of(&mut self, at: usize) -> usize {
        self.line += self.src[self.line_counted_to..at].matches('\n').count();
        self.line_counted_to = at;
        self.line
    }

    fn finish(mut self) -> Result<Vec<Node>, Vec<String>> {
        for frame in &self.frames {
            self.errors.push(format!(
                "line {}: {} is never closed",
                frame.line, frame.tag
            ));
        }
        if self.errors.is_empty() {
            Ok(self.root)
        } else {
            Err(self.errors)
        }
    }
}

fn classify(sigil: Option<char>, body: &str) -> Result<Tag, &'static str> {
    Ok(match sigil {
        Some('!') => Tag::Comment,
        Some('=') => {
            let parts: Vec<&str> = body.split_whitespace().collect();
            match parts[..] {
                [open, close] if !open.contains('=') && !close.contains('=') => {
                    Tag::Delimiters(open.to_string(), close.to_string())
                }
                _ => return Err("bad delimiters"),
            }
        }
        Some('#') => Tag::Open {
            name: tag_name(body)?,
            inverted: false,
        },
        Some('^') => Tag::Open {
            name: tag_name(body)?,
            inverted: true,
        },
        Some('/') => Tag::Close(tag_name(body)?),
        Some('>') => partial_tag(&tag_name(body)?)?,
        _ => Tag::Variable(tag_name(body)?),
    })
}

fn tag_name(body: &str) -> Result<String, &'static str> {
    let name = body.trim();
    if name.is_empty() {
        Err("empty tag name")
    } else if name.contains(char::is_whitespace) {
        Err("whitespace in tag name")
    } else {
        Ok(name.to_string())
    }
}

fn partial_tag(name: &str) -> Result<Tag, &'static str> {
    let Some((name, version)) = name.rsplit_once('@') else {
        return Ok(Tag::Partial {
            name: name.to_string(),
            version: None,
        });
    };
    match version.parse() {
        Ok(version) if !name.is_empty() => Ok(Tag::Partial {
            name: name.to_string(),
            version: Some(version),
        }),
        _ => Err("bad partial version"),
    }
}

/// For a tag alone on its line (but for spaces and tabs), where that line starts and where the
/// next one does: such a line leaves nothing in the output, as the spec's standalone rule says.
fn standalone_line(src: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let after = &src[end..];
    let (rest, next_line) = match after.find('\n') {
        Some(i) => (
            after[..i].strip_suffix('\r').unwrap_or(&after[..i]),
            end + i + 1,
        ),
        None => (after, src.len()),
    };
    (is_blank(&src[line_start..start]) && is_blank(rest)).then_some((line_start, next_line))
}

fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c == ' ' || c == '\t')
}

struct Renderer<'r> {
    partials: PartialResolver<'r>,
    /// A partial inside a list is resolved once, not once per element.
    resolved: HashMap<(String, Option<u32>), Option<String>>,
    out: String,
    errors: Vec<String>,
    /// Set at the depth limit so that a partial including itself twice stops at once instead
    /// of expanding into 2^depth errors.
    too_deep: bool,
}

impl Renderer<'_> {
    fn nodes(&mut self, nodes: &[Node], stack: &mut Vec<&Value>, depth: usize) {
        for node in nodes {
            if self.too_deep {
                return;
            }
            match node {
                Node::Text(text) => self.out.push_str(text),
                Node::Variable(name) => match lookup(stack, name) {
                    Some(value) => write_value(&mut self.out, value),
                    None => self.error(format!("missing variable {name}")),
                },
                Node::Section {
                    name,
                    inverted,
                    children,
                } => {
                    let value = lookup(stack, name).filter(|v| is_truthy(v));
                    self.section(value, *inverted, children, stack, depth);
                }
                Node::Partial {
                    name,
                    version,
                    indent,
                } => self.partial(name, *version, indent, stack, depth),
            }
        }
    }

    fn section<'v>(
        &mut self,
        value: Option<&'v Value>,
        inverted: bool,
        children: &[Node],
        stack: &mut Vec<&'v Value>,
        depth: usize,
    ) {
        match (value, inverted) {
            (None, true) => self.nodes(children, stack, depth),
            (Some(Value::Array(items)), false) => {
                for item in items {
                    self.within(item, children, stack, depth);
                }
            }
            (Some(value), false) => self.within(value, children, stack, depth),
            _ => {}
        }
    }

    fn within<'v>(
        &mut self,
        value: &'v Value,
        children: &[Node],
        stack: &mut Vec<&'v Value>,
        depth: usize,
    ) {
        stack.push(value);
        self.nodes(children, stack, depth);
        stack.pop();
    }

    fn partial(
        &mut self,
        name: &str,
        version: Option<u32>,
        indent: &str,
        stack: &mut Vec<&Value>,
        depth: usize,
    ) {
        let label = match version {
            Some(version) => format!("{name}@{version}"),
            None => name.to_string(),
        };
        if depth >= MAX_PARTIAL_DEPTH {
            self.error(format!(
                "partial {label} nested more than {MAX_PARTIAL_DEPTH} deep (does it include itself?)"
            ));
            self.too_deep = true;
            return;
        }
        let Some(text) = self.resolve(name, version) else {
            self.error(format!("missing partial {label}"));
            return;
        };
        match parse(&indent_lines(&text, indent)) {
            Ok(nodes) => self.nodes(&nodes, stack, depth + 1),
            Err(errors) => {
                for error in errors {
                    self.error(format!("partial {label}: {error}"));
                }
            }
        }
    }

    fn resolve(&mut self, name: &str, version: Option<u32>) -> Option<String> {
        let partials = self.partials;
        self.resolved
            .entry((name.to_string(), version))
            .or_insert_with(|| partials(name, version))
            .clone()
    }

    /// Inside a list the same miss would repeat once per element; one message names it.
    fn error(&mut self, message: String) {
        if !self.errors.contains(&message) {
            self.errors.push(message);
        }
    }
}

/// Walks the stack outward for the first part of the name, then descends through the rest.
fn lookup<'v>(stack: &[&'v Value], name: &str) -> Option<&'v Value> {
    if name == "." {
        return stack.last().copied();
    }
    let mut parts = name.split('.');
    let first = parts.next()?;
    let found = stack.iter().rev().find_map(|ctx| ctx.get(first))?;
    parts.try_fold(found, |value, part| value.get(part))
}

fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => true,
    }
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => out.push_str(s),
        Value::Null => {}
        other => out.push_str(&other.to_string()),
    }
}

/// A standalone partial's indentation goes before each of its lines, as the spec asks; done on
/// the source, so text interpolated into the partial is not indented.
fn indent_lines(text: &str, indent: &str) -> String {
    text.split_inclusive('\n')
        .flat_map(|line| [indent, line])
        .collect()
}

#[cfg(test)]
mod tests;
