//! `tollgate trace show`: a trace's spans as a tree with a timing waterfall, and its feedback.

use std::io::IsTerminal;
use std::ops::Range;

use clap::Subcommand;

use super::ctx::Ctx;
use super::logs::filter::segment;
use super::units::{duration, timestamp, tokens, usd};
use crate::api::logs::{Span, Trace};
use crate::error::Result;
use crate::output::{paint, use_color, Format};

/// Cells of the waterfall, which spans the whole trace.
const WATERFALL_WIDTH: usize = 30;

const EXAMPLES: &str = "\
Examples:
  tollgate trace show 4b1f0c9e-...                     # spans, timings, tokens, cost, feedback
  tollgate logs list --status 5xx --since 1h           # find a trace id in the TRACE column
  tollgate trace show 4b1f0c9e-... -o json | jq '.spans[].children | length'";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum TraceCommand {
    /// Show a trace's spans as a tree with a timing waterfall
    Show {
        /// The trace's id (the TRACE column of `logs list`, or `x-portkey-trace-id`)
        trace_id: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: TraceCommand) -> Result<()> {
    match cmd {
        TraceCommand::Show { trace_id } => {
            let trace: Trace = ctx
                .client()?
                .get(&format!("/v1/traces/{}", segment(&trace_id)))
                .await?;
            if ctx.printer.format != Format::Table {
                return ctx.printer.document(&trace);
            }
            let color = use_color(ctx.global.color, std::io::stdout().is_terminal());
            ctx.printer.text(&render(&trace, color))
        }
    }
}

fn render(trace: &Trace, color: bool) -> String {
    let mut out = format!(
        "trace {} · {} · {} · {} tokens · {}\n\n",
        trace.trace_id,
        timestamp(&trace.started_at),
        duration(trace.duration_ms),
        tokens(trace.input_tokens, trace.output_tokens),
        usd(trace.cost),
    );
    let mut rows = Vec::new();
    flatten(&trace.spans, "", true, &mut rows);
    let widths = Widths {
        label: rows.iter().map(|(l, _)| width(l)).max().unwrap_or(0),
        model: rows
            .iter()
            .map(|(_, s)| width(s.model.as_deref().unwrap_or("-")))
            .max()
            .unwrap_or(0),
    };
    for (label, span) in &rows {
        out.push_str(&span_line(label, span, trace.duration_ms, &widths, color));
        out.push('\n');
    }
    if !trace.feedback.is_empty() {
        out.push_str("\nfeedback:\n");
        for f in &trace.feedback {
            let metadata = if f.metadata.is_empty() {
                String::new()
            } else {
                format!("  {}", serde_json::Value::Object(f.metadata.clone()))
            };
            out.push_str(&format!(
                "  {:+}  weight {}  {}{metadata}\n",
                f.value,
                f.weight,
                timestamp(&f.created_at)
            ));
        }
    }
    out
}

/// The widths of the columns that vary from trace to trace.
struct Widths {
    label: usize,
    model: usize,
}

fn span_line(label: &str, span: &Span, total_ms: f64, widths: &Widths, color: bool) -> String {
    let style = status_style(span.status);
    let ran = span_cells(
        span.start_offset_ms,
        span.duration_ms,
        total_ms,
        WATERFALL_WIDTH,
    );
    // An attempt's tokens and cost are counted on its request's line, not its own.
    let (span_tokens, span_cost) = match span.kind.as_str() {
        "attempt" | "guardrail" => (String::new(), String::new()),
        _ => (
            tokens(span.input_tokens, span.output_tokens),
            usd(span.cost),
        ),
    };
    let line = format!(
        "{label}{}  {}  {:>8}  {}  {:<model$}  {span_tokens:>9}  {span_cost}",
        " ".repeat(widths.label - width(label)),
        waterfall(ran, WATERFALL_WIDTH, color, style),
        duration(span.duration_ms),
        paint(color, &span.status.to_string(), style),
        span.model.as_deref().unwrap_or("-"),
        model = widths.model,
    );
    // A guardrail that flagged (246) without refusing says which checks failed too.
    match span
        .error
        .as_deref()
        .filter(|_| span.status >= 400 || span.status == 246)
    {
        Some(error) => format!("{}  {}", line.trim_end(), first_chars(error, 80)),
        None => line.trim_end().to_string(),
    }
}

