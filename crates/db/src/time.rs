//! Timestamps read without chrono's format parser: diesel reads a SQLite timestamp by
//! trying format strings in turn, which was ~3 % of the CPU of a point read that
//! returns two of them. SQLite stores what diesel writes (`2026-12-07 07:04:19.123456`);
//! that shape is read by hand, anything else by diesel's own reader.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::deserialize::{self, FromSql};
use diesel::pg::Pg;
use diesel::sql_types::Timestamp;
use diesel::sqlite::Sqlite;

/// A `Timestamp` column read quickly; use it with
/// `#[diesel(deserialize_as = peermesh_db::DbTime)]` on a `NaiveDateTime` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::deserialize::FromSqlRow)]
pub struct DbTime(pub NaiveDateTime);

impl From<DbTime> for NaiveDateTime {
    fn from(t: DbTime) -> Self {
        t.0
    }
}

/// `YYYY-MM-DD HH:MM:SS` with an optional fraction of 1 to 9 digits.
fn parse(text: &[u8]) -> Option<NaiveDateTime> {
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        text.get(range)?.iter().try_fold(0u32, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    if text.len() < 19
        || text[4] != b'-'
        || text[7] != b'-'
        || text[10] != b' '
        || text[13] != b':'
        || text[16] != b':'
    {
        return None;
    }
    let nanos = match &text[19..] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            digits(20..text.len())? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let time =
        NaiveTime::from_hms_nano_opt(digits(11..13)?, digits(14..16)?, digits(17..19)?, nanos)?;
    Some(date.and_time(time))
}

impl FromSql<Timestamp, Sqlite> for DbTime {
    fn from_sql(
        mut value: <Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        // Only text takes the fast path (diesel also accepts Julian day numbers).
        if value.value_type() == Some(diesel::sqlite::SqliteType::Text) {
            if let Some(t) = parse(value.read_text().as_bytes()) {
                return Ok(Self(t));
            }
        }
        <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(Self)
    }
}

impl FromSql<Timestamp, Pg> for DbTime {
    fn from_sql(
        value: <Pg as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_diesel_writes_and_refuses_the_rest() {
        for text in [
            "2026-12-07 07:04:19",
            "2026-12-07 07:04:19.1",
            "2026-12-07 07:04:19.123456",
            "2026-12-07 23:59:59.999999999",
            "1999-02-28 00:00:00.000001",
        ] {
            let expected = NaiveDateTime::parse_from_str(text, "%F %T%.f").unwrap();
            assert_eq!(parse(text.as_bytes()), Some(expected), "{text}");
        }
        for text in [
            "2026-12-07T07:04:19",
            "2026-12-07 07:04:19Z",
            "2026-12-07 07:04:19.",
            "2026-12-07 07:04:19.1234567890",
            "2026-13-07 07:04:19",
            "2026-02-30 07:04:19",
            "2026-12-07 24:04:19",
            "2026-1a-07 07:04:19",
            "2026-12-07",
        ] {
            assert_eq!(parse(text.as_bytes()), None, "{text}");
        }
    }
}
