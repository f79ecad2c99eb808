//! A comuna (municipality) as the guild records it: non-empty once trimmed,
//! at most 60 printable characters; the normal form is the trimmed text.
//!
//! The project ships approximate centres of the Santiago Metropolitan
//! Region's comunas and of the regional capitals (`data/comunas.csv`, read
//! once); [`centre`] finds a comuna's centre whatever the case, accents or
//! spacing members wrote it with. A comuna missing from the table has no
//! centre, and the cart tracking then skips its out-of-area check.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::geo::Point;

/// The longest comuna name accepted, in characters.
pub const MAX_CHARS: usize = 60;

/// Why a written comuna was refused; the message is shown to the applicant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComunaError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most 60 printable characters")]
    TooLongOrUnprintable,
}

/// A written comuna in its normal form (trimmed), or why it is refused.
pub fn normalise(raw: &str) -> Result<String, ComunaError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ComunaError::Empty);
    }
    if trimmed.chars().count() > MAX_CHARS || trimmed.chars().any(char::is_control) {
        return Err(ComunaError::TooLongOrUnprintable);
    }
    Ok(trimmed.to_string())
}

/// The shipped table of comuna centres (`name,latitude,longitude`).
const CENTRES_CSV: &str = include_str!("../data/comunas.csv");

/// The table, by [`fold`]ed name; parsed on first use.
static CENTRES: LazyLock<HashMap<String, Centre>> = LazyLock::new(|| parse_centres(CENTRES_CSV));

/// A comuna's approximate centre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Centre {
    /// The name as the table spells it.
    pub name: &'static str,
    pub point: Point,
}

/// The centre of the comuna named `name` (case, accents and spacing
/// ignored), or `None` if the table does not list it.
pub fn centre(name: &str) -> Option<Centre> {
    CENTRES.get(&fold(name)).copied()
}

/// Every comuna the table lists.
pub fn known() -> impl Iterator<Item = &'static Centre> {
    CENTRES.values()
}

/// The key a name is matched by: lower case, Spanish accents and the tilde
/// dropped, runs of spaces made one.
pub fn fold(name: &str) -> String {
    let folded: String = name
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            other => other,
        })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses the shipped table; a malformed line is a bug in the shipped file,
/// caught by this module's tests, so it is skipped rather than fatal.
fn parse_centres(csv: &'static str) -> HashMap<String, Centre> {
    csv.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .skip(1) // the header
        .filter_map(|line| {
            let mut fields = line.split(',').map(str::trim);
            let name = fields.next()?;
            let latitude = fields.next()?.parse().ok()?;
            let longitude = fields.next()?.parse().ok()?;
            Some((fold(name), Centre { name, point: Point { latitude, longitude } }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::distance_m;

    #[test]
    fn every_line_of_the_shipped_table_parses_into_chile() {
        let lines = CENTRES_CSV.lines().filter(|line| !line.trim().is_empty() && !line.starts_with('#')).count();

        assert_eq!(known().count(), lines - 1, "one centre per line after the header, no duplicate names");
        assert!(known().count() >= 52 + 15, "the 52 comunas of the Metropolitan Region and the regional capitals");
        for centre in known() {
            let Point { latitude, longitude } = centre.point;
            assert!((-56.0..-17.0).contains(&latitude) && (-76.0..-66.0).contains(&longitude), "{centre:?}");
        }
    }

    #[test]
    fn a_comuna_is_found_whatever_its_case_accents_and_spacing() {
        let nunoa = centre("Ñuñoa").expect("Ñuñoa is listed");

        assert_eq!(centre("nunoa"), Some(nunoa));
        assert_eq!(centre("  ÑUÑOA "), Some(nunoa));
        assert_eq!(centre("estacion  central").map(|found| found.name), Some("Estación Central"));
    }

    #[test]
    fn an_unknown_comuna_has_no_centre() {
        assert_eq!(centre("Atlántida"), None);
        assert_eq!(centre(""), None);
    }

    #[test]
    fn santiago_and_providencia_are_a_few_kilometres_apart() {
        let santiago = centre("Santiago").expect("listed").point;
        let providencia = centre("Providencia").expect("listed").point;

        let metres = distance_m(santiago, providencia);

        assert!((2_000.0..8_000.0).contains(&metres), "{metres}");
    }

    #[test]
    fn a_comuna_is_trimmed() {
        assert_eq!(normalise(" Ñuñoa "), Ok("Ñuñoa".into()));
    }

    #[test]
    fn empty_overlong_and_unprintable_comunas_are_refused() {
        assert_eq!(normalise("   "), Err(ComunaError::Empty));
        assert_eq!(normalise(&"x".repeat(61)), Err(ComunaError::TooLongOrUnprintable));
        assert_eq!(normalise("Ñuñoa\u{7}"), Err(ComunaError::TooLongOrUnprintable));
        assert!(normalise(&"x".repeat(60)).is_ok());
    }
}
