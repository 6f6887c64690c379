//! Extensions: optional features a chat switches on and off at runtime
//! (`PUT /api/chat/{chatId}/settings {"extensions": [...]}`), no restart needed.
//!
//! * `analytics` is an event function (`ext-analytics`) that its own EventBridge rule
//!   invokes: isolated from the message path (its failures retry, then land in its
//!   dead-letter queue; a send never waits for it or sees its errors).
//! * `moderation` runs inside the send path ([`super::moderation`]): it must refuse a
//!   message before it is stored.
//!
//! An event function handles an event only if its extension was on when the event
//! occurred: `S#META` keeps, per enabled extension, when it was last switched on, so an
//! event from a period when it was off is skipped even if it is delivered late.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Extension {
    Analytics,
    Moderation,
}

impl Extension {
    pub const ALL: [Extension; 2] = [Extension::Analytics, Extension::Moderation];
    pub const NAMES: [&'static str; 2] = ["analytics", "moderation"];

    pub fn name(&self) -> &'static str {
        match self {
            Extension::Analytics => "analytics",
            Extension::Moderation => "moderation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::session::Meta;
    use crate::chat::ChatSettings;
    use chrono::{Duration, Utc};

    #[test]
    fn an_extension_sees_only_events_from_while_it_was_on() {
        let t0 = Utc::now();
        let mut meta = Meta {
            title: "t".into(),
            created_by: "a".into(),
            created_at: Some(t0),
            settings: ChatSettings {
                extensions: vec!["analytics".into()],
                ..ChatSettings::default()
            },
            settings_version: 1,
            member_count: 1,
            extensions_since: [("analytics".to_string(), t0)].into(),
        };
        assert!(meta.extension_on(Extension::Analytics, t0 + Duration::seconds(1)));
        assert!(!meta.extension_on(Extension::Analytics, t0 - Duration::seconds(1)));
        assert!(!meta.extension_on(Extension::Moderation, t0));
        meta.settings.extensions.clear();
        assert!(!meta.extension_on(Extension::Analytics, t0 + Duration::seconds(1)));
        assert_eq!(Extension::parse("moderation"), Some(Extension::Moderation));
        assert_eq!(Extension::parse("Analytics"), None);
    }
}
