//! Postgres keeps request records and their bodies in partitions of a day each (by
//! `created_ms`, UTC), named `logs_pYYYYMMDD` and `log_bodies_pYYYYMMDD`. The writer makes a
//! day's partitions before it inserts the day's first record; retention drops the partitions of
//! the days wholly before its cutoff.

use std::collections::HashSet;

use super::db::{params, Db};
use super::StoreResult;
use crate::observe::record::DAY_MS;

/// The partitioned tables.
const TABLES: [&str; 2] = ["logs", "log_bodies"];

/// Taken while partitions are made or dropped, so nodes sharing the database take turns.
const PARTITION_LOCK: i64 = 0x746f_6c6c_7061_7274;

/// The day (since the Unix epoch) a time in milliseconds falls on.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

fn date(day: i64) -> time::Date {
    time::Date::from_julian_day((day + 2_440_588).clamp(0, 5_373_484) as i32)
        .unwrap_or(time::Date::MIN)
}

fn name(table: &str, day: i64) -> String {
    let date = date(day);
    format!(
        "{table}_p{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The day of a partition named by [`name`].
fn day_named(table: &str, name: &str) -> Option<i64> {
    let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
    let format = time::macros::format_description!("[year][month][day]");
    let date = time::Date::parse(digits, &format).ok()?;
    Some(i64::from(date.to_julian_day()) - 2_440_588)
}

/// The days this writer knows to have partitions.
#[derive(Default)]
pub struct Partitions {
    days: HashSet<i64>,
}

impl Partitions {
    /// Makes the partitions of `days` that this writer has not made or seen yet.
    pub fn ensure(&mut self, db: &mut Db, days: impl IntoIterator<Item = i64>) -> StoreResult<()> {
        let mut missing: Vec<i64> = days
            .into_iter()
            .filter(|d| !self.days.contains(d))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        missing.dedup();
        let mut tx = db.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock(?1)", &params![PARTITION_LOCK])?;
        for &day in &missing {
            for table in TABLES {
                tx.batch(&format!(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF {table} \
                     FOR VALUES FROM ({}) TO ({})",
                    name(table, day),
                    day * DAY_MS,
                    (day + 1) * DAY_MS
                ))?;
            }
        }
        tx.commit()?;
        self.days.extend(missing);
        Ok(())
    }

    /// Makes [`Partitions::ensure`] check every day again.
    pub fn forget(&mut self) {
        self.days.clear();
    }

    /// Drops the partitions of the days that end by `before_ms`.
    pub fn drop_before(&mut self, db: &mut Db, before_ms: i64) -> StoreResult<()> {
        let mut tx = db.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock(?1)", &params![PARTITION_LOCK])?;
        for table in TABLES {
            for day in days(&mut tx, table)? {
                if (day + 1) * DAY_MS <= before_ms {
                    tx.batch(&format!("DROP TABLE {}", name(table, day)))?;
                    self.days.remove(&day);
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// The days `table` has partitions for, oldest first.
fn days(db: &mut Db, table: &str) -> StoreResult<Vec<i64>> {
    let names: Vec<String> = db.query_map(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ?1",
        &params![table],
        |r| r.get(0),
    )?;
    let mut days: Vec<i64> = names.iter().filter_map(|n| day_named(table, n)).collect();
    days.sort_unstable();
    Ok(days)
}

/// The request records' partitions, for `tollgate db status`.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub days: usize,
    /// The first and last day with a partition (`YYYY-MM-DD`, UTC).
    pub oldest: Option<String>,
    pub newest: Option<String>,
    /// The records' and bodies' partitions, indexes included.
    pub bytes: i64,
}

pub fn summary(db: &mut Db) -> StoreResult<Summary> {
    let days = days(db, "logs")?;
    let mut bytes = 0;
    for table in TABLES {
        bytes += db.query_row(
            "SELECT COALESCE(SUM(pg_total_relation_size(i.inhrelid)), 0)::BIGINT \
             FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ?1",
            &params![table],
            |r| r.get::<i64>(0),
        )?;
    }
    Ok(Summary {
        days: days.len(),
        oldest: days.first().map(|d| date(*d).to_string()),
        newest: days.last().map(|d| date(*d).to_string()),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_named_by_their_utc_day() {
        let ms = 1_764_581_400_123; // 2025-12-01T09:30:00.123Z
        let day = day_of(ms);
        assert_eq!(name("logs", day), "logs_p20251201");
        assert_eq!(day_named("logs", "logs_p20251201"), Some(day));
        assert_eq!(day_named("logs", "log_bodies_p20251201"), None);
        assert_eq!(day_of(day * DAY_MS), day);
        assert_eq!(day_of(day * DAY_MS - 1), day - 1);
    }
}
