//! The quote kept with a hold: what the buyer was quoted when it was placed, and for a
//! best-available hold, the request it answered (so a replay with other parameters is told
//! apart) and whether the group sat together.
//!
//! The coordinator keeps it as opaque text with the hold in Redis, where holds placed by an
//! earlier gateway live on: its format is unchanged (`"<cents> <currency>"`, then
//! `" best=<key> adjacent=<0|1>"` for best available), and this type is the only code that writes
//! or reads it.

use std::fmt;

/// A hold's quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The total, in minor units.
    pub cents: i64,
    /// Its currency (ISO 4217).
    pub currency: String,
    /// Set for a best-available hold.
    pub best: Option<BestAvailable>,
}

/// What a best-available hold was asked and gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestAvailable {
    /// The request's parameters (quantity, section, category, TTL), as one key without spaces.
    pub key: String,
    /// Whether the group sat together.
    pub adjacent: bool,
}

impl Quote {
    /// A quote of `cents` in `currency`, not best available.
    pub fn new(cents: i64, currency: String) -> Self {
        Self {
            cents,
            currency,
            best: None,
        }
    }

    /// Reads the stored text; `None` for a hold stored without a quote (or with another text).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split(' ');
        let cents = parts.next()?.parse().ok()?;
        let currency = parts.next()?.to_owned();
        let rest: Vec<&str> = parts.collect();
        let best = rest
            .iter()
            .find_map(|p| p.strip_prefix("best="))
            .map(|key| BestAvailable {
                key: key.to_owned(),
                adjacent: rest.contains(&"adjacent=1"),
            });
        Some(Self {
            cents,
            currency,
            best,
        })
    }
}

impl fmt::Display for Quote {
    /// The stored text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.cents, self.currency)?;
        if let Some(best) = &self.best {
            write!(f, " best={} adjacent={}", best.key, u8::from(best.adjacent))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_text_is_unchanged_and_reads_back() {
        let plain = Quote::new(4_500, "USD".into());
        assert_eq!(plain.to_string(), "4500 USD");
        assert_eq!(Quote::parse("4500 USD"), Some(plain));
        let best = Quote {
            best: Some(BestAvailable {
                key: "2,orch,,300".into(),
                adjacent: true,
            }),
            ..Quote::new(9_000, "EUR".into())
        };
        assert_eq!(best.to_string(), "9000 EUR best=2,orch,,300 adjacent=1");
        assert_eq!(Quote::parse(&best.to_string()), Some(best));
        let apart = Quote::parse("9000 EUR best=2,,,300 adjacent=0").expect("a quote");
        assert_eq!(apart.best.map(|b| b.adjacent), Some(false));
        assert_eq!(Quote::parse(""), None, "a hold placed without a quote");
        assert_eq!(Quote::parse("x USD"), None);
    }
}
