//! The moderation extension: a blocklist checked in the send path, before anything is
//! stored (an asynchronous extension could only react after the fact). It is switched on
//! per chat like the other extensions (`"moderation"` in `settings.extensions`); the terms
//! are the chat's `settings.blocklist` plus the deployment's `MODERATION_BLOCKLIST`.

/// At most this many terms per chat, each at most [`MAX_TERM`] characters.
pub const MAX_TERMS: usize = 100;
pub const MAX_TERM: usize = 50;

/// Trims, lowercases and deduplicates terms (empty ones are dropped); refuses too many or
/// too long ones.
pub fn normalize_terms<'a>(terms: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for t in terms {
        let t = t.trim().to_lowercase();
        if t.is_empty() || out.contains(&t) {
            continue;
        }
        if t.chars().count() > MAX_TERM {
            return Err(format!("blocklist terms are at most {MAX_TERM} characters"));
        }
        out.push(t);
    }
    if out.len() > MAX_TERMS {
        return Err(format!("a blocklist holds at most {MAX_TERMS} terms"));
    }
    Ok(out)
}

/// The first blocked term `content` contains as a whole word (or phrase), case-insensitively:
/// "ass" blocks "ass!" but not "class".
pub fn find_blocked<'a>(content: &str, terms: &'a [String]) -> Option<&'a str> {
    let text = content.to_lowercase();
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    terms.iter().map(String::as_str).find(|term| {
        let term = term.to_lowercase();
        if term.is_empty() {
            return false;
        }
        text.match_indices(&term).any(|(i, m)| {
            let before = text[..i].chars().next_back();
            let after = text[i + m.len()..].chars().next();
            !is_word(before) && !is_word(after)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_match_whole_words_case_insensitively() {
        let terms = normalize_terms(["Spam", " eggs and ham ", "spam", ""]).unwrap();
        assert_eq!(terms, vec!["spam", "eggs and ham"]);
        assert_eq!(find_blocked("Buy SPAM now!", &terms), Some("spam"));
        assert_eq!(find_blocked("spam", &terms), Some("spam"));
        assert_eq!(find_blocked("I like eggs AND ham.", &terms), Some("eggs and ham"));
        assert_eq!(find_blocked("spammer and antispam", &terms), None);
        assert_eq!(find_blocked("eggs and hamster", &terms), None);
        assert_eq!(find_blocked("Größe SPAM", &terms), Some("spam"));
        assert_eq!(find_blocked("", &terms), None);
    }

    #[test]
    fn blocklists_are_bounded() {
        assert!(normalize_terms([&"x".repeat(51) as &str]).is_err());
        let many: Vec<String> = (0..101).map(|i| format!("t{i}")).collect();
        assert!(normalize_terms(many.iter().map(String::as_str)).is_err());
    }
}
