//! How times, durations, money and tokens look in tables and lines.

/// `850 ms`, `1.24 s`, `2m 05s`.
pub fn duration(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        let secs = (ms / 1000.0).round() as u64;
        format!("{}m {:02}s", secs / 60, secs % 60)
    }
}

/// `$1.50`, `$0.000123`, `$0`; `-` when the cost is unknown (a model without a price).
pub fn usd(cost: Option<f64>) -> String {
    match cost {
        None => "-".into(),
        Some(c) if c >= 1.0 => format!("${c:.2}"),
        Some(c) => {
            let text = format!("{c:.6}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            format!("${text}")
        }
    }
}

/// `in/out`.
pub fn tokens(input: u64, output: u64) -> String {
    format!("{input}/{output}")
}

/// `2026-12-01T09:00:00.123Z` → `2026-12-01 09:00:00Z`: to the second, still marked UTC.
pub fn timestamp(rfc3339: &str) -> String {
    match rfc3339.split_once('T') {
        Some((date, clock)) => {
            let clock = clock.trim_end_matches('Z');
            let clock = clock.split('.').next().unwrap_or(clock);
            format!("{date} {clock}Z")
        }
        None => rfc3339.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_money_and_times() {
        assert_eq!(duration(12.4), "12 ms");
        assert_eq!(duration(1234.0), "1.23 s");
        assert_eq!(duration(125_000.0), "2m 05s");
        assert_eq!(usd(None), "-");
        assert_eq!(usd(Some(0.0)), "$0");
        assert_eq!(usd(Some(0.000_123)), "$0.000123");
        assert_eq!(usd(Some(0.5)), "$0.5");
        assert_eq!(usd(Some(12.345)), "$12.35");
        assert_eq!(tokens(7, 3), "7/3");
        assert_eq!(
            timestamp("2026-12-01T09:00:00.123Z"),
            "2026-12-01 09:00:00Z"
        );
        assert_eq!(timestamp("2026-12-01T09:00:00Z"), "2026-12-01 09:00:00Z");
    }
}
