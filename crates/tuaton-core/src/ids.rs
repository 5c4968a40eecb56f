//! Thirteen-digit identifiers issued by Thai registries.
//!
//! A citizen id (เลขประจำตัวประชาชน) and a juristic-person id (เลขทะเบียนนิติบุคคล)
//! share one check-digit rule: with `d1..d12` the first twelve digits,
//! `check = (11 − (Σ dᵢ·(14−i)) mod 11) mod 10`.
//!
//! The rule has two blind spots that no implementation can close, and that the
//! tests pin down exactly: the third digit has weight 11, so a change to it
//! never alters the check digit; and weighted sums ≡ 0 and ≡ 10 (mod 11) both
//! give check digit 1, so an edit that moves the sum between those two residues
//! goes unnoticed. A transposition of the twelfth digit with the check digit
//! itself is missed when the twelfth digit happens to equal the check digit of
//! the transposed number (about one such swap in ten). Everything else — every
//! other single-digit change and every adjacent transposition — is caught.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid identifier. The fault is always the caller's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The input does not have exactly thirteen digits once dashes and spaces are removed.
    #[error("expected 13 digits (dashes and spaces allowed), found {found} digit(s)")]
    WrongLength {
        /// How many digits were found.
        found: usize,
    },
    /// A character other than a digit, dash or space.
    #[error("only digits, dashes and spaces are allowed")]
    InvalidCharacter,
    /// The first digit is outside the range this kind of id allows.
    #[error("the first digit must be {expected}")]
    BadLeadingDigit {
        /// What is allowed, in words.
        expected: &'static str,
    },
    /// The last digit does not match the check digit of the first twelve.
    #[error("the check digit does not match; the number was probably mistyped")]
    CheckDigitMismatch,
}

/// Thirteen digits with a valid check digit; the common core of both id kinds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Digits([u8; 13]);

impl Digits {
    fn parse(input: &str) -> Result<Self, IdError> {
        let mut digits = [0u8; 13];
        let mut n = 0usize;
        for c in input.trim().chars() {
            match c {
                '0'..='9' => {
                    if n < 13 {
                        digits[n] = c as u8 - b'0';
                    }
                    n += 1;
                }
                '-' | ' ' => {}
                _ => return Err(IdError::InvalidCharacter),
            }
        }
        if n != 13 {
            return Err(IdError::WrongLength { found: n });
        }
        if check_digit(&digits) != digits[12] {
            return Err(IdError::CheckDigitMismatch);
        }
        Ok(Self(digits))
    }

    fn first(&self) -> u8 {
        self.0[0]
    }

    fn write_compact(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.0 {
            write!(f, "{d}")?;
        }
        Ok(())
    }

    /// `N-NNNN-NNNNN-NN-N`, the grouping printed on the card.
    fn write_grouped(&self, f: &mut fmt::Formatter<'_>, mask: bool) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if matches!(i, 1 | 5 | 10 | 12) {
                f.write_str("-")?;
            }
            if mask && (1..12).contains(&i) {
                f.write_str("x")?;
            } else {
                write!(f, "{d}")?;
            }
        }
        Ok(())
    }
}

/// The check digit of the first twelve digits of `digits`.
pub fn check_digit(digits: &[u8; 13]) -> u8 {
    let sum: u32 = digits[..12]
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(*d) * (13 - i as u32))
        .sum();
    ((11 - sum % 11) % 10) as u8
}

macro_rules! thirteen_digit_id {
    ($name:ident, $doc:literal, $lead:pat, $expected:literal) => {
        #[doc = $doc]
        ///
        /// Parsed with or without dashes and spaces; printed as `N-NNNN-NNNNN-NN-N`
        /// by `Display`, as thirteen bare digits by [`Self::compact`] and in JSON.
        /// `Debug` masks the middle digits so the id does not leak into logs.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Digits);

        impl $name {
            /// Parses an id, accepting dashes and spaces between digits.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                let d = Digits::parse(input)?;
                if !matches!(d.first(), $lead) {
                    return Err(IdError::BadLeadingDigit {
                        expected: $expected,
                    });
                }
                Ok(Self(d))
            }

            /// The thirteen digits without separators, as registries exchange them.
            pub fn compact(&self) -> String {
                struct C<'a>(&'a Digits);
                impl fmt::Display for C<'_> {
                    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        self.0.write_compact(f)
                    }
                }
                C(&self.0).to_string()
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write_grouped(f, false)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "("))?;
                self.0.write_grouped(f, true)?;
                f.write_str(")")
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.compact())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