/// At most `n` characters of `text`, with `…` when cut.
fn first_chars(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The spans in display order, each with its name behind the tree's branches.
fn flatten<'a>(spans: &'a [Span], lead: &str, top: bool, rows: &mut Vec<(String, &'a Span)>) {
    for (i, span) in spans.iter().enumerate() {
        let last = i + 1 == spans.len();
        let (branch, below) = match (top, last) {
            (true, _) => ("", ""),
            (false, false) => ("├─ ", "│  "),
            (false, true) => ("└─ ", "   "),
        };
        rows.push((format!("{lead}{branch}{}", span.name), span));
        flatten(&span.children, &format!("{lead}{below}"), false, rows);
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn status_style(status: u16) -> &'static str {
    match status {
        200..=299 => "32",
        400..=499 => "33",
        _ => "31",
    }
}

/// The cells of `width` in which a span ran, on a scale of the whole trace; every span gets
/// at least one cell, however short.
fn span_cells(start_ms: f64, duration_ms: f64, total_ms: f64, width: usize) -> Range<usize> {
    let scale = |ms: f64| {
        if total_ms > 0.0 {
            (ms / total_ms * width as f64).clamp(0.0, width as f64)
        } else {
            0.0
        }
    };
    let first = (scale(start_ms).floor() as usize).min(width - 1);
    let end = (scale(start_ms + duration_ms).ceil() as usize).clamp(first + 1, width);
    first..end
}

/// `█` in the cells where the span ran, in the style of its status, and a dim `·` elsewhere.
fn waterfall(ran: Range<usize>, width: usize, color: bool, style: &str) -> String {
    let run = |cell: &str, n: usize, style: &str| match n {
        0 => String::new(),
        n => paint(color, &cell.repeat(n), style),
    };
    format!(
        "{}{}{}",
        run("·", ran.start, "2"),
        run("█", ran.len(), style),
        run("·", width - ran.end, "2")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(start: f64, duration: f64, total: f64, width: usize) -> String {
        waterfall(span_cells(start, duration, total, width), width, false, "")
    }

    #[test]
    fn the_waterfall_scales_spans_to_the_trace() {
        assert_eq!(plain(0.0, 100.0, 100.0, 10), "██████████");
        assert_eq!(plain(0.0, 50.0, 100.0, 10), "█████·····");
        assert_eq!(plain(50.0, 50.0, 100.0, 10), "·····█████");
        assert_eq!(plain(25.0, 10.0, 100.0, 10), "··██······");
        // Too short to see, or at the very end: still one cell.
        assert_eq!(plain(99.9, 0.01, 100.0, 10), "·········█");
        assert_eq!(plain(0.0, 0.0, 0.0, 4), "█···");
        assert_eq!(
            waterfall(1..2, 3, true, "31"),
            "\x1b[2m·\x1b[0m\x1b[31m█\x1b[0m\x1b[2m·\x1b[0m"
        );
    }

    fn span(name: &str, start: f64, ms: f64, status: u16, children: Vec<Span>) -> Span {
        Span {
            span_id: name.into(),
            parent_span_id: None,
            kind: "request".into(),
            name: name.into(),
            log_id: "log".into(),
            start_offset_ms: start,
            duration_ms: ms,
            status,
            provider: Some("openai".into()),
            integration: None,
            model: Some("gpt-4o".into()),
            error: (status >= 400).then(|| "openai error: boom".into()),
            input_tokens: 7,
            output_tokens: 3,
            cost: None,
            children,
        }
    }

    #[test]
    fn a_trace_renders_as_a_tree_with_bars() {
        let trace = Trace {
            object: "trace".into(),
            trace_id: "tr-1".into(),
            started_at: "2026-12-01T09:00:00.000Z".into(),
            duration_ms: 1000.0,
            cost: Some(0.5),
            input_tokens: 14,
            output_tokens: 6,
            spans: vec![span(
                "agent",
                0.0,
                1000.0,
                200,
                vec![
                    Span {
                        kind: "attempt".into(),
                        ..span("attempt", 0.0, 200.0, 500, vec![])
                    },
                    span(
                        "retry",
                        200.0,
                        800.0,
                        200,
                        vec![span("tool", 500.0, 100.0, 200, vec![])],
                    ),
                ],
            )],
            feedback: vec![],
        };
        let text = render(&trace, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "trace tr-1 · 2026-12-01 09:00:00Z · 1.00 s · 14/6 tokens · $0.5"
        );
        assert_eq!(
            lines[2],
            "agent       ██████████████████████████████    1.00 s  200  gpt-4o        7/3  -"
        );
        assert_eq!(
            lines[3],
            "├─ attempt  ██████························    200 ms  500  gpt-4o  openai error: boom"
        );
        assert!(lines[4].starts_with("└─ retry    ······████████████████████████"));
        assert!(lines[5].starts_with("   └─ tool  ···············███············"));
        let colored = render(&trace, true);
        assert!(colored.contains("\x1b[31m500\x1b[0m"));
    }
}
