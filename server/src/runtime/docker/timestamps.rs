//! Docker's log timestamps (RFC 3339 with nanoseconds, UTC) to Slipway's
//! microseconds.

use crate::domain::Timestamp;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses `2026-11-23T12:00:00.123456789Z` (or with an offset of `+00:00`).
pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let mut micros = 0i64;
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let padded = format!("{:0<6}", &fraction[..digits.min(6)]);
        micros = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    if rest != "Z" && rest != "+00:00" {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(Timestamp(seconds * 1_000_000 + micros))
}

/// Splits a log frame written with `timestamps=true` into its time and its text.
pub fn split_timestamp(line: &str) -> (Option<Timestamp>, &str) {
    match line.split_once(' ') {
        Some((stamp, text)) => match parse_rfc3339(stamp) {
            Some(time) => (Some(time), text),
            None => (None, line),
        },
        None => match parse_rfc3339(line) {
            Some(time) => (Some(time), ""),
            None => (None, line),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_timestamps_parse_to_microseconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(Timestamp(0)));
        assert_eq!(
            parse_rfc3339("2026-11-23T12:00:00.123456789Z"),
            Some(Timestamp(1_795_435_200_123_456))
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T23:59:59.5Z"),
            Some(Timestamp(951_868_799_500_000))
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        let (time, text) = split_timestamp("2026-11-23T12:00:00.000001Z hello world");
        assert_eq!(
            (time, text),
            (Some(Timestamp(1_795_435_200_000_001)), "hello world")
        );
    }
}