thirteen_digit_id!(
    CitizenId,
    "A Thai citizen id: thirteen digits, the first 1–8, with a valid check digit.",
    1..=8,
    "1 to 8 for a citizen id"
);

thirteen_digit_id!(
    JuristicId,
    "A Thai juristic-person (company) id: thirteen digits starting with 0, with a valid check digit.",
    0,
    "0 for a juristic-person id"
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn weighted_residue(d: &[u8; 13]) -> u32 {
        d[..12]
            .iter()
            .enumerate()
            .map(|(i, x)| u32::from(*x) * (13 - i as u32))
            .sum::<u32>()
            % 11
    }

    fn to_string(d: &[u8; 13]) -> String {
        d.iter().map(|x| char::from(b'0' + x)).collect()
    }

    /// Twelve digits starting 1–8 completed with their check digit.
    fn valid_citizen() -> impl Strategy<Value = [u8; 13]> {
        (1u8..=8, proptest::collection::vec(0u8..=9, 11)).prop_map(|(first, rest)| {
            let mut d = [0u8; 13];
            d[0] = first;
            d[1..12].copy_from_slice(&rest);
            d[12] = check_digit(&d);
            d
        })
    }

    /// Whether an edit from `a` to `b` (same check-digit position rules) falls in one of the
    /// two blind spots described in the module documentation.
    fn blind_spot(a: &[u8; 13], b: &[u8; 13]) -> bool {
        let only_third_digit_changed = (0..13).all(|i| i == 2 || a[i] == b[i]);
        let (ra, rb) = (weighted_residue(a), weighted_residue(b));
        let residue_collision =
            a[12] == b[12] && ra != rb && [ra, rb].iter().all(|r| *r == 0 || *r == 10);
        // Swapping digit 12 (weight 2) with the check digit c shifts the sum by 2(c − d12).
        let last_two_swapped =
            (0..11).all(|i| a[i] == b[i]) && a[11] == b[12] && a[12] == b[11] && {
                let shifted =
                    (weighted_residue(a) + 22 + 2 * u32::from(a[12]) - 2 * u32::from(a[11])) % 11;
                (11 - shifted) % 10 == u32::from(a[11])
            };
        only_third_digit_changed || residue_collision || last_two_swapped
    }

    #[test]
    fn known_valid_id_parses_in_every_layout() {
        for s in [
            "3100600445635",
            "3-1006-00445-63-5",
            "3 1006 00445 63 5",
            " 3100600445635 ",
        ] {
            let id = CitizenId::parse(s).unwrap();
            assert_eq!(id.to_string(), "3-1006-00445-63-5");
            assert_eq!(id.compact(), "3100600445635");
        }
    }

    #[test]
    fn each_kind_of_bad_input_has_its_own_error() {
        assert_eq!(
            CitizenId::parse("310060044563"),
            Err(IdError::WrongLength { found: 12 })
        );
        assert_eq!(
            CitizenId::parse("31006004456355"),
            Err(IdError::WrongLength { found: 14 })
        );
        assert_eq!(
            CitizenId::parse("3100600445a35"),
            Err(IdError::InvalidCharacter)
        );
        assert_eq!(
            CitizenId::parse("3100600445636"),
            Err(IdError::CheckDigitMismatch)
        );
        assert!(matches!(
            CitizenId::parse("0105536112345"),
            Err(IdError::BadLeadingDigit { .. }) | Err(IdError::CheckDigitMismatch)
        ));
        assert_eq!(CitizenId::parse(""), Err(IdError::WrongLength { found: 0 }));
    }

    #[test]
    fn juristic_ids_start_with_zero_and_citizen_ids_never_do() {
        let mut d = [0, 1, 0, 5, 5, 3, 6, 1, 1, 2, 3, 4, 0];
        d[12] = check_digit(&d);
        let s = to_string(&d);
        let j = JuristicId::parse(&s).unwrap();
        assert_eq!(j.compact(), s);
        assert!(matches!(
            CitizenId::parse(&s),
            Err(IdError::BadLeadingDigit { .. })
        ));
        assert!(matches!(
            JuristicId::parse("3100600445635"),
            Err(IdError::BadLeadingDigit { .. })
        ));
        let mut nine = [9, 1, 0, 0, 6, 0, 0, 4, 4, 5, 6, 3, 0];
        nine[12] = check_digit(&nine);
        assert!(matches!(
            CitizenId::parse(&to_string(&nine)),
            Err(IdError::BadLeadingDigit { .. })
        ));
    }

    #[test]
    fn json_form_is_the_bare_digits_and_debug_masks() {
        let id = CitizenId::parse("3-1006-00445-63-5").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"3100600445635\"");
        assert_eq!(
            serde_json::from_str::<CitizenId>("\"3-1006-00445-63-5\"").unwrap(),
            id
        );
        assert!(serde_json::from_str::<CitizenId>("\"3100600445636\"").is_err());
        let dbg = format!("{id:?}");
        assert_eq!(dbg, "CitizenId(3-xxxx-xxxxx-xx-5)");
    }

    proptest! {
        #[test]
        fn every_valid_id_round_trips(d in valid_citizen()) {
            let s = to_string(&d);
            let id = CitizenId::parse(&s).unwrap();
            prop_assert_eq!(id.compact(), s.clone());
            prop_assert_eq!(CitizenId::parse(&id.to_string()).unwrap(), id);
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<CitizenId>(&json).unwrap(), id);
        }

        #[test]
        fn single_digit_changes_are_rejected_outside_the_blind_spots(d in valid_citizen(), pos in 0usize..13, delta in 1u8..=9) {
            let mut e = d;
            e[pos] = (e[pos] + delta) % 10;
            let accepted = CitizenId::parse(&to_string(&e)).is_ok();
            let first_ok = (1..=8).contains(&e[0]);
            prop_assert_eq!(accepted, first_ok && blind_spot(&d, &e), "edit at digit {} of {:?}", pos + 1, d);
        }

        #[test]
        fn adjacent_swaps_are_rejected_outside_the_blind_spots(d in valid_citizen(), pos in 0usize..12) {
            let mut e = d;
            e.swap(pos, pos + 1);
            prop_assume!(e != d);
            let accepted = CitizenId::parse(&to_string(&e)).is_ok();
            let first_ok = (1..=8).contains(&e[0]);
            prop_assert_eq!(accepted, first_ok && blind_spot(&d, &e), "swap at digits {},{} of {:?}", pos + 1, pos + 2, d);
        }
    }

    #[test]
    fn the_blind_spots_are_real_and_narrow() {
        // Exhaustively over one id's neighbourhood: count what slips through.
        let base = CitizenId::parse("3100600445635").unwrap().0.0;
        let mut slipped_outside_third = 0;
        for pos in 0..13 {
            for v in 0..10u8 {
                if v == base[pos] || pos == 2 {
                    continue;
                }
                let mut e = base;
                e[pos] = v;
                if CitizenId::parse(&to_string(&e)).is_ok() {
                    slipped_outside_third += 1;
                    assert!(blind_spot(&base, &e));
                }
            }
        }
        // 3100600445635 has residue 6, far from the 0/10 collision: nothing slips.
        assert_eq!(slipped_outside_third, 0);
        let mut third = base;
        third[2] = 7;
        assert!(
            CitizenId::parse(&to_string(&third)).is_ok(),
            "weight 11 makes digit 3 unprotected"
        );
    }
}
