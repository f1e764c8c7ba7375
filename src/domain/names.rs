//! Names that identify resources within a directory and compare the way a
//! person reads them: a user's userName (RFC 7643 §4.1.1, caseExact false),
//! a group's displayName, and the address an application user is known by.
//! Each carries its folded form, which the store keeps in a column with a
//! unique index, so two names a person cannot tell apart cannot coexist.

use std::marker::PhantomData;

use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{0} must be a non-empty string")]
    Empty(&'static str),
    /// A character that shows nothing or reorders what follows: `a\u{200B}b`
    /// reads as `ab`, and a right-to-left override makes `gnp.exe` read as
    /// `exe.png`.
    #[error(
        "{attribute} holds U+{:04X}, an invisible, control or text-direction character; \
         a name may not hold one",
        *.found as u32
    )]
    Invisible {
        attribute: &'static str,
        found: char,
    },
}

/// Which attribute a name is, for messages and to keep the kinds apart.
pub trait NameKind {
    const ATTRIBUTE: &'static str;
}

/// A user's login name (`userName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNameKind {}

impl NameKind for UserNameKind {
    const ATTRIBUTE: &'static str = "userName";
}

/// A group's name (`displayName`), unique per directory as folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupNameKind {}

impl NameKind for GroupNameKind {
    const ATTRIBUTE: &'static str = "displayName";
}

/// A name as sent, with its folded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name<K> {
    raw: String,
    folded: String,
    kind: PhantomData<K>,
}

pub type UserName = Name<UserNameKind>;
pub type GroupName = Name<GroupNameKind>;

impl<K: NameKind> Name<K> {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.trim().is_empty() {
            return Err(NameError::Empty(K::ATTRIBUTE));
        }
        check_visible(K::ATTRIBUTE, raw)?;
        Ok(Name {
            raw: raw.to_owned(),
            folded: fold(raw),
            kind: PhantomData,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn folded(&self) -> &str {
        &self.folded
    }
}

/// `Err` when `value` holds a character that is invisible, a control, or
/// steers text direction: what UTS #39 §3.1 lists as never needed in an
/// identifier and Unicode's Default_Ignorable_Code_Point set
/// (DerivedCoreProperties.txt) with the bidirectional controls, less the
/// variation selectors (an emoji's presentation, which `fold` drops).
pub fn check_visible(attribute: &'static str, value: &str) -> Result<(), NameError> {
    match value.chars().find(|c| c.is_control() || is_invisible(*c)) {
        Some(found) => Err(NameError::Invisible { attribute, found }),
        None => Ok(()),
    }
}

/// `value` without the characters [`check_visible`] refuses (a provider's
/// value, which cannot be refused).
pub fn without_invisible(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .collect()
}

fn is_invisible(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD                      // soft hyphen
        | 0x034F                    // combining grapheme joiner
        | 0x061C                    // Arabic letter mark (bidi)
        | 0x115F | 0x1160 | 0x3164 | 0xFFA0 // Hangul fillers
        | 0x17B4 | 0x17B5
        | 0x180B..=0x180F           // Mongolian variation selectors, vowel separator
        | 0x200B..=0x200F           // zero width space, ZWNJ, ZWJ, LRM, RLM
        | 0x202A..=0x202E           // bidi embeddings and overrides
        | 0x2060..=0x206F           // word joiner, invisible operators, bidi isolates
        | 0xFEFF                    // zero width no-break space
        | 0xFFF0..=0xFFF8
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0000..=0xE00FF         // tags
        | 0xE01F0..=0xE0FFF
    )
}

/// Variation selectors: allowed in a name, ignored when comparing.
fn is_variation_selector(c: char) -> bool {
    matches!(c as u32, 0xFE00..=0xFE0F | 0xE0100..=0xE01EF)
}

/// The form every case-insensitive identity value compares in: Unicode's
/// compatibility caseless match (The Unicode Standard §3.13, D146:
/// NFKD(toCasefold(NFKD(toCasefold(NFD(X)))))), recomposed (NFC) to store
/// compactly, variation selectors dropped. So `Ａdmin` (fullwidth) and
/// `admin`, `STRASSE` and `straße`, `ﬁle` and `file` fold alike.
pub fn fold(s: &str) -> String {
    let once = caseless::default_case_fold_str(&s.nfd().collect::<String>());
    let twice = caseless::default_case_fold_str(&once.nfkd().collect::<String>());
    twice
        .nfkd()
        .filter(|c| !is_variation_selector(*c))
        .nfc()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn user_names_fold_and_reject_blank() {
        let n = UserName::parse("BJensen@Example.com").unwrap();
        assert_eq!(n.as_str(), "BJensen@Example.com");
        assert_eq!(n.folded(), "bjensen@example.com");
        assert_eq!(UserName::parse("  "), Err(NameError::Empty("userName")));
        assert_eq!(GroupName::parse(""), Err(NameError::Empty("displayName")));
    }

    #[rstest]
    #[case("Ａdmin", "admin")]
    #[case("ADMIN", "admin")]
    #[case("STRASSE", "straße")]
    #[case("ﬁle", "file")]
    #[case("e\u{301}", "é")]
    #[case("Ⅸ", "ix")]
    #[case("ΌΣΟΣ", "όσος")]
    #[case("a\u{a0}b", "a b")]
    #[case("❤\u{fe0f}", "❤")]
    fn look_alikes_fold_alike(#[case] a: &str, #[case] b: &str) {
        assert_eq!(fold(a), fold(b), "{a:?} {b:?}");
    }

    #[rstest]
    #[case("admin", "admim")]
    #[case("ab", "a b")]
    #[case("résumé", "resume")]
    fn different_names_fold_apart(#[case] a: &str, #[case] b: &str) {
        assert_ne!(fold(a), fold(b));
    }

    #[test]
    fn folding_twice_changes_nothing() {
        for s in ["Ａdmin", "STRASSE", "ﬁle", "ΌΣΟΣ", "İstanbul", "ǅ", "Ⅸ"] {
            assert_eq!(fold(&fold(s)), fold(s), "{s:?}");
        }
    }

    #[rstest]
    #[case("a\u{200b}b", '\u{200b}')]
    #[case("a\u{200d}b", '\u{200d}')]
    #[case("admin\u{202e}gnp", '\u{202e}')]
    #[case("\u{2066}x", '\u{2066}')]
    #[case("x\u{feff}", '\u{feff}')]
    #[case("tab\tname", '\t')]
    #[case("nul\u{0}", '\u{0}')]
    #[case("c1\u{85}", '\u{85}')]
    fn invisible_and_direction_characters_are_refused(#[case] raw: &str, #[case] found: char) {
        assert_eq!(
            UserName::parse(raw),
            Err(NameError::Invisible {
                attribute: "userName",
                found
            })
        );
    }

    #[test]
    fn an_emoji_with_its_presentation_selector_is_a_name() {
        assert!(GroupName::parse("Launch ❤\u{fe0f}").is_ok());
    }
}
