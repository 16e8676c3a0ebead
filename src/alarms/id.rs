use std::fmt;
use std::str::FromStr;

/// An alarm's position in the alarm log, `<milliseconds>-<sequence>` (the
/// Redis Stream id format, used by the in-process log too). Ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AlarmId {
    pub millis: u64,
    pub seq: u64,
}

impl AlarmId {
    /// The next id after `last` at wall-clock `now_millis`; never goes backwards.
    pub fn next(last: Option<AlarmId>, now_millis: u64) -> AlarmId {
        match last {
            Some(last) if last.millis >= now_millis => AlarmId {
                millis: last.millis,
                seq: last.seq + 1,
            },
            _ => AlarmId {
                millis: now_millis,
                seq: 0,
            },
        }
    }
}

/// Why a string is not an alarm id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an alarm id (expected <milliseconds>-<sequence>, as in a received Alarm.id)")]
pub struct BadAlarmId(pub String);

impl FromStr for AlarmId {
    type Err = BadAlarmId;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let bad = || BadAlarmId(raw.to_owned());
        let (millis, seq) = raw.split_once('-').ok_or_else(bad)?;
        let number = |s: &str| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse::<u64>().map_err(|_| bad())
        };
        Ok(AlarmId {
            millis: number(millis)?,
            seq: number(seq)?,
        })
    }
}

impl fmt::Display for AlarmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_order_numerically() {
        let a: AlarmId = "1700000000000-9".parse().unwrap();
        let b: AlarmId = "1700000000000-10".parse().unwrap();
        assert!(a < b);
        assert_eq!(a.to_string(), "1700000000000-9");
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "17",
            "-1",
            "1-",
            "a-1",
            "1-2-3",
            "+1-2",
            "99999999999999999999-0",
        ] {
            assert!(bad.parse::<AlarmId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn next_never_goes_backwards() {
        let first = AlarmId::next(None, 100);
        assert_eq!(
            first,
            AlarmId {
                millis: 100,
                seq: 0
            }
        );
        let same_ms = AlarmId::next(Some(first), 100);
        assert_eq!(
            same_ms,
            AlarmId {
                millis: 100,
                seq: 1
            }
        );
        let clock_went_back = AlarmId::next(Some(same_ms), 90);
        assert!(clock_went_back > same_ms);
        assert_eq!(
            AlarmId::next(Some(same_ms), 101),
            AlarmId {
                millis: 101,
                seq: 0
            }
        );
    }
}
