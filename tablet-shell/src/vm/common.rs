//! Formatting shared by every screen: language, money, durations, tones.

use proto::domain::Cents;

/// The languages the shell ships; switchable at run time from Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    English,
    Spanish,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::English, Lang::Spanish];

    /// BCP 47 code, as the settings file and the CLI take it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::English => "en",
            Lang::Spanish => "es",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.code().eq_ignore_ascii_case(code))
    }

    /// The language's own name, as the language picker shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::English => "English",
            Lang::Spanish => "Español",
        }
    }

    /// Picks the English or the Spanish text.
    pub fn pick<'a>(self, english: &'a str, spanish: &'a str) -> &'a str {
        match self {
            Lang::English => english,
            Lang::Spanish => spanish,
        }
    }
}

/// What a piece of text means, so the theme can colour it. Never the only
/// carrier of meaning: the text itself always says it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    #[default]
    Normal,
    /// Needs attention soon (e.g. the last minute of a call, offline data).
    Warning,
    /// Something was refused or failed.
    Alert,
    /// Something succeeded.
    Positive,
}

/// `$12.50`, `-$0.05`; the facility's accounts are in US dollars in both
/// languages.
pub fn money(cents: Cents) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}${}.{:02}", group_thousands(abs / 100), abs % 100)
}

fn group_thousands(mut n: u64) -> String {
    let mut groups = Vec::new();
    loop {
        if n < 1000 {
            groups.push(n.to_string());
            break;
        }
        groups.push(format!("{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join(",")
}

/// A call timer: `4:05`, `12:00`, `1:02:03`.
pub fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_has_two_decimals_and_groups_thousands() {
        assert_eq!(money(0), "$0.00");
        assert_eq!(money(5), "$0.05");
        assert_eq!(money(2500), "$25.00");
        assert_eq!(money(123_456_789), "$1,234,567.89");
        assert_eq!(money(-5), "-$0.05");
    }

    #[test]
    fn clock_shows_hours_only_when_needed() {
        assert_eq!(clock(0), "0:00");
        assert_eq!(clock(245), "4:05");
        assert_eq!(clock(720), "12:00");
        assert_eq!(clock(3723), "1:02:03");
    }

    #[test]
    fn language_codes_round_trip() {
        for lang in Lang::ALL {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
        }
        assert_eq!(Lang::from_code("ES"), Some(Lang::Spanish));
        assert_eq!(Lang::from_code("fr"), None);
    }
}
